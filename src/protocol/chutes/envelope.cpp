#include "protocol/chutes/envelope.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <utility>

#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "crypto/aead.hpp"
#include "crypto/gzip.hpp"
#include "crypto/hkdf.hpp"
#include "crypto/random.hpp"

namespace e2ee::protocol::chutes {
namespace {

namespace mlkem = crypto::mlkem768;

constexpr std::size_t kNonceBytes = 12;
constexpr std::size_t kSaltBytes = 16;  // HKDF salt = the first 16 bytes of the KEM ciphertext
static_assert(kBlobOverhead == mlkem::kCiphertextBytes + kNonceBytes + crypto::kAeadTagBytes);

constexpr std::string_view kInitField = "e2e_init";
constexpr std::string_view kChunkField = "e2e";
constexpr std::string_view kErrorField = "e2e_error";
constexpr std::string_view kUsageField = "usage";

Result<crypto::SecretArray<32>> derive_key(const mlkem::SharedSecret& shared, ByteView ciphertext, std::string_view info) {
  return crypto::hkdf_sha256_32(shared.span(), ciphertext.first(kSaltBytes), as_bytes(info));
}

// ct_kem || nonce || AEAD(key, nonce, payload) || tag, with `key` derived from `ct_kem`.
Result<Bytes> seal_blob(const mlkem::Ciphertext& ct_kem, const crypto::SecretArray<32>& key, ByteView payload) {
  std::array<std::uint8_t, kNonceBytes> nonce{};
  crypto::random_bytes(nonce);
  auto sealed = crypto::aead_seal(crypto::Aead::chacha20_poly1305, key.span(), nonce, payload);
  if (!sealed) return std::move(sealed).error();
  Bytes blob;
  blob.reserve(ct_kem.size() + nonce.size() + sealed->size());
  append(blob, ct_kem);
  append(blob, nonce);
  append(blob, *sealed);
  return blob;
}

// Inverse of seal_blob followed by gunzip. Every failure yields no plaintext at all.
Result<Bytes> open_blob(const mlkem::DecapsulationKey& key, std::string_view info, ByteView blob,
                        std::size_t max_plaintext) {
  if (blob.size() < kBlobOverhead) {
    return make_error(Errc::malformed, "E2E blob too short: " + std::to_string(blob.size()) + " bytes, minimum " +
                                           std::to_string(kBlobOverhead));
  }
  const ByteView ct = blob.first(mlkem::kCiphertextBytes);
  const ByteView nonce = blob.subspan(mlkem::kCiphertextBytes, kNonceBytes);
  const ByteView sealed = blob.subspan(mlkem::kCiphertextBytes + kNonceBytes);
  // A wrong key or a tampered ciphertext does not fail here: ML-KEM's implicit rejection yields
  // an unrelated secret, and the AEAD tag check below is what refuses it.
  auto shared = mlkem::decapsulate(key, ct);
  if (!shared) return std::move(shared).error();
  auto aead_key = derive_key(*shared, ct, info);
  if (!aead_key) return std::move(aead_key).error();
  auto compressed = crypto::aead_open(crypto::Aead::chacha20_poly1305, aead_key->span(), nonce, sealed);
  if (!compressed) return make_error(Errc::authentication_failed, "E2E decryption failed");
  auto plain = crypto::gzip_decompress(*compressed, max_plaintext);
  if (!plain) {
    Error e = std::move(plain).error();
    if (e.code == Errc::limit_exceeded) {
      return make_error(Errc::limit_exceeded,
                        "E2E body decompresses to more than " + std::to_string(max_plaintext) + " bytes");
    }
    return make_error(Errc::malformed, "E2E body is not valid gzip: " + e.message);
  }
  return plain;
}

// Aborts: the only failures of these calls are wrong key or nonce lengths, which the types here
// rule out, or a broken OpenSSL. Used where the header's signatures leave no error channel.
template <typename T>
T must(Result<T> r) {
  if (!r) std::abort();
  return std::move(r).value();
}

std::string string_event(std::string_view field, ByteView payload) {
  std::string out;
  const std::string b64 = base64_encode_public(payload);  // ciphertext
  out.reserve(field.size() + b64.size() + 8);
  out.append("{\"").append(field).append("\":\"").append(b64).append("\"}");
  return out;
}

// The decoded string value of a member, or an error naming the field (never its content).
Result<Bytes> base64_member(std::string_view json, const json_text::MemberSpan& span, std::string_view field) {
  const std::string_view literal = json.substr(span.value_begin, span.value_end - span.value_begin);
  if (literal.empty() || literal.front() != '"') {
    return make_error(Errc::malformed, std::string(field) + " is not a string");
  }
  auto text = json_text::unquote(literal);
  if (!text) return make_error(Errc::malformed, std::string(field) + ": " + text.error().message);
  auto bytes = base64_decode_public(*text);  // ciphertext or a public key
  if (!bytes) return make_error(Errc::malformed, std::string(field) + " is not base64");
  return std::move(*bytes);
}

}  // namespace

// ---- client side ------------------------------------------------------------------------------

Result<SealedRequest> seal_request(const mlkem::EncapsulationKey& instance_key, std::string_view request_json,
                                   int gzip_level) {
  auto request = json_text::ObjectMembers::index(request_json);
  if (!request) return std::move(request).error();
  return seal_request(instance_key, *request, mlkem::DecapsulationKey::generate(), gzip_level);
}

Result<SealedRequest> seal_request(const mlkem::EncapsulationKey& instance_key, const json_text::ObjectMembers& request,
                                   mlkem::DecapsulationKey response_key, int gzip_level) {
  return seal_request(mlkem::encapsulate(instance_key), request, std::move(response_key), gzip_level);
}

Result<SealedRequest> seal_request(const mlkem::Encapsulation& to_instance, const json_text::ObjectMembers& request,
                                   mlkem::DecapsulationKey response_key, int gzip_level) {
  // Base64's alphabet needs no JSON escaping: the literal is the text in quotes, without a scan.
  const std::string pk = '"' + base64_encode_public(response_key.encapsulation_key().bytes()) + '"';
  // Replaces a client-supplied e2e_response_pk rather than sending two.
  auto json = request.with_member(kResponseKeyField, pk);
  if (!json) return std::move(json).error();
  auto compressed = crypto::gzip_compress(as_bytes(*json), gzip_level);
  if (!compressed) return std::move(compressed).error();
  auto key = derive_key(to_instance.shared_secret, to_instance.ciphertext, kInfoRequest);
  if (!key) return std::move(key).error();
  auto blob = seal_blob(to_instance.ciphertext, *key, *compressed);
  if (!blob) return std::move(blob).error();
  return SealedRequest{std::move(*blob), std::move(response_key)};
}

Result<std::string> open_response(const mlkem::DecapsulationKey& response_key, ByteView blob,
                                  std::size_t max_plaintext) {
  auto plain = open_blob(response_key, kInfoResponse, blob, max_plaintext);
  if (!plain) return std::move(plain).error();
  return to_string(*plain);
}

Result<StreamOpener::Item> StreamOpener::open_event(std::string_view data) {
  // Fail closed: once anything went wrong the stream is over, whatever arrives next.
  if (failed_) return make_error(Errc::protocol, "E2E stream already failed");
  auto result = open_event_impl(data);
  if (!result) failed_ = true;
  return result;
}

namespace {

// The shape every chunk event of a stream has, {"e2e":"<base64>"}, recognised without the four
// validating JSON scans below (a third of the work of opening a chunk: bench/run-proxy, streams).
// What is between the quotes is only a candidate: when it decodes as base64 it held nothing but
// base64 characters, which need no escaping, so the text was valid JSON with that one member and
// the result is the general path's. When it does not decode, the general path takes over.
std::optional<std::string_view> plain_chunk_payload(std::string_view data) {
  constexpr std::string_view kPrefix = "{\"e2e\":\"";
  constexpr std::string_view kSuffix = "\"}";
  if (data.size() < kPrefix.size() + kSuffix.size() || data.substr(0, kPrefix.size()) != kPrefix ||
      data.substr(data.size() - kSuffix.size()) != kSuffix) {
    return std::nullopt;
  }
  return data.substr(kPrefix.size(), data.size() - kPrefix.size() - kSuffix.size());
}

}  // namespace

Result<StreamOpener::Item> StreamOpener::open_chunk(ByteView raw) {
  if (!stream_key_) return make_error(Errc::protocol, "E2E stream sent an e2e chunk before e2e_init");
  if (raw.size() < kNonceBytes + crypto::kAeadTagBytes) {
    return make_error(Errc::malformed, "e2e chunk too short: " + std::to_string(raw.size()) + " bytes");
  }
  auto plain = crypto::aead_open(crypto::Aead::chacha20_poly1305, stream_key_->span(), raw.first(kNonceBytes),
                                 raw.subspan(kNonceBytes));
  if (!plain) return make_error(Errc::authentication_failed, "E2E stream chunk decryption failed");
  return Item{Kind::plaintext, to_string(*plain)};
}

Result<StreamOpener::Item> StreamOpener::open_event_impl(std::string_view data) {
  if (const auto payload = plain_chunk_payload(data)) {
    if (auto raw = base64_decode_public(*payload)) return open_chunk(*raw);  // ciphertext
  }
  auto init = json_text::find_member(data, kInitField);
  if (!init) return make_error(Errc::malformed, "E2E stream event is not a JSON object: " + init.error().message);
  // The text is valid now; the other lookups cannot fail on syntax.
  auto chunk = json_text::find_member(data, kChunkField);
  auto error = json_text::find_member(data, kErrorField);
  auto usage = json_text::find_member(data, kUsageField);
  if (!chunk || !error || !usage) return make_error(Errc::internal, "E2E stream event lookup failed");

  const int e2e_fields = int{init->has_value()} + int{chunk->has_value()} + int{error->has_value()};
  if (e2e_fields > 1) return make_error(Errc::malformed, "E2E stream event carries more than one e2e field");

  if (init->has_value()) {
    if (stream_key_) return make_error(Errc::protocol, "E2E stream sent a second e2e_init");
    auto ct = base64_member(data, **init, kInitField);
    if (!ct) return std::move(ct).error();
    if (ct->size() != mlkem::kCiphertextBytes) {
      return make_error(Errc::malformed, "e2e_init ciphertext is " + std::to_string(ct->size()) + " bytes, expected " +
                                             std::to_string(mlkem::kCiphertextBytes));
    }
    auto shared = mlkem::decapsulate(response_key_, *ct);
    if (!shared) return std::move(shared).error();
    auto key = derive_key(*shared, *ct, kInfoStream);
    if (!key) return std::move(key).error();
    stream_key_ = std::move(*key);
    return Item{Kind::init, {}};
  }
  if (chunk->has_value()) {
    if (!stream_key_) return make_error(Errc::protocol, "E2E stream sent an e2e chunk before e2e_init");
    auto raw = base64_member(data, **chunk, kChunkField);
    if (!raw) return std::move(raw).error();
    return open_chunk(*raw);
  }
  if (error->has_value()) {
    const auto& span = **error;
    return Item{Kind::error, std::string(data.substr(span.value_begin, span.value_end - span.value_begin))};
  }
  if (usage->has_value()) return Item{Kind::usage, std::string(data)};
  // Anything else in plaintext (including a bare [DONE], which production never sends: its
  // [DONE] is inside the ciphertext) is not from the instance and is not passed on.
  return make_error(Errc::protocol, "E2E stream sent an unexpected plaintext event");
}

// ---- instance side ----------------------------------------------------------------------------

Result<OpenedRequest> open_request(const mlkem::DecapsulationKey& instance_key, ByteView blob,
                                   std::size_t max_plaintext) {
  auto plain = open_blob(instance_key, kInfoRequest, blob, max_plaintext);
  if (!plain) return std::move(plain).error();
  const std::string_view text = as_text(*plain);

  // One validating pass for both members read here and for removing the key member.
  auto members = json_text::ObjectMembers::index(text);
  if (!members) return make_error(Errc::malformed, "E2E request is not a JSON object: " + members.error().message);
  const auto pk_span = members->find(kResponseKeyField);
  if (!pk_span) return make_error(Errc::invalid_key, "E2E request has no e2e_response_pk");
  const bool is_stream = members->value("stream") == "true";
  auto pk_bytes = base64_member(text, *pk_span, kResponseKeyField);
  if (!pk_bytes) return make_error(Errc::invalid_key, std::move(pk_bytes).error().message);
  if (pk_bytes->size() != mlkem::kEncapsulationKeyBytes) {
    return make_error(Errc::invalid_key, "e2e_response_pk is " + std::to_string(pk_bytes->size()) +
                                             " bytes, expected " + std::to_string(mlkem::kEncapsulationKeyBytes));
  }
  // The checks only: building the key (the matrix expansion) is AnswerKey's, later.
  if (auto checked = mlkem::EncapsulationKey::check(*pk_bytes); !checked)
    return make_error(Errc::invalid_key, "e2e_response_pk: " + checked.error().message);

  OpenedRequest opened{members->without_member(kResponseKeyField), {}, is_stream};
  std::copy(pk_bytes->begin(), pk_bytes->end(), opened.client_key.begin());
  return opened;
}

AnswerKey::AnswerKey(const mlkem::EncapsulationKey& client_key, Use use) : use_(use) {
  const mlkem::Encapsulation enc = mlkem::encapsulate(client_key);
  ciphertext_ = enc.ciphertext;
  key_ = must(derive_key(enc.shared_secret, enc.ciphertext, use == Use::stream ? kInfoStream : kInfoResponse));
}

AnswerKey::AnswerKey(std::span<const std::uint8_t, mlkem::kEncapsulationKeyBytes> checked_client_key, Use use)
    : AnswerKey(must(mlkem::EncapsulationKey::parse(checked_client_key)), use) {}

Result<Bytes> seal_response(AnswerKey key, ByteView body, int gzip_level) {
  if (key.use() != AnswerKey::Use::body)
    return make_error(Errc::invalid_argument, "seal_response: the answer key was made for a stream");
  auto compressed = crypto::gzip_compress(body, gzip_level);
  if (!compressed) return std::move(compressed).error();
  return seal_blob(key.ciphertext(), key.key(), *compressed);
}

Result<Bytes> seal_response(const mlkem::EncapsulationKey& client_key, ByteView body, int gzip_level) {
  return seal_response(AnswerKey(client_key, AnswerKey::Use::body), body, gzip_level);
}

StreamSealer::StreamSealer(const mlkem::EncapsulationKey& client_key)
    : StreamSealer(AnswerKey(client_key, AnswerKey::Use::stream)) {}

StreamSealer::StreamSealer(AnswerKey key) {
  if (key.use() != AnswerKey::Use::stream) std::abort();
  key_ = key.key();
  init_json_ = string_event(kInitField, key.ciphertext());
}

std::string StreamSealer::seal_chunk_json(ByteView chunk) {
  // Stream chunks are not compressed (spec section 10.1): nonce || ciphertext || tag, base64.
  std::array<std::uint8_t, kNonceBytes> nonce{};
  crypto::random_bytes(nonce);
  const Bytes sealed = must(crypto::aead_seal(crypto::Aead::chacha20_poly1305, key_.span(), nonce, chunk));
  Bytes raw;
  raw.reserve(nonce.size() + sealed.size());
  append(raw, nonce);
  append(raw, sealed);
  return string_event(kChunkField, raw);
}

}  // namespace e2ee::protocol::chutes

// The Chutes envelope (src/protocol/chutes/envelope.cpp), both sides. The gateway opens request
// blobs from anyone who has the instance's public key, so everything after the AEAD is reachable
// by an attacker too: the modes below reach it by sealing the fuzzer's bytes first.
//
// Input: mode byte % 7, then
//   0  a request blob, opened with the fixed instance key (gateway)
//   1  a response blob, opened with the fixed response key (proxy)
//   2  request plaintext: gzipped and sealed to the instance key here, then opened (gateway)
//   3  a client's JSON: seal_request → open_request → seal_response → open_response
//   4  a response body: seal_response → open_response, at and below its size, tampered, truncated
//   5  a stream, one event per line: "@" is a genuine e2e_init, "!text" a genuine chunk of text,
//      "#text" a chunk sealed under another key, anything else the event's data as it stands
//   6  like 2, but the bytes are the compressed payload itself (authenticated non-gzip)
// Checks: errors have the documented codes (nothing but malformed before authentication); what
// opens is consistent (no e2e_response_pk left, valid JSON, the stream flag, the client key the
// sender put in, never more than max_plaintext); round trips return the input byte for byte;
// any change to a sealed blob is refused; a stream fails closed and stays failed, opens genuine
// chunks to their text, and never yields plaintext it did not receive under its key.

#include <array>

#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "crypto/aead.hpp"
#include "crypto/gzip.hpp"
#include "crypto/hkdf.hpp"
#include "fuzz_keys.hpp"
#include "fuzz_support.hpp"
#include "protocol/chutes/envelope.hpp"

namespace {

namespace chutes = e2ee::protocol::chutes;
namespace mlkem = e2ee::crypto::mlkem768;
namespace json_text = e2ee::json_text;
using e2ee::Bytes;
using e2ee::ByteView;
using e2ee::Errc;

const mlkem::DecapsulationKey& instance_key() {
  static const auto key = e2ee::fuzz::fixed_mlkem_key(1);
  return key;
}
const mlkem::DecapsulationKey& response_key() {
  static const auto key = e2ee::fuzz::fixed_mlkem_key(2);
  return key;
}

// The blob layout of chutes-protocol.md section 2, with the encapsulation randomness and the
// nonce taken from the input, so that a reproducer seals the same bytes again.
Bytes seal_blob(const mlkem::EncapsulationKey& to, std::string_view info, ByteView payload, e2ee::fuzz::Rng& rng) {
  std::array<std::uint8_t, 32> m{};
  std::array<std::uint8_t, 12> nonce{};
  for (auto& b : m) b = static_cast<std::uint8_t>(rng.next());
  for (auto& b : nonce) b = static_cast<std::uint8_t>(rng.next());
  const auto enc = mlkem::encapsulate_derand(to, m);
  const auto key = e2ee::crypto::hkdf_sha256_32(enc.shared_secret.span(), ByteView(enc.ciphertext).first(16),
                                                e2ee::as_bytes(info));
  FUZZ_CHECK(key.has_value());
  const auto sealed = e2ee::crypto::aead_seal(e2ee::crypto::Aead::chacha20_poly1305, key->span(), nonce, payload);
  FUZZ_CHECK(sealed.has_value());
  Bytes blob(enc.ciphertext.begin(), enc.ciphertext.end());
  e2ee::append(blob, nonce);
  e2ee::append(blob, *sealed);
  return blob;
}

bool is_stream(std::string_view json) {
  const auto span = json_text::find_member(json, "stream");
  return span && *span && json.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin) == "true";
}

// What open_request promises about a request it accepted.
void check_opened(const chutes::OpenedRequest& opened, std::string_view plaintext, std::size_t limit) {
  FUZZ_CHECK(plaintext.size() <= limit);
  FUZZ_CHECK(json_text::validate(opened.json).has_value());
  const auto left = json_text::find_member(opened.json, chutes::kResponseKeyField);
  FUZZ_CHECK(left && !*left);
  const auto removed = json_text::remove_member(plaintext, chutes::kResponseKeyField);
  FUZZ_CHECK(removed && *removed == opened.json);
  FUZZ_CHECK(opened.stream == is_stream(opened.json));
  const auto pk = json_text::find_member(plaintext, chutes::kResponseKeyField);
  FUZZ_CHECK(pk && *pk);
  const auto b64 = json_text::unquote(plaintext.substr((*pk)->value_begin, (*pk)->value_end - (*pk)->value_begin));
  FUZZ_CHECK(b64.has_value());
  const auto raw = e2ee::base64_decode(*b64);
  FUZZ_CHECK(raw && *raw == Bytes(opened.client_key.begin(), opened.client_key.end()));
  // open_request only checks the key; building it later (AnswerKey) must not fail.
  FUZZ_CHECK(e2ee::crypto::mlkem768::EncapsulationKey::parse(opened.client_key).has_value());
}

void open_raw(std::uint8_t mode, ByteView blob) {
  const std::size_t limit = std::size_t{1} << 20;
  auto check_error = [&](const e2ee::Error& e) {
    if (blob.size() < chutes::kBlobOverhead) FUZZ_CHECK(e.code == Errc::malformed);
    FUZZ_CHECK(e.code == Errc::malformed || e.code == Errc::authentication_failed || e.code == Errc::limit_exceeded ||
               e.code == Errc::invalid_key);
  };
  if (mode == 0) {
    const auto opened = chutes::open_request(instance_key(), blob, limit);
    if (!opened) check_error(opened.error());
  } else {
    const auto opened = chutes::open_response(response_key(), blob, limit);
    if (!opened) check_error(opened.error());
  }
}

// Modes 2 and 6: authenticated bytes of the fuzzer's choosing reach gunzip and the JSON checks.
void open_sealed_request(std::string_view rest, bool compress, e2ee::fuzz::Rng& rng) {
  Bytes payload;
  if (compress) {
    auto gz = e2ee::crypto::gzip_compress(e2ee::as_bytes(rest), static_cast<int>(rng.below(10)));
    FUZZ_CHECK(gz.has_value());
    payload = std::move(*gz);
  } else {
    payload = e2ee::to_bytes(rest);
  }
  const Bytes blob = seal_blob(instance_key().encapsulation_key(), chutes::kInfoRequest, payload, rng);
  const std::size_t limit = rng.coin() ? rest.size() + rng.below(4) : rest.size() / 2;
  const auto opened = chutes::open_request(instance_key(), blob, limit);
  if (opened) {
    // Uncompressed mode: only a payload that happens to be gzip opens, to what it holds.
    const auto plain = compress ? e2ee::Result<Bytes>(e2ee::to_bytes(rest)) : e2ee::crypto::gzip_decompress(payload, limit);
    FUZZ_CHECK(plain.has_value());
    check_opened(*opened, e2ee::as_text(*plain), limit);
    e2ee::fuzz::emit_seed(0, e2ee::as_text(blob));
    return;
  }
  const Errc code = opened.error().code;
  FUZZ_CHECK_MSG(code == Errc::malformed || code == Errc::limit_exceeded || code == Errc::invalid_key, opened.error().message);
  if (compress) FUZZ_CHECK((code == Errc::limit_exceeded) == (rest.size() > limit));
}

void request_round_trip(std::string_view json) {
  const auto sealed = chutes::seal_request(instance_key().encapsulation_key(), json);
  if (!sealed) return;  // not a JSON object
  const auto opened = chutes::open_request(instance_key(), sealed->blob);
  FUZZ_CHECK_MSG(opened.has_value(), opened.error().message);
  const auto expected = json_text::remove_member(json, chutes::kResponseKeyField);
  FUZZ_CHECK(expected && *expected == opened->json);
  FUZZ_CHECK(opened->client_key == sealed->response_key.encapsulation_key().bytes());
  FUZZ_CHECK(opened->stream == is_stream(json));
  e2ee::fuzz::emit_seed(0, e2ee::as_text(sealed->blob));
  const auto pk = e2ee::base64_encode(sealed->response_key.encapsulation_key().bytes());
  if (const auto plain = json_text::set_member(json, chutes::kResponseKeyField, json_text::quote(pk)))
    e2ee::fuzz::emit_seed(2, *plain);

  const auto reply = chutes::seal_response(chutes::AnswerKey(opened->client_key, chutes::AnswerKey::Use::body),
                                           e2ee::as_bytes(opened->json));
  FUZZ_CHECK(reply.has_value());
  const auto answer = chutes::open_response(sealed->response_key, *reply);
  FUZZ_CHECK(answer && *answer == opened->json);
}

void response_round_trip(std::string_view body, e2ee::fuzz::Rng& rng) {
  const auto blob = chutes::seal_response(response_key().encapsulation_key(), e2ee::as_bytes(body),
                                          static_cast<int>(rng.below(10)));
  FUZZ_CHECK(blob.has_value());
  e2ee::fuzz::emit_seed(1, e2ee::as_text(*blob));
  const auto opened = chutes::open_response(response_key(), *blob, body.size());
  FUZZ_CHECK(opened && *opened == body);
  if (!body.empty()) {
    const auto below = chutes::open_response(response_key(), *blob, body.size() - 1);
    FUZZ_CHECK(!below && below.error().code == Errc::limit_exceeded);
  }
  Bytes tampered = *blob;
  tampered[rng.below(tampered.size())] ^= static_cast<std::uint8_t>(1u << rng.below(8));
  const auto refused = chutes::open_response(response_key(), tampered);
  FUZZ_CHECK(!refused && refused.error().code == Errc::authentication_failed);
  const auto cut = ByteView(*blob).first(rng.below(blob->size()));
  const auto short_blob = chutes::open_response(response_key(), cut);
  FUZZ_CHECK(!short_blob);
  if (cut.size() < chutes::kBlobOverhead) FUZZ_CHECK(short_blob.error().code == Errc::malformed);
}

void stream(std::string_view rest) {
  // Sealers for this process: their e2e_init differs between runs, so input can only refer to it.
  static chutes::StreamSealer genuine(response_key().encapsulation_key());
  static const auto other_key = e2ee::fuzz::fixed_mlkem_key(3);
  static chutes::StreamSealer foreign(other_key.encapsulation_key());
  static const std::string init = genuine.init_event_json();

  chutes::StreamOpener opener(response_key());
  bool failed = false;
  bool genuine_key = false;  // the stream key is the one of `genuine`
  bool any_init = false;
  for (const std::string_view line : e2ee::fuzz::lines_of(rest)) {
    const char tag = line.empty() ? '\0' : line.front();
    const std::string_view text = line.empty() ? line : line.substr(1);
    const std::string data = tag == '@'   ? init
                             : tag == '!' ? genuine.seal_chunk_json(e2ee::as_bytes(text))
                             : tag == '#' ? foreign.seal_chunk_json(e2ee::as_bytes(text))
                                          : std::string(line);
    const auto item = opener.open_event(data);
    if (failed) {
      FUZZ_CHECK(!item);  // fail closed, for good
      continue;
    }
    if (tag == '@') FUZZ_CHECK(item.has_value() == !any_init);
    if (tag == '!' && genuine_key) FUZZ_CHECK(item && item->kind == chutes::StreamOpener::Kind::plaintext && item->text == text);
    if (tag == '#') FUZZ_CHECK(!item);
    if (!item) {
      failed = true;
      continue;
    }
    switch (item->kind) {
      case chutes::StreamOpener::Kind::init:
        FUZZ_CHECK(!any_init);
        any_init = true;
        genuine_key = tag == '@';
        break;
      case chutes::StreamOpener::Kind::plaintext:
        FUZZ_CHECK(tag == '!' && genuine_key);
        break;
      case chutes::StreamOpener::Kind::usage:
        FUZZ_CHECK(item->text == data);
        break;
      case chutes::StreamOpener::Kind::error:
        FUZZ_CHECK(json_text::validate(item->text).has_value());
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = e2ee::fuzz::split_mode(data, size);
  e2ee::fuzz::Rng rng(e2ee::fuzz::text_of(data, size));
  switch (mode % 7) {
    case 0:
    case 1:
      open_raw(mode % 7, e2ee::as_bytes(rest));
      break;
    case 2:
      open_sealed_request(rest, true, rng);
      break;
    case 3:
      request_round_trip(rest);
      break;
    case 4:
      response_round_trip(rest, rng);
      break;
    case 5:
      stream(rest);
      break;
    default:
      open_sealed_request(rest, false, rng);
      break;
  }
  return 0;
}

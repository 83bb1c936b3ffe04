#pragma once
// The Chutes E2EE envelope (../shared/specs/chutes-protocol.md sections 2, 5, 6, 9, 10): bytes in,
// bytes out, no I/O. Both sides live here — the client (e2ee-proxy) and the instance
// (e2ee-gateway) — so each is tested against the other and against an independent peer.
//
//   blob        = ct_kem (1088) || nonce (12) || ChaCha20-Poly1305(key, nonce, gzip(json)) || tag (16)
//   key         = HKDF-SHA256(ikm = ML-KEM shared secret, salt = ct_kem[0:16], info, 32 bytes)
//   info        = "e2e-req-v1" (request) | "e2e-resp-v1" (non-stream response) | "e2e-stream-v1"
//   stream      = data: {"e2e_init":"<b64 ct_kem>"}  then  data: {"e2e":"<b64 nonce||ct||tag>"} per
//                 chunk of the engine's raw bytes (not compressed), plus plaintext {"usage":…} events

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/json_text.hpp"
#include "common/result.hpp"
#include "crypto/mlkem768.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::protocol::chutes {

inline constexpr std::string_view kInfoRequest = "e2e-req-v1";
inline constexpr std::string_view kInfoResponse = "e2e-resp-v1";
inline constexpr std::string_view kInfoStream = "e2e-stream-v1";
inline constexpr std::string_view kResponseKeyField = "e2e_response_pk";
inline constexpr std::size_t kBlobOverhead = 1088 + 12 + 16;
inline constexpr std::size_t kDefaultMaxPlaintext = 64 * 1024 * 1024;

// ---- client side (e2ee-proxy) --------------------------------------------------------------

struct SealedRequest {
  Bytes blob;                                      // body of POST /e2e/invoke
  crypto::mlkem768::DecapsulationKey response_key; // fresh per request; opens the answer
};

// Adds "e2e_response_pk" (a fresh ML-KEM-768 key, base64) to the top-level JSON object without
// touching any other byte, gzips at `gzip_level`, and seals to the instance key.
Result<SealedRequest> seal_request(const crypto::mlkem768::EncapsulationKey& instance_key,
                                   std::string_view request_json, int gzip_level = 1);
// The same for a body the caller has already indexed (`request` indexes the request JSON), which
// then is not scanned again, with a fresh response key the caller made ahead of time (it must
// never have been used, and is used for this request only).
Result<SealedRequest> seal_request(const crypto::mlkem768::EncapsulationKey& instance_key,
                                   const json_text::ObjectMembers& request,
                                   crypto::mlkem768::DecapsulationKey response_key, int gzip_level = 1);
// The same with the encapsulation to the instance key made ahead of time too. It must be fresh,
// made to this request's instance key, and used for this request only.
Result<SealedRequest> seal_request(const crypto::mlkem768::Encapsulation& to_instance,
                                   const json_text::ObjectMembers& request,
                                   crypto::mlkem768::DecapsulationKey response_key, int gzip_level = 1);

// Opens a non-stream response blob: decapsulate, HKDF("e2e-resp-v1"), decrypt, gunzip.
Result<std::string> open_response(const crypto::mlkem768::DecapsulationKey& response_key, ByteView blob,
                                  std::size_t max_plaintext = kDefaultMaxPlaintext);

// Decrypts the data of a Chutes SSE stream, event by event (the caller splits SSE events).
class StreamOpener {
 public:
  explicit StreamOpener(const crypto::mlkem768::DecapsulationKey& response_key) : response_key_(response_key) {}

  enum class Kind {
    plaintext,  // decrypted bytes of the engine's own SSE stream (feed to an SSE parser)
    usage,      // a plaintext {"usage":…} billing event; `text` is its JSON
    error,      // an {"e2e_error":…} event; `text` is the error's JSON value
    init,       // the e2e_init event (key established; nothing to emit)
  };
  struct Item {
    Kind kind;
    std::string text;
  };

  // `data` is one SSE event's data field. Errors: malformed JSON/base64, e2e before e2e_init, a
  // second e2e_init, more than one of e2e_init/e2e/e2e_error in one event, an authentication
  // failure (tampering), any other plaintext event (a bare [DONE] included: production sends its
  // [DONE] inside the ciphertext) — each ends the stream: every later call fails too.
  Result<Item> open_event(std::string_view data);

 private:
  Result<Item> open_event_impl(std::string_view data);
  Result<Item> open_chunk(ByteView raw);  // nonce || ciphertext || tag of one e2e event

  const crypto::mlkem768::DecapsulationKey& response_key_;
  std::optional<crypto::SecretArray<32>> stream_key_;
  bool failed_ = false;
};

// ---- instance side (e2ee-gateway) ------------------------------------------------------------

struct OpenedRequest {
  std::string json;  // the client's JSON with e2e_response_pk removed, other bytes unchanged
  // e2e_response_pk, which passed FIPS 203's length and modulus checks. Not yet expanded into a
  // key: AnswerKey does that, so it can overlap the engine's work.
  std::array<std::uint8_t, crypto::mlkem768::kEncapsulationKeyBytes> client_key{};
  bool stream = false;  // the body's "stream" member is true
};

// Opens a request blob with the instance's key: decapsulate, HKDF("e2e-req-v1"), decrypt,
// gunzip (bounded by max_plaintext), validate JSON, extract and validate e2e_response_pk.
// Errors: Errc::malformed (blob shorter than kBlobOverhead, plaintext not gzip, JSON invalid or
// not an object), Errc::authentication_failed (wrong key or tampering), Errc::limit_exceeded
// (decompresses past max_plaintext), Errc::invalid_key (e2e_response_pk missing, not a base64
// string, not 1184 bytes, or failing the FIPS 203 modulus check). Duplicate e2e_response_pk
// members: the last is used (as orjson does) and all are removed.
Result<OpenedRequest> open_request(const crypto::mlkem768::DecapsulationKey& instance_key, ByteView blob,
                                   std::size_t max_plaintext = kDefaultMaxPlaintext);

// The key of one answer: a fresh encapsulation to the client's key and the AEAD key derived from
// it, HKDF("e2e-resp-v1") for a response body or HKDF("e2e-stream-v1") for a stream. It does not
// depend on the answer, so the gateway makes it while the engine works. Used once: the sealers
// below take it by value.
class AnswerKey {
 public:
  enum class Use { body, stream };
  AnswerKey(const crypto::mlkem768::EncapsulationKey& client_key, Use use);
  // From OpenedRequest::client_key: builds the key, then as above. The bytes must have passed
  // EncapsulationKey::check (open_request's have); it aborts on bytes that fail it.
  AnswerKey(std::span<const std::uint8_t, crypto::mlkem768::kEncapsulationKeyBytes> checked_client_key, Use use);

  Use use() const noexcept { return use_; }
  const crypto::mlkem768::Ciphertext& ciphertext() const noexcept { return ciphertext_; }
  const crypto::SecretArray<32>& key() const noexcept { return key_; }

 private:
  crypto::mlkem768::Ciphertext ciphertext_{};
  crypto::SecretArray<32> key_;
  Use use_;
};

// Seals a complete response body: gzip, then ChaCha20-Poly1305 under the answer key, after its
// KEM ciphertext. Errors: Errc::invalid_argument for a key made for a stream.
Result<Bytes> seal_response(AnswerKey key, ByteView body, int gzip_level = 1);
// The same with a fresh answer key for `client_key`.
Result<Bytes> seal_response(const crypto::mlkem768::EncapsulationKey& client_key, ByteView body, int gzip_level = 1);

// Encrypts a stream chunk by chunk. init_event() must come first.
class StreamSealer {
 public:
  explicit StreamSealer(const crypto::mlkem768::EncapsulationKey& client_key);
  // `key` must be made for a stream (AnswerKey::Use::stream); aborts otherwise (a programming error).
  explicit StreamSealer(AnswerKey key);
  // {"e2e_init":"<b64 ciphertext>"}
  const std::string& init_event_json() const noexcept { return init_json_; }
  // {"e2e":"<b64 nonce||ct||tag>"} for one chunk of raw engine bytes.
  std::string seal_chunk_json(ByteView chunk);

 private:
  crypto::SecretArray<32> key_;
  std::string init_json_;
};

}  // namespace e2ee::protocol::chutes

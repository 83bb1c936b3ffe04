#pragma once
// Which fields of a chat-completions request and response are encrypted, and how, for each
// family (near-phala-protocol.md §5, §6, §8, §10.4; venice-protocol.md §5, §6). One walker for
// all providers, steered by a FieldPolicy, in both directions and on both sides. Every byte
// outside the encrypted fields is kept (the body is edited in place at value spans, never
// re-serialised).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "protocol/field/envelope.hpp"

namespace e2ee::protocol::field {

// dstack v2: per-field AAD and replay protection (near-phala-protocol.md §8).
struct V2Context {
  std::string nonce;        // X-E2EE-Nonce, raw
  std::int64_t timestamp;   // X-E2EE-Timestamp, as an integer (its canonical decimal enters the AAD)
};

// v2|req|algo=…|model=…|m=<i>|c=<j or ->|n=…|ts=…
std::string request_aad(Algo algo, const V2Context& v2, std::string_view model, std::size_t message,
                        std::optional<std::size_t> part);
// v2|resp|algo=…|model=…|id=…|choice=<k>|field=<name>|n=…|ts=…
std::string response_aad(Algo algo, const V2Context& v2, std::string_view model, std::string_view id,
                         std::size_t choice, std::string_view field);

struct FieldPolicy {
  Scheme scheme = Scheme::ecdsa;
  std::optional<V2Context> v2;  // dstack v2 AAD; nullopt: no AAD
  // NEAR's X-Encrypt-All-Fields: also tool calls (names, arguments), tool definitions, names,
  // refusal. Without it those travel in plaintext (and the docs say so).
  bool all_fields = false;
  // Response side: also `reasoning` (newer vLLM) besides content and reasoning_content.
  bool reasoning_field = true;
  // A content array (multimodal) travels as ONE encrypted JSON string of the array and becomes
  // the array again after decryption (dstack PR #7, NEAR); false: text parts encrypted one by one
  // with AAD c=<j> and other parts passed through (dstack's per-part mode).
  bool arrays_as_json = true;
};

// ---- client side (e2ee-proxy) ------------------------------------------------------------------

// Encrypts messages[].content of every role (and with all_fields: the other fields) to the model key.
Result<std::string> encrypt_request(std::string_view chat_json, const FieldPolicy& policy, const PeerKey& model_key);
// Decrypts a chat.completion (non-stream) or one chat.completion.chunk (stream) addressed to
// `client_key`. Fail closed: an expected-encrypted field that is neither an envelope nor an
// empty/whitespace string is an error, as is any envelope that does not open.
Result<std::string> decrypt_response(std::string_view completion_json, const FieldPolicy& policy, const KeyPair& client_key);

// ---- server side (e2ee-gateway) ----------------------------------------------------------------

// Decrypts what the client encrypted; non-UTF-8 plaintext is an error. A content string whose
// plaintext is a JSON array becomes that array (the multimodal convention).
Result<std::string> decrypt_request(std::string_view chat_json, const FieldPolicy& policy, const KeyPair& model_key);

// Encrypts responses to one client for one request (an ephemeral key per field, or one per
// response when `one_ephemeral`, as dstack does).
class ResponseSealer {
 public:
  ResponseSealer(FieldPolicy policy, PeerKey client_key, bool one_ephemeral);
  ~ResponseSealer();
  // A chat.completion or one chat.completion.chunk; fails closed (never returns plaintext).
  Result<std::string> encrypt(std::string_view completion_json);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace e2ee::protocol::field

#pragma once
// Which fields of a chat-completions request and response are encrypted, and how, for each
// family (near-phala-protocol.md §5, §6, §8, §10.4; venice-protocol.md §5, §6). One walker for
// all providers, steered by a FieldPolicy, in both directions and on both sides. Every byte
// outside the encrypted fields is kept (the body is edited in place at value spans, never
// re-serialised).
//
// Coverage (✓ = always, A = with FieldPolicy::all_fields, R = with reasoning_field):
//   request  messages[i].content (every role)                       ✓  string → one envelope, AAD c=-
//                                                                        array  → arrays_as_json
//            messages[i].{name,refusal,reasoning_content,reasoning}  A
//            messages[i].audio.data                                  A
//            messages[i].tool_calls[j].function.{name,arguments}     A
//            messages[i].function_call.{name,arguments}              A
//            tools[t].function.{name,description}                    A
//            tools[t].function.parameters                            A  its JSON text, encrypted as a
//                                                                        string (NEAR); the server
//                                                                        restores the JSON value
//            tool_choice.function.name, function_call.name           A
//   response choices[k].message|delta .content                       ✓  string, or .text of each part
//            .reasoning_content, .audio.data                         ✓
//            .reasoning                                              R
//            .refusal, .tool_calls[j].function.{name,arguments},     A
//            .function_call.{name,arguments}
//            choices[k].logprobs.{content,refusal}[e].token,         A  (bytes: its JSON text,
//              .bytes, and the same in .top_logprobs[t]                 encrypted as a string)
// Everything else travels in plaintext: roles, tool_call ids, model, sampling parameters,
// usage, finish_reason, ids, the deprecated top-level `functions` list, a response's
// `audio.transcript` (NEAR encrypts only audio.data), and without all_fields
// tool definitions, tool calls, names, refusals and logprobs (the logprobs tokens ARE the
// completion text: a caller that asks for logprobs without all_fields leaks the answer).
// Image and other non-text parts leak when arrays_as_json is false.
//
// Empty strings (risk R7), decided per side:
//   client → server  every covered string is encrypted, "" included: dstack rejects a
//                    plaintext "" (not hex) and Venice requires encrypted content; NEAR opens
//                    the envelope of "" to "".
//   server reads     content "" is accepted as "" in v1 (NEAR's clients send it in plaintext)
//                    and refused in v2 (dstack clients always encrypt; an unauthenticated ""
//                    would let anyone blank a message). Any other content must be an envelope.
//   server → client  every covered string is encrypted, "" included (dstack does so; NEAR
//                    clients open it), except `delta.content == ""`, which is removed from the
//                    chunk as dstack PR #6 does (vLLM's role-only first chunk).
//   client reads     only "" and strings of ASCII whitespace (space, \t, \n, \r, \f, \v) pass
//                    unencrypted (Venice sends formatting whitespace in plaintext); every other
//                    covered string must be an envelope that opens (fail closed).
//
// Server-side strictness for the optional request fields (history reasoning, audio.data, and
// everything under all_fields): NEAR's server opens these leniently so that clients which do
// not encrypt them keep working. Here a value that looks like an envelope (looks_like_envelope)
// must open — never forwarded as ciphertext —, anything else passes as the client's plaintext.
// History `reasoning_content`, `reasoning` and `audio.data` are read that way always (NEAR's
// server decrypts them even without X-Encrypt-All-Fields; dstack clients send plaintext).
//
// Duplicate keys along a walked path (two "content" members in one message, two "messages"
// arrays, …) are refused (Errc::malformed): parsers disagree on which one wins, and the one
// left unencrypted would travel in plaintext.
//
// Errors (messages name the JSON path, never content or key bytes):
//   Errc::invalid_argument  body not valid JSON or not an object; a field of an unexpected type
//                           that cannot be encrypted (client); scheme/key algorithm mismatch;
//                           v2 with ed25519_box; a field that must be encrypted but is not hex
//                           or (v2) is "" (dstack: invalid_e2ee_request)
//   Errc::malformed         envelope too short (dstack: e2ee_decryption_failed), plaintext not
//                           valid UTF-8 ("not valid UTF-8"), a decrypted `parameters`/`bytes`
//                           that is not the JSON it must be, duplicate keys, a v2 `model`/`id`
//                           that is not a string
//   Errc::invalid_key       an envelope's ephemeral key is invalid (off curve, low order, non-canonical)
//   Errc::authentication_failed  an envelope did not open (wrong key, tampering, wrong AAD)

#include <cstdint>
#include <memory>
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
// `model` is the request body's "model" string ("" when absent), unescaped; no field is escaped.
std::string request_aad(Algo algo, const V2Context& v2, std::string_view model, std::size_t message,
                        std::optional<std::size_t> part);
// Our extension for the all_fields request fields dstack does not encrypt: the `c=` slot holds
// the field's path inside message `message` — m=2|c=tool_calls.0.function.arguments,
// m=0|c=name, m=1|c=reasoning_content, m=1|c=audio.data — and top-level fields use m=- —
// m=-|c=tools.1.function.parameters, m=-|c=tool_choice.function.name, m=-|c=function_call.name.
// dstack's own AADs have only digits or "-" in the c= slot, so the two cannot collide.
std::string request_aad_field(Algo algo, const V2Context& v2, std::string_view model,
                              std::optional<std::size_t> message, std::string_view path);
// v2|resp|algo=…|model=…|id=…|choice=<k>|field=<name>|n=…|ts=…
// `model` and `id` are the RESPONSE's (chunk's) own members, "" when absent; `choice` is the
// position in the choices array (not choice.index). Field names: dstack's `content`,
// `reasoning_content`, and `reasoning`; our extension for the rest (positions, not ids):
//   content.<p>                       text of part p of an array content
//   audio.data, refusal
//   tool_calls.<j>.function.name, tool_calls.<j>.function.arguments
//   function_call.name, function_call.arguments
//   logprobs.content.<e>.token, logprobs.content.<e>.bytes,
//   logprobs.content.<e>.top_logprobs.<t>.token, logprobs.content.<e>.top_logprobs.<t>.bytes,
//   and the same under logprobs.refusal.<e>
std::string response_aad(Algo algo, const V2Context& v2, std::string_view model, std::string_view id,
                         std::size_t choice, std::string_view field);

struct FieldPolicy {
  Scheme scheme = Scheme::ecdsa;
  std::optional<V2Context> v2;  // dstack v2 AAD; nullopt: no AAD
  // NEAR's X-Encrypt-All-Fields: also tool calls (names, arguments), tool definitions, names,
  // refusal. Without it those travel in plaintext (and the docs say so). NEAR's server decrypts
  // history reasoning_content/reasoning strictly, so a NEAR client must set this.
  bool all_fields = false;
  // Response side: also `reasoning` (newer vLLM) besides content and reasoning_content. dstack's
  // reference server leaves `reasoning` in plaintext; a client talking to it with this set fails
  // closed on such a chunk, without it passes `reasoning` through as it came.
  bool reasoning_field = true;
  // A content array (multimodal) travels as ONE encrypted JSON string of the array and becomes
  // the array again after decryption (dstack PR #7, NEAR); false: text parts encrypted one by one
  // with AAD c=<j> and other parts passed through (dstack's per-part mode). Client side only:
  // a server opens whatever form arrives (a string whose plaintext is a JSON array becomes the
  // array; an array is opened part by part).
  bool arrays_as_json = true;
};

// ---- client side (e2ee-proxy) ------------------------------------------------------------------

// Encrypts messages[].content of every role (and with all_fields: the other fields) to the model
// key, one fresh ephemeral key per field.
Result<std::string> encrypt_request(std::string_view chat_json, const FieldPolicy& policy, const PeerKey& model_key);
// Decrypts a chat.completion (non-stream) or one chat.completion.chunk (stream) addressed to
// `client_key`. Fail closed: an expected-encrypted field that is neither an envelope nor an
// empty/whitespace string is an error, as is any envelope that does not open. A body without
// `choices` (an error object, a usage-only chunk) comes back unchanged.
Result<std::string> decrypt_response(std::string_view completion_json, const FieldPolicy& policy, const KeyPair& client_key);

// ---- server side (e2ee-gateway) ----------------------------------------------------------------

// Decrypts what the client encrypted; non-UTF-8 plaintext is an error. A content string whose
// plaintext is a JSON array becomes that array (the multimodal convention); other JSON stays text.
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

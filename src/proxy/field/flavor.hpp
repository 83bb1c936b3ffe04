#pragma once
// What differs between the three field-level E2EE providers, behind one interface that
// FieldProvider drives: where attestation comes from and how it is checked, how the request body
// is adjusted, which headers carry the keys, and what the response must confirm.
//
//   venice   /api/v1/tee/attestation, X-Venice-TEE-* headers, ecdsa, always streams upstream
//   nearai   /v1/attestation/report?model=, X-Signing-Algo family, ecdsa | ed25519 (box v1 / XChaCha v2),
//            X-Encrypt-All-Fields, HTTP 421 = stale key
//   dstack   /v1/attestation/report, X-Signing-Algo family, ecdsa | ed25519 (AES-GCM), v1 or v2 with
//            per-field AAD + nonce/timestamp; the X-E2EE-* response headers must confirm encryption

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "http/headers.hpp"
#include "http/url.hpp"
#include "protocol/field/fields.hpp"
#include "proxy/field/attestation.hpp"
#include "proxy/field/session.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy::field {

enum class ProviderKind { venice, nearai, dstack };
std::string_view provider_name(ProviderKind kind) noexcept;  // "Venice", "NEAR AI", "dstack"

struct FieldOptions {
  ProviderKind kind = ProviderKind::dstack;
  http::Url upstream;                  // attestation and chat completions
  http::Url models_upstream;           // GET models (normally = upstream)
  Algo algo = Algo::ecdsa;             // nearai, dstack (Venice speaks ecdsa only)
  int version = 2;                     // nearai: X-Encryption-Version (ed25519 only); dstack: X-E2EE-Version
  bool encrypt_all_fields = false;     // X-Encrypt-All-Fields: tools and tool calls encrypted too
  bool allow_missing_quote = false;    // trust a report without a TDX quote (self-hosted, outside a TEE)
  std::chrono::seconds session_ttl{3600};
  SessionCache::Clock clock;           // tests inject one
};

// The plaintext request as the provider should receive it, before field encryption.
struct PreparedBody {
  std::string json;
  bool upstream_stream = false;
};

// One attempt's encryption policy and key headers.
struct RequestPlan {
  protocol::field::FieldPolicy policy;
  std::vector<std::pair<std::string, std::string>> headers;
};

class Flavor {
 public:
  virtual ~Flavor() = default;
  virtual ProviderKind kind() const noexcept = 0;
  virtual Algo algo() const noexcept = 0;
  // Path and query (below the upstream's base path) of the attestation report.
  virtual std::string attestation_target(std::string_view model, const AttestationNonce& nonce) const = 0;
  virtual Result<VerifiedKey> verify(std::string_view report, std::string_view model, const AttestationNonce& nonce) const = 0;
  virtual std::string chat_path() const = 0;
  virtual std::string models_path() const = 0;
  // Refuses what this provider cannot carry encrypted; adjusts the rest (stream, parameters).
  virtual std::variant<PreparedBody, ProxyError> prepare(std::string_view body, bool client_stream) const = 0;
  // Policy and headers for one attempt with `session` (dstack v2 draws a fresh nonce here).
  virtual RequestPlan plan(const Session& session) const = 0;
  // A 200 answer's headers: whether they confirm what the plan asked for.
  virtual std::optional<ProxyError> check_response(const http::Headers& headers, const RequestPlan& plan) const;
};

std::unique_ptr<Flavor> make_flavor(const FieldOptions& options);
std::unique_ptr<Flavor> make_venice_flavor(const FieldOptions& options);
std::unique_ptr<Flavor> make_nearai_flavor(const FieldOptions& options);
std::unique_ptr<Flavor> make_dstack_flavor(const FieldOptions& options);

// ---- pure parts, exposed for unit tests ----------------------------------------------------------

// Venice (venice-protocol.md §5): stream forced on; venice_parameters.enable_e2ee = true and
// include_venice_system_prompt = false; refused with a 400 naming them: tools/functions, a
// response_format, web or X search, web scraping, a character, non-text content parts, logprobs
// (whose tokens would come back in plaintext); stripped
// (they change no answer's meaning and must not travel in plaintext): tool_choice,
// parallel_tool_calls, function_call, reasoning_effort, reasoning, prompt_cache_key,
// prompt_cache_retention, include_search_results_in_stream, enable_web_citations; text-only part
// arrays flattened to one string (Venice's E2EE takes string content only).
std::variant<PreparedBody, ProxyError> prepare_venice_body(std::string_view body, bool client_stream);

// Whether a chat request asks for token log-probabilities (`logprobs: true` or a non-zero number,
// or `top_logprobs` > 0). Their `token`/`bytes` ARE the answer's text, and a provider that encrypts
// message fields only (Venice; dstack's reference server, near-phala-protocol.md §6; NEAR without
// X-Encrypt-All-Fields, §10.4) returns them in plaintext next to the encrypted content.
bool asks_for_logprobs(std::string_view body);
// The 400 for such a request (`who` is the provider's name, `remedy` how to get them encrypted).
ProxyError logprobs_refused(std::string_view who, std::string_view remedy);

// dstack's response confirmation (near-phala-protocol.md §7): X-E2EE-Applied: true, the version
// and algo we asked for. Anything else is refused: the answer may not be encrypted.
std::optional<ProxyError> check_dstack_response_headers(const http::Headers& headers, int version, Algo algo);

// A non-200 answer of the chat endpoint. `stale_key`: the provider no longer holds the key we
// encrypted to (HTTP 421, e2ee_model_key_mismatch) or could not open our envelopes — worth one
// retry with a fresh attestation.
struct UpstreamFailure {
  bool stale_key = false;
  ProxyError error;
};
UpstreamFailure classify_upstream_error(ProviderKind kind, int status, std::string_view body);

// The query-component encoding of a model id (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view text);

}  // namespace e2ee::proxy::field

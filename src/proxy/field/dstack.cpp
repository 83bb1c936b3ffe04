// Phala's dstack vllm-proxy E2EE (near-phala-protocol.md §2–§8), which e2ee-gateway also serves:
// ecdsa or Ed25519 (AES-GCM), v2 by default with X-E2EE-Nonce / X-E2EE-Timestamp and a per-field
// AAD, and response headers that must confirm the answer was encrypted.

#include <chrono>

#include "common/encoding.hpp"
#include "crypto/random.hpp"
#include "http/headers.hpp"
#include "proxy/field/flavor.hpp"

namespace e2ee::proxy::field {
namespace {

class DstackFlavor final : public Flavor {
 public:
  explicit DstackFlavor(const FieldOptions& options)
      : algo_(options.algo), version_(options.version), all_fields_(options.encrypt_all_fields),
        allow_missing_quote_(options.allow_missing_quote) {}

  ProviderKind kind() const noexcept override { return ProviderKind::dstack; }
  Algo algo() const noexcept override { return algo_; }

  std::string attestation_target(std::string_view, const AttestationNonce& nonce) const override {
    return "/v1/attestation/report?signing_algo=" + std::string(protocol::field::algo_name(algo_)) + "&nonce=" + nonce.hex();
  }
  Result<VerifiedKey> verify(std::string_view report, std::string_view, const AttestationNonce& nonce) const override {
    return verify_dstack_report(report, algo_, nonce, allow_missing_quote_);
  }
  std::string chat_path() const override { return "/v1/chat/completions"; }
  std::string models_path() const override { return "/v1/models"; }

  std::variant<PreparedBody, ProxyError> prepare(std::string_view body, bool client_stream) const override {
    // The reference server leaves logprobs in plaintext (near-phala-protocol.md §6); e2ee-gateway
    // encrypts them with X-Encrypt-All-Fields.
    if (!all_fields_ && asks_for_logprobs(body))
      return logprobs_refused("dstack", ", or use --dstack-encrypt-all-fields with a server that encrypts all fields (e2ee-gateway)");
    return PreparedBody{std::string(body), client_stream};
  }

  RequestPlan plan(const Session& session) const override {
    RequestPlan p;
    using protocol::field::Scheme;
    p.policy.scheme = algo_ == Algo::ecdsa ? Scheme::ecdsa : Scheme::ed25519_aes_gcm;
    // The reference server decrypts message content only; tool fields would reach vLLM as
    // ciphertext, so they are encrypted only when asked for (e2ee-gateway understands it).
    p.policy.all_fields = all_fields_;
    // The reference encrypts content and reasoning_content; newer vLLM also emits `reasoning`,
    // which e2ee-gateway encrypts and the reference leaves in plaintext: refused, fail closed.
    p.policy.reasoning_field = true;
    p.policy.arrays_as_json = true;  // dstack PR #7: an encrypted JSON array becomes the parts again
    p.headers = {
        {"X-Signing-Algo", std::string(protocol::field::algo_name(algo_))},
        {"X-Client-Pub-Key", hex_encode(session.client.public_raw())},
        {"X-Model-Pub-Key", session.model.key_text},
        {"X-E2EE-Version", std::to_string(version_)},
    };
    if (version_ == 2) {
      // A fresh nonce per request (the server refuses a replay) and the time it is bound to; both
      // enter every field's AAD, so a captured request cannot be replayed or spliced.
      std::uint8_t raw[16];
      crypto::random_bytes(raw);
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      protocol::field::V2Context v2{hex_encode(raw), static_cast<std::int64_t>(now)};
      p.headers.emplace_back("X-E2EE-Nonce", v2.nonce);
      p.headers.emplace_back("X-E2EE-Timestamp", std::to_string(v2.timestamp));
      p.policy.v2 = std::move(v2);
    }
    if (all_fields_) p.headers.emplace_back("X-Encrypt-All-Fields", "true");
    return p;
  }

  std::optional<ProxyError> check_response(const http::Headers& headers, const RequestPlan&) const override {
    return check_dstack_response_headers(headers, version_, algo_);
  }

 private:
  Algo algo_;
  int version_;
  bool all_fields_;
  bool allow_missing_quote_;
};

std::string trimmed_lower(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<ProxyError> check_dstack_response_headers(const http::Headers& headers, int version, Algo algo) {
  const auto refuse = [](std::string why) {
    return ProxyError{502, "upstream_error", "e2ee_not_applied",
                      "the dstack server's answer does not confirm end-to-end encryption (" + why +
                          "), so it may be plaintext and was refused",
                      0};
  };
  const auto applied = headers.get("X-E2EE-Applied");
  if (!applied) return refuse("no X-E2EE-Applied header");
  if (trimmed_lower(*applied) != "true") return refuse("X-E2EE-Applied: " + std::string(applied->substr(0, 20)));
  const auto got_version = headers.get("X-E2EE-Version");
  if (!got_version || trimmed_lower(*got_version) != std::to_string(version))
    return refuse("X-E2EE-Version is " + (got_version ? "'" + std::string(got_version->substr(0, 20)) + "'" : std::string("missing")) +
                  ", expected " + std::to_string(version));
  const auto got_algo = headers.get("X-E2EE-Algo");
  const std::string expected_algo(protocol::field::algo_name(algo));
  if (!got_algo || trimmed_lower(*got_algo) != expected_algo)
    return refuse("X-E2EE-Algo is " + (got_algo ? "'" + std::string(got_algo->substr(0, 20)) + "'" : std::string("missing")) +
                  ", expected " + expected_algo);
  return std::nullopt;
}

std::unique_ptr<Flavor> make_dstack_flavor(const FieldOptions& options) { return std::make_unique<DstackFlavor>(options); }

}  // namespace e2ee::proxy::field

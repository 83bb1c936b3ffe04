// NEAR AI Cloud's E2EE (near-phala-protocol.md §10): the model key from the gateway's attestation
// report, X-Signing-Algo / X-Client-Pub-Key / X-Model-Pub-Key, Ed25519 in NaCl box (v1) or
// HKDF + XChaCha20-Poly1305 (v2), and X-Encrypt-All-Fields so tools and tool calls are encrypted.

#include "common/encoding.hpp"
#include "proxy/field/flavor.hpp"

namespace e2ee::proxy::field {
namespace {

class NearAiFlavor final : public Flavor {
 public:
  explicit NearAiFlavor(const FieldOptions& options)
      : algo_(options.algo), version_(options.version), all_fields_(options.encrypt_all_fields),
        allow_missing_quote_(options.allow_missing_quote) {}

  ProviderKind kind() const noexcept override { return ProviderKind::nearai; }
  Algo algo() const noexcept override { return algo_; }

  std::string attestation_target(std::string_view model, const AttestationNonce& nonce) const override {
    return "/v1/attestation/report?model=" + url_encode(model) + "&signing_algo=" +
           std::string(protocol::field::algo_name(algo_)) + "&nonce=" + nonce.hex();
  }
  Result<VerifiedKey> verify(std::string_view report, std::string_view model, const AttestationNonce& nonce) const override {
    return verify_nearai_report(report, model, algo_, nonce, allow_missing_quote_);
  }
  std::string chat_path() const override { return "/v1/chat/completions"; }
  std::string models_path() const override { return "/v1/models"; }

  std::variant<PreparedBody, ProxyError> prepare(std::string_view body, bool client_stream) const override {
    // Without X-Encrypt-All-Fields NEAR encrypts no logprobs (near-phala-protocol.md §10.4).
    if (!all_fields_ && asks_for_logprobs(body)) return logprobs_refused("NEAR AI", ", or leave --nearai-encrypt-all-fields on");
    return PreparedBody{std::string(body), client_stream};
  }

  RequestPlan plan(const Session& session) const override {
    RequestPlan p;
    using protocol::field::Scheme;
    p.policy.scheme = algo_ == Algo::ecdsa ? Scheme::ecdsa : (version_ == 1 ? Scheme::ed25519_box : Scheme::ed25519_xchacha);
    p.policy.all_fields = all_fields_;
    p.policy.reasoning_field = true;   // NEAR's proxy encrypts reasoning as well
    p.policy.arrays_as_json = true;    // NEAR decrypts string content only, then turns a JSON array back into parts
    // X‖Y without the 04 prefix for ecdsa, as NEAR's own verifier sends it; the raw key for ed25519.
    p.headers = {
        {"X-Signing-Algo", std::string(protocol::field::algo_name(algo_))},
        {"X-Client-Pub-Key", hex_encode(session.client.public_raw())},
        {"X-Model-Pub-Key", session.model.key_text},
    };
    if (algo_ == Algo::ed25519) p.headers.emplace_back("X-Encryption-Version", std::to_string(version_));
    if (all_fields_) p.headers.emplace_back("X-Encrypt-All-Fields", "true");
    return p;
  }

 private:
  Algo algo_;
  int version_;
  bool all_fields_;
  bool allow_missing_quote_;
};

}  // namespace

std::unique_ptr<Flavor> make_nearai_flavor(const FieldOptions& options) { return std::make_unique<NearAiFlavor>(options); }

}  // namespace e2ee::proxy::field

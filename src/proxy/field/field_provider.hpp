#pragma once
// The field-level E2EE providers (Venice, NEAR AI, dstack vllm-proxy / e2ee-gateway): the message
// fields of a chat-completions request are encrypted to an attested model key, and the fields of
// the answer come back encrypted to our per-session key (near-phala-protocol.md, venice-protocol.md).
//
//   call   path check (only /v1/chat/completions is carried; nothing else is sent)
//          prepare   the flavor refuses what it cannot carry encrypted, adjusts the rest
//          session   per model, single flight: attestation with a fresh nonce, verified before use
//          seal      protocol::field::encrypt_request with the flavor's policy, key headers
//          send      POST; a stale key (421, e2ee_model_key_mismatch, our envelope refused) →
//                    drop the session, attest again, retry once
//          open      every envelope decrypted with the key it names; plaintext only for empty or
//                    whitespace strings; anything else ends the answer with an error
//                    (a chunk that does not decrypt before anything was relayed: new session, retry once)
//          shape     stream → events; non-stream client of a streaming upstream → one completion

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "http/client.hpp"
#include "proxy/field/flavor.hpp"
#include "proxy/field/session.hpp"
#include "proxy/provider.hpp"

namespace e2ee::proxy::field {

class FieldProvider final : public Provider {
 public:
  FieldProvider(boost::asio::any_io_executor executor, http::Client& client, FieldOptions options);
  ~FieldProvider() override;

  boost::asio::awaitable<std::variant<CallResult, ProxyError>> call(E2eeCall call) override;
  boost::asio::awaitable<http::Response> list_models(const http::Request& request, std::string api_key) override;

  SessionCache& sessions() noexcept { return sessions_; }
  const Flavor& flavor() const noexcept { return *flavor_; }

  // An upstream answer that passed the status and header checks, with what opens it.
  struct Opened {
    std::unique_ptr<http::ResponseStream> response;
    SessionPtr session;
    protocol::field::FieldPolicy policy;
  };
  struct Request;  // one client request's fixed parts, shared with its stream for a retry
  // Sends one attempt: session, encryption, POST, status and header checks. A stale-key answer
  // sets `*stale` (when given) so the caller can retry.
  boost::asio::awaitable<std::variant<Opened, ProxyError>> open(std::shared_ptr<const Request> request, bool* stale);
  // Drops a session whose envelopes failed.
  void invalidate(const std::string& model, const SessionPtr& session);

 private:
  // Views into the caller's strings, copied before the first suspension (see SessionCache::acquire).
  boost::asio::awaitable<std::variant<VerifiedKey, ProxyError>> attest(std::string_view model_name, std::string_view key);

  boost::asio::any_io_executor executor_;
  http::Client& client_;
  FieldOptions options_;
  std::unique_ptr<Flavor> flavor_;
  SessionCache sessions_;
};

}  // namespace e2ee::proxy::field

#pragma once
// The gateway as a dstack vllm-proxy / NEAR AI / Venice E2EE server, in front of an
// OpenAI-compatible engine (near-phala-protocol.md, venice-protocol.md):
//
//   GET  /v1/attestation/report?signing_algo=&nonce=[&model=]   dstack / NEAR report
//   GET  /api/v1/tee/attestation?model=&nonce=                  Venice report
//   GET  /api/v1/models                                         Venice model list (supportsE2EE)
//   POST /v1/chat/completions, /api/v1/chat/completions        field-level E2EE, every family
//   POST /v1/completions                                        E2EE headers refused
//
// report_data = identity padded to 32 bytes ‖ the client's 32-byte nonce, where identity is the
// Ethereum address of the secp256k1 key or the Ed25519 public key; the quote comes from the TEE
// (configfs-tsm) and is reported as absent outside one. Requests are decrypted before anything
// reaches the engine; dstack v2 nonces are claimed after a successful decryption (failed ones do
// not burn nonces), keyed on the nonce alone with a TTL of twice the window; every response field
// that should be encrypted is, or the client gets an error — never plaintext.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gateway/field_negotiation.hpp"
#include "gateway/nonce_store.hpp"
#include "gateway/tee_quote.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/url.hpp"

namespace e2ee::gateway {

struct FieldGatewayOptions {
  http::Url backend;
  std::vector<std::string> models;            // reported models; empty: whatever the engine lists
  std::chrono::seconds replay_window{300};
  bool allow_plaintext = false;               // plain chat without E2EE headers (off: refused)
};

// The two long-lived field keys: fresh on every start, or kept in `key_dir` (files 0600).
Result<FieldKeys> load_or_create_field_keys(const std::optional<std::filesystem::path>& key_dir);

class FieldGateway {
 public:
  FieldGateway(http::Client& engine, NonceStore& replay, const FieldKeys& keys, const QuoteSource& quotes,
               FieldGatewayOptions options);
  ~FieldGateway();

  // Handles the routes above; false when the route is not one of them.
  boost::asio::awaitable<bool> handle(http::Request& request, http::ResponseWriter& writer, int& status);

 private:
  boost::asio::awaitable<int> report(const http::Request& request, http::ResponseWriter& writer, bool venice);
  boost::asio::awaitable<int> venice_models(http::ResponseWriter& writer);
  boost::asio::awaitable<int> chat(http::Request& request, http::ResponseWriter& writer);
  boost::asio::awaitable<Result<Bytes>> quote_for(const std::array<std::uint8_t, 64>& report_data);

  http::Client& engine_;
  NonceStore& replay_;
  const FieldKeys& keys_;
  const QuoteSource& quotes_;
  FieldGatewayOptions options_;
  boost::asio::thread_pool blocking_{1};  // quotes are read from configfs with blocking file I/O
};

}  // namespace e2ee::gateway

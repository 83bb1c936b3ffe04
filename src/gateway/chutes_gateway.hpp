#pragma once
// The gateway as a Chutes endpoint: the API's /e2e/* routes and the instance's decryption in one
// process in front of an OpenAI-compatible engine (chutes-protocol.md sections 4, 7–11).
//
//   GET  /v1/models                 the served models, with chute_id and confidential_compute
//   GET  /e2e/instances/{chute_id}  this instance's id, ML-KEM-768 public key and fresh nonces
//   POST /e2e/invoke                nonce check → open → forward → seal every response byte
//
// Every failure is a {"detail": …} body with the statuses of the spec's tables; nothing is
// forwarded to the engine unless the nonce, the envelope and the path all check out.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway/instance_identity.hpp"
#include "gateway/nonce_store.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "http/url.hpp"

namespace e2ee::gateway {

struct ChutesGatewayOptions {
  http::Url backend;                 // the engine's base URL
  std::vector<std::string> models;   // served model names; empty = ask the backend's /v1/models
  std::string chute_id;
  bool confidential = false;         // what /v1/models reports as confidential_compute
  std::size_t nonces_per_discovery = 10;
  std::chrono::seconds nonce_ttl{60};          // told to clients
  std::chrono::seconds nonce_grace{15};        // kept longer server side (production: 75 s vs 60 s)
  std::size_t max_plaintext = 16 * 1024 * 1024;  // decompressed request limit
  int gzip_level = 1;
};

class ChutesGateway {
 public:
  ChutesGateway(http::Client& engine, NonceStore& nonces, InstanceIdentity& identity, ChutesGatewayOptions options);

  // Handles GET /v1/models and /e2e/*; false when the route is not one of them.
  boost::asio::awaitable<bool> handle(http::Request& request, http::ResponseWriter& writer, int& status);

 private:
  boost::asio::awaitable<int> models(http::ResponseWriter& writer);
  boost::asio::awaitable<int> instances(const http::Request& request, std::string_view chute_id, http::ResponseWriter& writer);
  boost::asio::awaitable<int> invoke(http::Request& request, http::ResponseWriter& writer);

  http::Client& engine_;
  NonceStore& nonces_;
  InstanceIdentity& identity_;
  ChutesGatewayOptions options_;
  // "created" of the configured models: fixed at start, so repeated listings are identical
  // (a client comparing or caching the list sees no change that did not happen).
  std::int64_t listed_since_;
};

// The engine paths reachable through E2EE (those Chutes cords expose; chutes-protocol.md §7).
bool e2e_path_allowed(std::string_view path);

// Adds "stream_options":{"include_usage":true} (keeping other stream_options members), so the
// client learns token usage from the encrypted stream. Exposed for tests.
Result<std::string> force_include_usage(std::string_view body);

}  // namespace e2ee::gateway

#pragma once
// Chutes model names → chute ids, from the models upstream's public GET /v1/models
// (chutes-protocol.md section 3). Cached for 300 s and refreshed on a miss, like the reference
// proxy; refreshes are single-flight so a burst of unknown names costs one request.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"
#include "http/url.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {
class AsyncEvent;
}

namespace e2ee::proxy::chutes {

struct ModelInfo {
  std::string id;        // canonical model name (what the engine expects as "model")
  std::string chute_id;  // UUID
  std::string root;      // Hugging Face repo name, if listed
  bool confidential = false;
  long long created = 0;
};

struct CatalogOptions {
  http::Url models_upstream;                   // e.g. https://llm.chutes.ai
  std::chrono::seconds ttl{300};
  bool allow_non_confidential = false;         // ALLOW_NON_CONFIDENTIAL=true / --allow-non-confidential
};

// A parsed model list; exposed for unit tests.
std::vector<ModelInfo> parse_model_list(std::string_view json);
bool looks_like_uuid(std::string_view text);

class ModelCatalog {
 public:
  ModelCatalog(boost::asio::any_io_executor executor, http::Client& client, CatalogOptions options);
  ~ModelCatalog();

  // Resolves `model` by id, then chute id, then root (newest `created` wins), refreshing the list
  // once on a miss. Applies TEE gating: a model without confidential_compute is refused unless
  // allowed — also when named by its chute UUID, and a UUID the public list does not know cannot
  // be verified and is refused too unless non-confidential models are allowed.
  boost::asio::awaitable<std::variant<ModelInfo, ProxyError>> resolve(std::string_view model,
                                                                      std::string_view api_key);

 private:
  struct State;
  boost::asio::awaitable<std::optional<ProxyError>> refresh(std::string_view api_key, std::string_view model);
  std::optional<ModelInfo> lookup(std::string_view model) const;

  boost::asio::any_io_executor executor_;
  http::Client& client_;
  CatalogOptions options_;
  mutable std::mutex mutex_;
  std::vector<ModelInfo> models_;
  std::chrono::steady_clock::time_point fetched_at_{};
  std::shared_ptr<AsyncEvent> refreshing_;           // non-null while a refresh is in flight
  std::shared_ptr<std::optional<ProxyError>> refresh_outcome_;
};

// The reference proxy's refusal, word for word (chutes-protocol.md section 12).
std::string tee_refusal_message(std::string_view model);

}  // namespace e2ee::proxy::chutes

#pragma once
// The Chutes provider: model catalog + nonce pools + the envelope of protocol/chutes, over
// POST {api}/e2e/invoke (chutes-protocol.md sections 3–11).

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "common/json_text.hpp"
#include "http/client.hpp"
#include "proxy/chutes/model_catalog.hpp"
#include "proxy/chutes/nonce_pool.hpp"
#include "proxy/chutes/response_keys.hpp"
#include "proxy/provider.hpp"

namespace e2ee::proxy::chutes {

struct ChutesOptions {
  http::Url api_upstream;      // /e2e/* (api.chutes.ai)
  http::Url models_upstream;   // /v1/models (llm.chutes.ai)
  bool allow_non_confidential = false;
  int gzip_level = 1;          // chosen by measurement, see docs/performance.md
  std::size_t discoveries_per_minute = 10;
};

// Maps a non-200 answer of /e2e/invoke (a Chutes {"detail": …} body, or our gateway's encrypted
// engine error that `response_key` may open) to a ProxyError. Exposed for unit tests.
ProxyError map_invoke_error(int status, std::string_view body, const crypto::mlkem768::DecapsulationKey* response_key);

// A stable hash of the conversation's opening (model, first two messages or the prompt's first
// 4 KiB) so that turns of one conversation share an instance. Exposed for unit tests.
std::uint64_t conversation_affinity(std::string_view model, std::string_view body);
// The same for a body already indexed (nullptr: the body is not a JSON object).
std::uint64_t conversation_affinity(std::string_view model, const json_text::ObjectMembers* body);

class ChutesProvider final : public Provider {
 public:
  ChutesProvider(boost::asio::any_io_executor executor, http::Client& client, ChutesOptions options);
  ~ChutesProvider() override;

  boost::asio::awaitable<std::variant<CallResult, ProxyError>> call(E2eeCall call) override;
  boost::asio::awaitable<http::Response> list_models(const http::Request& request, std::string api_key) override;

  NoncePools& nonce_pools() noexcept { return pools_; }

 private:
  boost::asio::any_io_executor executor_;
  http::Client& client_;
  ChutesOptions options_;
  ModelCatalog catalog_;
  NoncePools pools_;
  ResponseKeyPool response_keys_;
  InstanceEncapsulations encapsulations_;
};

}  // namespace e2ee::proxy::chutes

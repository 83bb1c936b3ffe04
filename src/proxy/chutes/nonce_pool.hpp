#pragma once
// Instance discovery and single-use nonces (chutes-protocol.md section 4).
//
// Nonces are single-use, bound to (API key, chute, instance) and valid for nonce_expires_in
// seconds, so pools are kept per (API key, chute). A discovery returns up to 5 instances with 10
// nonces each; the pool refills in the background once it falls below a watermark, so in the
// steady state a request never waits for a discovery. The Chutes API allows 10 discoveries per
// minute per user: the pool paces itself under that and backs off on a 429.
//
// Instance choice: requests of the same conversation (same affinity key) keep going to the same
// instance while it has nonces — the engine's prefix cache then hits — and new conversations go
// to the instance with the most nonces left, which spreads load.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "crypto/mlkem768.hpp"
#include "http/client.hpp"
#include "http/url.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {
class AsyncEvent;
}

namespace e2ee::proxy::chutes {

struct PoolOptions {
  http::Url api_upstream;                               // e.g. https://api.chutes.ai
  std::chrono::seconds expiry_margin{5};                // stop using a nonce this long before it expires (≤ ¼ of its lifetime)
  std::chrono::seconds default_expires_in{55};          // when the server omits nonce_expires_in
  std::size_t discoveries_per_minute = 10;              // the Chutes API's per-user limit
  double refill_fraction = 0.3;                         // refill below 30% of the last batch
};

struct Lease {
  std::string instance_id;
  std::shared_ptr<const crypto::mlkem768::EncapsulationKey> key;
  std::string nonce;
};

// One parsed discovery response; exposed for unit tests.
struct DiscoveredInstance {
  std::string instance_id;
  std::string pubkey_base64;
  std::vector<std::string> nonces;
};
struct Discovery {
  std::vector<DiscoveredInstance> instances;
  long expires_in_seconds = 0;  // 0 when absent
};
std::optional<Discovery> parse_discovery(std::string_view json);

class NoncePools {
 public:
  NoncePools(boost::asio::any_io_executor executor, http::Client& client, PoolOptions options);
  ~NoncePools();

  boost::asio::awaitable<std::variant<Lease, ProxyError>> acquire(std::string_view api_key, std::string_view chute_id,
                                                                  std::uint64_t affinity);
  // After a 403 that names the nonce: forget every nonce of this pool (the next acquire rediscovers).
  void invalidate(std::string_view api_key, std::string_view chute_id);
  // After an instance-level failure (gone, needs key exchange): stop using that instance.
  void drop_instance(std::string_view api_key, std::string_view chute_id, std::string_view instance_id);

  // Discovery requests sent so far (tests and the benchmark count round trips with it).
  std::size_t discoveries_sent() const;

 private:
  struct Nonce {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  struct Instance {
    std::string id;
    std::string pubkey_base64;
    std::shared_ptr<const crypto::mlkem768::EncapsulationKey> key;
    std::deque<Nonce> nonces;
  };
  struct Pool {
    std::vector<Instance> instances;
    std::unordered_map<std::uint64_t, std::string> affinity;  // affinity key → instance id
    std::size_t last_batch = 0;
    std::shared_ptr<AsyncEvent> discovering;
    std::shared_ptr<std::optional<ProxyError>> outcome;
  };
  struct RateWindow {
    std::deque<std::chrono::steady_clock::time_point> sent;
    std::chrono::steady_clock::time_point blocked_until{};
  };

  std::optional<Lease> take_locked(Pool& pool, std::uint64_t affinity, std::chrono::steady_clock::time_point now);
  std::size_t valid_nonces_locked(Pool& pool, std::chrono::steady_clock::time_point now) const;
  // Reserves a discovery slot in the user's rate window; returns seconds to wait if none.
  int reserve_discovery_locked(const std::string& user, std::chrono::steady_clock::time_point now);
  // Starts a discovery for `pool` if none is running (caller holds the lock); returns the event
  // to wait on and where its outcome will be.
  std::pair<std::shared_ptr<AsyncEvent>, std::shared_ptr<std::optional<ProxyError>>> start_discovery_locked(
      Pool& pool, const std::string& pool_key, std::string api_key, std::string chute_id);
  boost::asio::awaitable<void> run_discovery(std::string pool_key, std::string api_key, std::string chute_id);

  boost::asio::any_io_executor executor_;
  http::Client& client_;
  PoolOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Pool> pools_;        // key: user + '\n' + chute
  std::unordered_map<std::string, RateWindow> rates_;  // key: user (hash of the API key)
  std::size_t discoveries_sent_ = 0;
};

}  // namespace e2ee::proxy::chutes

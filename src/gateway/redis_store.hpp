#pragma once
// The nonce/replay store on Redis, so that several gateway replicas behind one load balancer share
// Chutes nonces and dstack v2 replay state. hiredis is synchronous, so calls run on a small
// private thread pool with short timeouts: a slow or absent Redis never blocks a request thread,
// and an outage is reported as such (Errc::unavailable), never as a replay. Idle connections are
// pooled; one that the server closed while it was idle (Redis restarted, or its `timeout` reaped
// it) is replaced by a fresh connection once, so a recovered Redis answers at once. The pool's
// threads block SIGPIPE: hiredis writes with write(2), and a write to a reset connection must be
// an error, not the end of the process.
//
//   put    SET <prefix>nonce:<key> <value> NX EX <ttl>   pipelined, one round trip for a batch
//   take   GETDEL <prefix>nonce:<key>                      atomic read-and-delete (Redis ≥ 6.2)
//   claim  SET <prefix>replay:<key> 1 NX EX <ttl>

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "gateway/nonce_store.hpp"

struct redisContext;

namespace e2ee::gateway {

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int database = 0;
  std::chrono::milliseconds timeout{250};  // connect and per command
  std::string key_prefix = "e2ee:";
};

// redis://[:password@]host[:port][/db]
Result<RedisOptions> parse_redis_url(std::string_view url);

class RedisNonceStore final : public NonceStore {
 public:
  explicit RedisNonceStore(RedisOptions options, std::size_t threads = 2);
  ~RedisNonceStore() override;

  // One PING, to fail fast on bad configuration at start-up.
  Status ping();

  boost::asio::awaitable<Status> put(const std::vector<std::string>& keys, const std::string& value,
                                     std::chrono::seconds ttl) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> take(const std::string& key) override;
  boost::asio::awaitable<Result<bool>> claim(const std::string& key, std::chrono::seconds ttl) override;

 private:
  struct Connection;
  // A pooled connection (reused = true) or a new one; nullptr with `error` when Redis is unreachable.
  std::unique_ptr<Connection> acquire(std::string& error, bool& reused);
  void release(std::unique_ptr<Connection> connection);
  // Runs `attempt(connection)` (blocking, on a pool thread): on a pooled connection the server has
  // closed, once more on a fresh one.
  template <typename T, typename Attempt>
  Result<T> with_connection(Attempt&& attempt);

  RedisOptions options_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace e2ee::gateway

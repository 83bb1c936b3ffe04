#pragma once
// Single-use values with a lifetime: Chutes nonces now, dstack v2 replay nonces later. The
// interface is asynchronous because the shared implementation (several gateway replicas behind
// one load balancer) is Redis.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"

namespace e2ee::gateway {

class NonceStore {
 public:
  virtual ~NonceStore() = default;
  // Stores each key with `value` for `ttl`. Fails with Errc::limit_exceeded when full (an
  // in-memory store never evicts live entries: eviction would reopen a replay window).
  virtual boost::asio::awaitable<Status> put(const std::vector<std::string>& keys, const std::string& value,
                                             std::chrono::seconds ttl) = 0;
  // Atomically reads and deletes `key`: the value if it existed and had not expired.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> take(const std::string& key) = 0;
  // Records `key` for `ttl` if it is not already recorded: true on first use, false for a replay.
  // Fails (Errc::unavailable / limit_exceeded) when the store cannot answer — callers must report
  // that as an outage, never as a replay or as a first use.
  virtual boost::asio::awaitable<Result<bool>> claim(const std::string& key, std::chrono::seconds ttl) = 0;
};

class MemoryNonceStore final : public NonceStore {
 public:
  explicit MemoryNonceStore(std::size_t capacity = 1'000'000) : capacity_(capacity) {}
  boost::asio::awaitable<Status> put(const std::vector<std::string>& keys, const std::string& value,
                                     std::chrono::seconds ttl) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> take(const std::string& key) override;
  boost::asio::awaitable<Result<bool>> claim(const std::string& key, std::chrono::seconds ttl) override;
  std::size_t size() const;

 private:
  struct Entry {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  void purge_expired_locked(std::chrono::steady_clock::time_point now);
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t capacity_;
  std::chrono::steady_clock::time_point next_purge_{};
};

}  // namespace e2ee::gateway

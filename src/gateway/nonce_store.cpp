#include "gateway/nonce_store.hpp"

namespace e2ee::gateway {

using Clock = std::chrono::steady_clock;

void MemoryNonceStore::purge_expired_locked(Clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.expires <= now) it = entries_.erase(it);
    else ++it;
  }
  next_purge_ = now + std::chrono::seconds(5);
}

boost::asio::awaitable<Status> MemoryNonceStore::put(const std::vector<std::string>& keys, const std::string& value,
                                                     std::chrono::seconds ttl) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (now >= next_purge_ || entries_.size() + keys.size() > capacity_) purge_expired_locked(now);
  if (entries_.size() + keys.size() > capacity_)
    co_return make_error(Errc::limit_exceeded, "nonce store is full");
  for (const auto& k : keys) entries_[k] = Entry{value, now + ttl};
  co_return Status{};
}

boost::asio::awaitable<Result<std::optional<std::string>>> MemoryNonceStore::take(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) co_return std::optional<std::string>();
  std::optional<std::string> value;
  if (it->second.expires > Clock::now()) value = std::move(it->second.value);
  entries_.erase(it);
  co_return value;
}

boost::asio::awaitable<Result<bool>> MemoryNonceStore::claim(const std::string& key, std::chrono::seconds ttl) {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  if (now >= next_purge_ || entries_.size() >= capacity_) purge_expired_locked(now);
  if (auto it = entries_.find(key); it != entries_.end() && it->second.expires > now) co_return false;
  if (entries_.size() >= capacity_) co_return make_error(Errc::limit_exceeded, "replay store is full");
  entries_[key] = Entry{"1", now + ttl};
  co_return true;
}

std::size_t MemoryNonceStore::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace e2ee::gateway

#include "proxy/chutes/response_keys.hpp"

#include <boost/asio/post.hpp>
#include <algorithm>
#include <iterator>
#include <optional>
#include <utility>

namespace e2ee::proxy::chutes {

namespace mlkem = crypto::mlkem768;

ResponseKeyPool::ResponseKeyPool(boost::asio::any_io_executor executor, std::size_t capacity)
    : executor_(std::move(executor)), shared_(std::make_shared<Shared>()) {
  shared_->capacity = capacity;
  // The first requests find keys ready too.
  for (std::size_t i = 0; i < capacity; ++i) boost::asio::post(executor_, [s = shared_] { refill(s); });
}

mlkem::DecapsulationKey ResponseKeyPool::take() {
  {
    std::unique_lock lock(shared_->mutex);
    if (!shared_->keys.empty()) {
      mlkem::DecapsulationKey key = std::move(shared_->keys.front());
      shared_->keys.pop_front();
      lock.unlock();
      boost::asio::post(executor_, [s = shared_] { refill(s); });
      return key;
    }
  }
  return mlkem::DecapsulationKey::generate();
}

std::size_t ResponseKeyPool::ready() const {
  std::lock_guard lock(shared_->mutex);
  return shared_->keys.size();
}

void ResponseKeyPool::refill(const std::shared_ptr<Shared>& shared) {
  {
    std::lock_guard lock(shared->mutex);
    if (shared->keys.size() >= shared->capacity) return;
  }
  mlkem::DecapsulationKey key = mlkem::DecapsulationKey::generate();  // outside the lock
  std::lock_guard lock(shared->mutex);
  if (shared->keys.size() < shared->capacity) shared->keys.push_back(std::move(key));
}

InstanceEncapsulations::InstanceEncapsulations(boost::asio::any_io_executor executor, std::size_t per_key)
    : executor_(std::move(executor)), shared_(std::make_shared<Shared>()) {
  shared_->per_key = per_key;
}

InstanceEncapsulations::Prepared* InstanceEncapsulations::Shared::find(const Key& key) {
  for (auto& p : keys)
    if (p.key == key) return &p;
  return nullptr;
}

mlkem::Encapsulation InstanceEncapsulations::take(const Key& key) {
  std::optional<mlkem::Encapsulation> made_ahead;
  {
    std::lock_guard lock(shared_->mutex);
    auto it = std::find_if(shared_->keys.begin(), shared_->keys.end(), [&](const Prepared& p) { return p.key == key; });
    if (it == shared_->keys.end()) {
      shared_->keys.push_front(Prepared{key, {}});
      if (shared_->keys.size() > kMaxKeys) shared_->keys.pop_back();  // the least recently used
    } else {
      if (!it->ready.empty()) {
        made_ahead.emplace(std::move(it->ready.front()));
        it->ready.pop_front();
      }
      if (it != shared_->keys.begin()) std::rotate(shared_->keys.begin(), it, std::next(it));
    }
  }
  boost::asio::post(executor_, [s = shared_, key] { refill(s, key); });
  if (made_ahead) return std::move(*made_ahead);
  return mlkem::encapsulate(*key);
}

std::size_t InstanceEncapsulations::ready(const Key& key) const {
  std::lock_guard lock(shared_->mutex);
  for (const auto& p : shared_->keys)
    if (p.key == key) return p.ready.size();
  return 0;
}

void InstanceEncapsulations::refill(const std::shared_ptr<Shared>& shared, const Key& key) {
  {
    std::lock_guard lock(shared->mutex);
    const Prepared* p = shared->find(key);
    if (p == nullptr || p->ready.size() >= shared->per_key) return;  // evicted, or full
  }
  mlkem::Encapsulation enc = mlkem::encapsulate(*key);  // outside the lock
  std::lock_guard lock(shared->mutex);
  if (Prepared* p = shared->find(key); p != nullptr && p->ready.size() < shared->per_key)
    p->ready.push_back(std::move(enc));
}

}  // namespace e2ee::proxy::chutes

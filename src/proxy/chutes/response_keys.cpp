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

std::deque<InstanceEncapsulations::Prepared>::iterator InstanceEncapsulations::Shared::find(const Key& key) {
  return std::find_if(keys.begin(), keys.end(), [&](const Prepared& p) { return p.key == key; });
}

mlkem::Encapsulation InstanceEncapsulations::take(const Key& key) {
  std::optional<mlkem::Encapsulation> made_ahead;
  {
    std::lock_guard lock(shared_->mutex);
    auto it = shared_->find(key);
    if (it == shared_->keys.end()) {
      shared_->keys.push_front(Prepared{key, {}});
      if (shared_->keys.size() > kMaxKeys) shared_->keys.pop_back();  // the least recently used
    } else {
      if (!it->ready.empty()) {
        made_ahead.emplace(std::move(it->ready.front()));
        it->ready.pop_front();
      }
      std::rotate(shared_->keys.begin(), it, std::next(it));  // to the front: used last
    }
  }
  boost::asio::post(executor_, [s = shared_, key] { refill(s, key); });
  if (made_ahead) return std::move(*made_ahead);
  return mlkem::encapsulate(*key);
}

std::size_t InstanceEncapsulations::ready(const Key& key) const {
  std::lock_guard lock(shared_->mutex);
  const auto it = shared_->find(key);
  return it == shared_->keys.end() ? 0 : it->ready.size();
}

void InstanceEncapsulations::refill(const std::shared_ptr<Shared>& shared, const Key& key) {
  {
    std::lock_guard lock(shared->mutex);
    const auto it = shared->find(key);
    if (it == shared->keys.end() || it->ready.size() >= shared->per_key) return;  // dropped, or full
  }
  mlkem::Encapsulation enc = mlkem::encapsulate(*key);  // outside the lock
  std::lock_guard lock(shared->mutex);
  if (auto it = shared->find(key); it != shared->keys.end() && it->ready.size() < shared->per_key)
    it->ready.push_back(std::move(enc));
}

}  // namespace e2ee::proxy::chutes

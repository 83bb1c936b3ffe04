#include "proxy/chutes/response_keys.hpp"

#include <boost/asio/post.hpp>
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

}  // namespace e2ee::proxy::chutes

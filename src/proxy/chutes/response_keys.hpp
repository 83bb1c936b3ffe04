#pragma once
// Fresh ML-KEM-768 response keys, generated ahead of need. Every Chutes request carries a new key
// pair for its answer (chutes-protocol.md section 5); generating it is ~100 us of the request's
// serial path (FIPS 203 KeyGen: the matrix expansion and three NTTs). The pool hands out a key
// made earlier and has its replacement made right away on the executor, which at low load runs
// while the request waits for the instance, on the other core, or when the proxy is idle.
//
// Each key is handed out once. An empty pool (a burst) generates inline, which is what every
// request did before; the pool never holds more than its capacity.

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "crypto/mlkem768.hpp"

namespace e2ee::proxy::chutes {

class ResponseKeyPool {
 public:
  ResponseKeyPool(boost::asio::any_io_executor executor, std::size_t capacity);

  // A key no one else has seen or will see. Thread-safe.
  crypto::mlkem768::DecapsulationKey take();

  // Keys ready now (for tests).
  std::size_t ready() const;

 private:
  struct Shared {
    mutable std::mutex mutex;
    std::deque<crypto::mlkem768::DecapsulationKey> keys;
    std::size_t capacity;
  };
  static void refill(const std::shared_ptr<Shared>& shared);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Shared> shared_;  // shared with refills still queued when the pool goes
};

}  // namespace e2ee::proxy::chutes

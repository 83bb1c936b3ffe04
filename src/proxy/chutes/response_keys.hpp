#pragma once
// Per-request ML-KEM work done ahead of need: response keys and encapsulations to instance keys.
//
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

// Encapsulations to instance keys, made ahead of need like the response keys: ML-KEM.Encaps
// (~25 us) needs only the instance's public key, not the request. After a request to a key, the
// next `per_key` encapsulations to it are made on the executor. Conversations keep their instance,
// so the next request to that key usually finds one ready; a key not seen lately encapsulates
// inline. The keys used last are kept (at most kMaxKeys); keys are told apart by identity, so a
// rediscovered instance's new key object starts afresh even when its bytes are the same.
//
// Each encapsulation is handed out once; its shared secret is wiped when dropped.
class InstanceEncapsulations {
 public:
  using Key = std::shared_ptr<const crypto::mlkem768::EncapsulationKey>;
  static constexpr std::size_t kMaxKeys = 8;

  InstanceEncapsulations(boost::asio::any_io_executor executor, std::size_t per_key);

  // A fresh encapsulation to `key`, never handed out before. Thread-safe.
  crypto::mlkem768::Encapsulation take(const Key& key);

  // Encapsulations ready now for `key` (for tests).
  std::size_t ready(const Key& key) const;

 private:
  struct Prepared {
    Key key;
    std::deque<crypto::mlkem768::Encapsulation> ready;
  };
  struct Shared {
    mutable std::mutex mutex;
    std::deque<Prepared> keys;  // most recently used first
    std::size_t per_key;
    std::deque<Prepared>::iterator find(const Key& key);  // keys.end() when not kept
  };
  static void refill(const std::shared_ptr<Shared>& shared, const Key& key);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace e2ee::proxy::chutes

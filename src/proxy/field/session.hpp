#pragma once
// Per-model E2EE sessions of the field-level providers: our key pair, the model's verified key,
// and when the pair was made (venice-protocol.md §8).
//
//  - One session per model, made by a single flight: concurrent requests for a model wait for one
//    attestation, and requests for different models never share one (venice-e2ee's single
//    pending promise hands model A's session to a request for model B; a flight here belongs to
//    its model).
//  - Rotation: a session older than the TTL (an hour) is replaced on next use; a session whose
//    envelopes fail is dropped at once (`invalidate`), and the caller retries once with a new one.
//  - Our private key is wiped when the last request using a dropped session ends (KeyPair wipes
//    on destruction; in-flight streams keep theirs until they finish).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

#include "protocol/field/envelope.hpp"
#include "proxy/field/attestation.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {
class AsyncEvent;
}

namespace e2ee::proxy::field {

struct Session {
  protocol::field::KeyPair client;            // ours, fresh per session
  VerifiedKey model;                          // the attested model key
  std::chrono::steady_clock::time_point created;
  std::uint64_t serial = 0;                   // distinguishes sessions in logs and tests
};
using SessionPtr = std::shared_ptr<const Session>;

class SessionCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // Fetches and verifies the model's key (runs in the first requester's coroutine).
  using Attest = std::function<boost::asio::awaitable<std::variant<VerifiedKey, ProxyError>>()>;

  SessionCache(boost::asio::any_io_executor executor, protocol::field::Algo algo, std::chrono::seconds ttl,
               Clock clock = {});
  ~SessionCache();

  // The model's current session, or a new one made with `attest` (once, however many ask).
  // `model` is copied before the first suspension (string_view: GCC 12 mishandles by-value string
  // parameters of coroutines initialised from temporaries).
  boost::asio::awaitable<std::variant<SessionPtr, ProxyError>> acquire(std::string_view model_name, Attest attest);

  // Drops `stale` if it is still the model's session (a later one made meanwhile is kept).
  void invalidate(std::string_view model, const SessionPtr& stale);

  std::size_t attestations_started() const noexcept;

 private:
  struct Flight;
  struct Slot {
    SessionPtr current;
    std::shared_ptr<Flight> flight;  // non-null while a session is being made
  };
  bool fresh(const Session& s) const;

  boost::asio::any_io_executor executor_;
  protocol::field::Algo algo_;
  std::chrono::seconds ttl_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Slot, std::less<>> slots_;
  std::uint64_t next_serial_ = 1;
  std::size_t attestations_ = 0;
};

}  // namespace e2ee::proxy::field

#include "proxy/field/session.hpp"

#include "common/log.hpp"
#include "proxy/async_event.hpp"

namespace e2ee::proxy::field {

// One session being made: waiters hold the flight, so its outcome outlives the slot's pointer.
struct SessionCache::Flight {
  std::shared_ptr<AsyncEvent> done;
  std::variant<SessionPtr, ProxyError> outcome =
      ProxyError{502, "upstream_error", "attestation_failed", "the attestation of this model did not complete", 0};
};

SessionCache::SessionCache(boost::asio::any_io_executor executor, protocol::field::Algo algo, std::chrono::seconds ttl,
                           Clock clock)
    : executor_(std::move(executor)), algo_(algo), ttl_(ttl), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

SessionCache::~SessionCache() = default;

bool SessionCache::fresh(const Session& s) const { return clock_() - s.created < ttl_; }

std::size_t SessionCache::attestations_started() const noexcept {
  std::lock_guard lock(mutex_);
  return attestations_;
}

boost::asio::awaitable<std::variant<SessionPtr, ProxyError>> SessionCache::acquire(std::string_view model_name, Attest attest) {
  const std::string model(model_name);
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(mutex_);
    Slot& slot = slots_[model];
    if (slot.current && fresh(*slot.current)) co_return slot.current;
    if (slot.current) {
      // Hourly rotation: the old pair is wiped once the requests still using it end.
      log::debug("session expired", {{"model", model}, {"session", slot.current->serial}});
      slot.current.reset();
    }
    if (!slot.flight) {
      slot.flight = std::make_shared<Flight>();
      slot.flight->done = std::make_shared<AsyncEvent>(executor_);
      leader = true;
      ++attestations_;
    }
    flight = slot.flight;
  }
  if (!leader) {
    co_await flight->done->wait();
    co_return flight->outcome;
  }

  // If attest() throws, or this coroutine is destroyed mid-attestation (shutdown), the waiters must
  // still be woken and the slot freed: otherwise every later request for the model would wait
  // forever on a flight that never lands. They then get the flight's default outcome, an error.
  struct LandOnUnwind {
    SessionCache& cache;
    const std::string& model;
    const std::shared_ptr<Flight>& flight;
    bool landed = false;
    ~LandOnUnwind() {
      if (landed) return;
      {
        std::lock_guard lock(cache.mutex_);
        auto it = cache.slots_.find(model);
        if (it != cache.slots_.end() && it->second.flight == flight) it->second.flight.reset();
      }
      flight->done->set();
    }
  };
  LandOnUnwind guard{*this, model, flight};

  auto verified = co_await attest();
  std::variant<SessionPtr, ProxyError> outcome = ProxyError{};
  if (auto* error = std::get_if<ProxyError>(&verified)) {
    outcome = std::move(*error);
  } else {
    auto session = std::make_shared<Session>(Session{protocol::field::KeyPair::generate(algo_),
                                                     std::get<VerifiedKey>(std::move(verified)), clock_(), 0});
    {
      std::lock_guard lock(mutex_);
      session->serial = next_serial_++;
    }
    log::info("E2EE session ready", {{"model", model}, {"session", session->serial}, {"identity", session->model.identity},
                                     {"quote", session->model.quote_checked ? "checked" : "absent"}});
    outcome = SessionPtr(std::move(session));
  }
  {
    std::lock_guard lock(mutex_);
    Slot& slot = slots_[model];
    // A failure is not cached: the next request attests again.
    if (auto* ok = std::get_if<SessionPtr>(&outcome)) slot.current = *ok;
    slot.flight.reset();
    flight->outcome = outcome;
  }
  guard.landed = true;
  flight->done->set();
  co_return outcome;
}

void SessionCache::invalidate(std::string_view model, const SessionPtr& stale) {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(model);
  if (it == slots_.end() || !stale || it->second.current != stale) return;
  log::info("E2EE session dropped", {{"model", std::string(model)}, {"session", stale->serial}});
  it->second.current.reset();
}

}  // namespace e2ee::proxy::field

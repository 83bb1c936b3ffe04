// Per-model E2EE sessions: one attestation per model however many requests wait for it, never a
// session of another model (the defect of venice-e2ee's shared pending promise), hourly rotation
// on an injected clock, immediate rotation after a failure, failures not cached.

#include "http/test_support.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <optional>
#include <stdexcept>

#include "proxy/field/session.hpp"

namespace e2ee::proxy::field {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using protocol::field::KeyPair;
using http::testing::run;

VerifiedKey key_for(const KeyPair& model) {
  auto peer = PeerKey::parse(model.algo(), model.public_raw());
  return VerifiedKey{*peer, "key", "id", true};
}

struct Recorder {
  int calls = 0;
  bool started = false;
};

// An attestation that takes a while, so that concurrent requests find it in flight. When `wait_for`
// is given it also waits (up to 5 s) until that other attestation has started: with one flight
// shared across models it never would, and this one would fail.
net::awaitable<std::variant<VerifiedKey, ProxyError>> slow_attest(Recorder* self, const Recorder* wait_for, VerifiedKey key) {
  ++self->calls;
  self->started = true;
  net::steady_timer timer(co_await net::this_coro::executor);
  for (int i = 0; i < 500 && wait_for != nullptr && !wait_for->started; ++i) {
    timer.expires_after(10ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  if (wait_for != nullptr && !wait_for->started)
    co_return ProxyError{500, "test", "serialised", "the other model's attestation never started", 0};
  timer.expires_after(20ms);
  co_await timer.async_wait(net::use_awaitable);
  co_return key;
}

net::awaitable<std::variant<VerifiedKey, ProxyError>> failing_attest(Recorder* self) {
  ++self->calls;
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_after(20ms);
  co_await timer.async_wait(net::use_awaitable);
  co_return ProxyError{502, "upstream_error", "attestation_failed", "refused", 0};
}

TEST(SessionCache, OneFlightPerModelAndNeverAnotherModelsSession) {
  net::io_context ioc;
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  const KeyPair model_a = KeyPair::generate(Algo::ecdsa);
  const KeyPair model_b = KeyPair::generate(Algo::ecdsa);
  Recorder a, b;
  std::vector<SessionPtr> got_a, got_b;
  int finished = 0;
  run(ioc, [&]() -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    for (int i = 0; i < 5; ++i) {
      for (bool first : {true, false}) {
        auto one = [&, first]() -> net::awaitable<void> {
          SessionCache::Attest attest = first ? SessionCache::Attest([&] { return slow_attest(&a, &b, key_for(model_a)); })
                                              : SessionCache::Attest([&] { return slow_attest(&b, &a, key_for(model_b)); });
          // Named first: GCC 12 destroys a temporary made inside a co_await operand twice.
          const std::string model = first ? "model-a" : "model-b";
          auto got = co_await cache.acquire(model, std::move(attest));
          if (auto* s = std::get_if<SessionPtr>(&got)) (first ? got_a : got_b).push_back(*s);
          else ADD_FAILURE() << std::get<ProxyError>(got).message;
          ++finished;
        };
        net::co_spawn(net::make_strand(ex), one, net::detached);
      }
    }
    net::steady_timer timer(ex);
    for (int i = 0; i < 1000 && finished < 10; ++i) {
      timer.expires_after(5ms);
      co_await timer.async_wait(net::use_awaitable);
    }
  });
  ASSERT_EQ(finished, 10);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(cache.attestations_started(), 2u);
  ASSERT_EQ(got_a.size(), 5u);
  ASSERT_EQ(got_b.size(), 5u);
  for (const auto& s : got_a) {
    EXPECT_EQ(s, got_a[0]);
    EXPECT_EQ(s->model.key.public_raw(), model_a.public_raw());
  }
  for (const auto& s : got_b) {
    EXPECT_EQ(s, got_b[0]);
    EXPECT_EQ(s->model.key.public_raw(), model_b.public_raw());
  }
  EXPECT_NE(got_a[0]->client.public_raw(), got_b[0]->client.public_raw());
}

TEST(SessionCache, RotatesHourlyOnTheInjectedClock) {
  net::io_context ioc;
  auto now = std::chrono::steady_clock::time_point{} + 1000h;
  SessionCache cache(ioc.get_executor(), Algo::ed25519, 3600s, [&] { return now; });
  const KeyPair model = KeyPair::generate(Algo::ed25519);
  Recorder r;
  SessionPtr first, same, rotated;
  const std::string m = "m";
  run(ioc, [&]() -> net::awaitable<void> {
    auto attest = [&] { return slow_attest(&r, nullptr, key_for(model)); };
    auto got = co_await cache.acquire(m, attest);
    first = std::get<SessionPtr>(got);
    now += 3599s;
    got = co_await cache.acquire(m, attest);
    same = std::get<SessionPtr>(got);
    now += 1s;
    got = co_await cache.acquire(m, attest);
    rotated = std::get<SessionPtr>(got);
  });
  ASSERT_TRUE(first && same && rotated);
  EXPECT_EQ(first, same);
  EXPECT_NE(first, rotated);
  EXPECT_EQ(r.calls, 2);
  EXPECT_NE(first->client.public_raw(), rotated->client.public_raw());
  EXPECT_EQ(first->client.algo(), Algo::ed25519);
  EXPECT_GT(rotated->serial, first->serial);
}

TEST(SessionCache, InvalidateDropsOnlyTheStaleSession) {
  net::io_context ioc;
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  const KeyPair model = KeyPair::generate(Algo::ecdsa);
  Recorder r;
  SessionPtr s1, s2, s3;
  const std::string m = "m";
  run(ioc, [&]() -> net::awaitable<void> {
    auto attest = [&] { return slow_attest(&r, nullptr, key_for(model)); };
    s1 = std::get<SessionPtr>(co_await cache.acquire(m, attest));
    cache.invalidate("m", s1);
    s2 = std::get<SessionPtr>(co_await cache.acquire(m, attest));
    // A second report of the same old failure must not throw away the fresh session.
    cache.invalidate("m", s1);
    cache.invalidate("other", s2);
    s3 = std::get<SessionPtr>(co_await cache.acquire(m, attest));
  });
  EXPECT_NE(s1, s2);
  EXPECT_EQ(s2, s3);
  EXPECT_EQ(r.calls, 2);
}

TEST(SessionCache, FailuresReachEveryWaiterAndAreNotCached) {
  net::io_context ioc;
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  Recorder r;
  int errors = 0, finished = 0;
  const std::string m = "m";
  run(ioc, [&]() -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    for (int i = 0; i < 3; ++i) {
      auto one = [&]() -> net::awaitable<void> {
        auto got = co_await cache.acquire(m, [&] { return failing_attest(&r); });
        if (auto* e = std::get_if<ProxyError>(&got); e != nullptr && e->code == "attestation_failed") ++errors;
        ++finished;
      };
      net::co_spawn(net::make_strand(ex), one, net::detached);
    }
    net::steady_timer timer(ex);
    for (int i = 0; i < 1000 && finished < 3; ++i) {
      timer.expires_after(5ms);
      co_await timer.async_wait(net::use_awaitable);
    }
    auto again = co_await cache.acquire(m, [&] { return failing_attest(&r); });
    if (std::holds_alternative<ProxyError>(again)) ++errors;
  });
  EXPECT_EQ(errors, 4);
  EXPECT_EQ(r.calls, 2);  // one flight for the three, one more for the later request
}

// An attestation that throws must still wake the requests waiting on it and free the model's
// slot; otherwise every later request for that model would wait forever on a flight that never
// lands. (The same guard covers a leader coroutine destroyed mid-attestation at shutdown.)
TEST(SessionCache, AThrowingAttestationWakesItsWaitersAndIsNotCached) {
  net::io_context ioc;
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  const KeyPair model = KeyPair::generate(Algo::ecdsa);
  Recorder waiter_attest, later_attest;
  bool leader_threw = false;
  std::optional<std::variant<SessionPtr, ProxyError>> waiter_got, later_got;
  const auto ex = ioc.get_executor();
  net::co_spawn(
      ex,
      [&]() -> net::awaitable<void> {
        SessionCache::Attest attest([]() -> net::awaitable<std::variant<VerifiedKey, ProxyError>> {
          net::steady_timer timer(co_await net::this_coro::executor);
          timer.expires_after(20ms);
          co_await timer.async_wait(net::use_awaitable);
          throw std::runtime_error("attestation blew up");
          co_return ProxyError{};
        });
        co_await cache.acquire("m", std::move(attest));
      },
      [&](std::exception_ptr e) { leader_threw = e != nullptr; });
  net::co_spawn(
      ex,
      [&]() -> net::awaitable<void> {
        SessionCache::Attest attest([&] { return slow_attest(&waiter_attest, nullptr, key_for(model)); });
        waiter_got = co_await cache.acquire("m", std::move(attest));
      },
      net::detached);
  ioc.run_for(5s);  // bounded: without the guard the waiter never finishes
  EXPECT_TRUE(leader_threw);
  ASSERT_TRUE(waiter_got.has_value()) << "the waiting request was never woken";
  ASSERT_TRUE(std::holds_alternative<ProxyError>(*waiter_got));
  EXPECT_EQ(std::get<ProxyError>(*waiter_got).code, "attestation_failed");
  EXPECT_EQ(waiter_attest.calls, 0) << "the waiter joined the flight instead of attesting itself";

  // Nothing was cached: the next request attests again and gets a session.
  net::co_spawn(
      ex,
      [&]() -> net::awaitable<void> {
        SessionCache::Attest attest([&] { return slow_attest(&later_attest, nullptr, key_for(model)); });
        later_got = co_await cache.acquire("m", std::move(attest));
      },
      net::detached);
  ioc.restart();
  ioc.run_for(5s);
  ASSERT_TRUE(later_got.has_value());
  EXPECT_TRUE(std::holds_alternative<SessionPtr>(*later_got));
  EXPECT_EQ(later_attest.calls, 1);
}

}  // namespace
}  // namespace e2ee::proxy::field

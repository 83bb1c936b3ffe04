// AsyncEvent, the single-flight primitive under the nonce pools, the model catalog and the field
// session cache, on an io_context run by several threads with waiters on their own strands (as
// request handlers are): every waiter must wake, however set() and wait() interleave. Labelled
// `concurrency`: the tsan preset runs it under ThreadSanitizer.

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <memory>

#include "proxy/async_event.hpp"

namespace e2ee::proxy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using http::testing::run;
using http::testing::sleep_for;

// Many rounds of "waiters arrive on their strands while another strand sets the event": a waiter
// that checked the flag off the event's strand could miss a set() that ran between its check and
// its timer wait, and would then sleep forever (the lost wake-up this test once caught).
TEST(AsyncEventConcurrency, EveryWaiterWakesWhateverTheInterleaving) {
  net::io_context ioc(4);
  constexpr int kRounds = 1000;
  constexpr int kWaiters = 8;
  std::atomic<int> woken{0};
  std::atomic<int> missed_rounds{0};
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int round = 0; round < kRounds; ++round) {
          auto event = std::make_shared<AsyncEvent>(ex);
          auto done = std::make_shared<std::atomic<int>>(0);
          for (int w = 0; w < kWaiters; ++w) {
            net::co_spawn(
                net::make_strand(ex),
                [event, done, &woken]() -> net::awaitable<void> {
                  co_await event->wait();
                  ++*done;
                  ++woken;
                },
                net::detached);
          }
          // set() from yet another strand, racing the waiters' arrival.
          net::post(net::make_strand(ex), [event] { event->set(); });
          // A woken waiter needs microseconds; a lost one never comes back.
          for (int i = 0; i < 500 && done->load() < kWaiters; ++i) co_await sleep_for(2ms);
          if (done->load() < kWaiters) ++missed_rounds;
        }
        // Late waiters (after set) return at once.
        auto event = std::make_shared<AsyncEvent>(ex);
        event->set();
        co_await sleep_for(5ms);
        co_await event->wait();
      },
      /*threads=*/4);
  EXPECT_EQ(missed_rounds.load(), 0) << "waiters slept through set()";
  EXPECT_EQ(woken.load(), kRounds * kWaiters);
}

}  // namespace
}  // namespace e2ee::proxy

// The gateway's nonce / replay stores under concurrent use: an io_context run by four threads,
// hundreds of request coroutines on their own strands (as the server runs handlers), all claiming
// the same replay keys and taking the same Chutes nonces at once. Exactly one claim of a key may
// win and each nonce may be taken exactly once — in memory, and on Redis across two replicas
// (each with its own pool of worker threads) sharing one real redis-server. Labelled
// `concurrency`: the tsan preset runs it under ThreadSanitizer.

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "gateway/nonce_store.hpp"
#include "gateway/redis_store.hpp"
#include "gateway/redis_test_server.hpp"

namespace e2ee::gateway {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using http::testing::run;
using http::testing::sleep_for;

constexpr int kKeys = 40;
constexpr int kContenders = 100;  // coroutines, each going through every key

struct Tally {
  std::mutex mutex;
  std::map<std::string, int> wins;  // key → successful claims / takes
  std::map<std::string, std::string> values;
  int failures = 0;                 // the store could not answer
  std::atomic<int> finished{0};
};

// Every contender claims every key (starting at a different one, so they collide from all sides).
void claim_race(NonceStore& store, NonceStore& other, Tally& tally) {
  net::io_context ioc(4);
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int c = 0; c < kContenders; ++c) {
          net::co_spawn(
              net::make_strand(ex),
              [&, c]() -> net::awaitable<void> {
                NonceStore& mine = c % 2 == 0 ? store : other;  // two replicas when they differ
                for (int i = 0; i < kKeys; ++i) {
                  const std::string key = "replay-" + std::to_string((c + i) % kKeys);
                  auto claimed = co_await mine.claim(key, 60s);
                  std::lock_guard lock(tally.mutex);
                  if (!claimed) ++tally.failures;
                  else if (*claimed) ++tally.wins[key];
                }
                ++tally.finished;
              },
              net::detached);
        }
        for (int i = 0; i < 12000 && tally.finished.load() < kContenders; ++i) co_await sleep_for(10ms);
      },
      /*threads=*/4, /*limit=*/std::chrono::seconds(180));
}

// The nonces are put (in batches, from several coroutines at once), then every contender tries
// to take every one of them.
void take_race(NonceStore& store, NonceStore& other, Tally& tally) {
  net::io_context ioc(4);
  std::atomic<int> put_done{0};
  std::atomic<int> put_failed{0};
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        constexpr int kBatches = 4;
        for (int b = 0; b < kBatches; ++b) {
          net::co_spawn(
              net::make_strand(ex),
              [&, b]() -> net::awaitable<void> {
                std::vector<std::string> keys;
                for (int i = b; i < kKeys; i += kBatches) keys.push_back("nonce-" + std::to_string(i));
                const std::string value = "instance-" + std::to_string(b);
                NonceStore& target = b % 2 == 0 ? store : other;
                auto stored = co_await target.put(keys, value, 60s);
                if (!stored) ++put_failed;
                ++put_done;
              },
              net::detached);
        }
        for (int i = 0; i < 3000 && put_done.load() < kBatches; ++i) co_await sleep_for(10ms);
        EXPECT_EQ(put_failed.load(), 0);
        for (int c = 0; c < kContenders; ++c) {
          net::co_spawn(
              net::make_strand(ex),
              [&, c]() -> net::awaitable<void> {
                NonceStore& mine = c % 2 == 0 ? store : other;
                for (int i = 0; i < kKeys; ++i) {
                  const std::string key = "nonce-" + std::to_string((c * 7 + i) % kKeys);
                  auto taken = co_await mine.take(key);
                  std::lock_guard lock(tally.mutex);
                  if (!taken) {
                    ++tally.failures;
                  } else if (*taken) {
                    ++tally.wins[key];
                    tally.values[key] = **taken;
                  }
                }
                ++tally.finished;
              },
              net::detached);
        }
        for (int i = 0; i < 12000 && tally.finished.load() < kContenders; ++i) co_await sleep_for(10ms);
      },
      /*threads=*/4, /*limit=*/std::chrono::seconds(180));
}

void expect_exactly_one_winner_per_key(const Tally& tally, const std::string& prefix) {
  EXPECT_EQ(tally.failures, 0);
  EXPECT_EQ(tally.wins.size(), static_cast<std::size_t>(kKeys)) << "some " << prefix << " key was never won";
  for (int i = 0; i < kKeys; ++i) {
    const auto it = tally.wins.find(prefix + std::to_string(i));
    ASSERT_NE(it, tally.wins.end()) << prefix << i;
    EXPECT_EQ(it->second, 1) << prefix << i << " was won " << it->second << " times";
  }
}

TEST(ReplayStoreConcurrency, MemoryClaimHasExactlyOneWinnerPerKey) {
  MemoryNonceStore store;
  Tally tally;
  claim_race(store, store, tally);
  ASSERT_EQ(tally.finished.load(), kContenders);
  expect_exactly_one_winner_per_key(tally, "replay-");
  EXPECT_EQ(store.size(), static_cast<std::size_t>(kKeys));
}

TEST(ReplayStoreConcurrency, MemoryNonceIsTakenExactlyOnce) {
  MemoryNonceStore store;
  Tally tally;
  take_race(store, store, tally);
  ASSERT_EQ(tally.finished.load(), kContenders);
  expect_exactly_one_winner_per_key(tally, "nonce-");
  for (int i = 0; i < kKeys; ++i)
    EXPECT_EQ(tally.values["nonce-" + std::to_string(i)], "instance-" + std::to_string(i % 4));
  EXPECT_EQ(store.size(), 0u);
}

// A full store refuses, never evicts, whoever asks at the same time: exactly `capacity` claims
// win, the rest are limit_exceeded (an outage to the caller), never a second win of a key.
TEST(ReplayStoreConcurrency, MemoryCapacityHoldsUnderConcurrentClaims) {
  MemoryNonceStore store(/*capacity=*/kKeys / 2);
  Tally tally;
  claim_race(store, store, tally);
  ASSERT_EQ(tally.finished.load(), kContenders);
  int total = 0;
  for (const auto& [key, wins] : tally.wins) {
    EXPECT_EQ(wins, 1) << key;
    total += wins;
  }
  EXPECT_EQ(total, kKeys / 2);
  EXPECT_GT(tally.failures, 0);
  EXPECT_EQ(store.size(), static_cast<std::size_t>(kKeys / 2));
}

class RedisConcurrency : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = redis_test::free_port();
    server_ = std::make_unique<redis_test::RedisServer>(port_);
    RedisOptions o;
    o.port = port_;
    o.timeout = 5s;  // generous: under ThreadSanitizer on a busy machine a command can take long
    o.key_prefix = "test:" + std::to_string(::getpid()) + ":";
    // Two gateway replicas, each with its own pool of four worker threads.
    a_ = std::make_unique<RedisNonceStore>(o, 4);
    b_ = std::make_unique<RedisNonceStore>(o, 4);
    for (int i = 0; i < 100 && !a_->ping(); ++i) std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(a_->ping()) << "redis-server did not come up (is it installed? run scripts/setup)";
  }
  int port_ = 0;
  std::unique_ptr<redis_test::RedisServer> server_;
  std::unique_ptr<RedisNonceStore> a_, b_;
};

TEST_F(RedisConcurrency, ClaimHasExactlyOneWinnerPerKeyAcrossReplicas) {
  Tally tally;
  claim_race(*a_, *b_, tally);
  ASSERT_EQ(tally.finished.load(), kContenders);
  expect_exactly_one_winner_per_key(tally, "replay-");
}

TEST_F(RedisConcurrency, NonceIsTakenExactlyOnceAcrossReplicas) {
  Tally tally;
  take_race(*a_, *b_, tally);
  ASSERT_EQ(tally.finished.load(), kContenders);
  expect_exactly_one_winner_per_key(tally, "nonce-");
  for (int i = 0; i < kKeys; ++i)
    EXPECT_EQ(tally.values["nonce-" + std::to_string(i)], "instance-" + std::to_string(i % 4));
}

}  // namespace
}  // namespace e2ee::gateway

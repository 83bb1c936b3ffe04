// SessionCache under concurrent load: an io_context run by four threads, hundreds of request
// coroutines on their own strands (as the server runs handlers) asking for sessions of a few
// models at once. Single flight must hold across threads: one attestation per model for a burst,
// never two attestations of one model at the same time even while sessions are being
// invalidated, and never a session of another model. Labelled `concurrency`: the tsan preset runs
// it under ThreadSanitizer.

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <array>
#include <atomic>
#include <mutex>
#include <set>

#include "proxy/field/session.hpp"

namespace e2ee::proxy::field {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using http::testing::run;
using http::testing::sleep_for;
using protocol::field::KeyPair;

constexpr int kModels = 4;

VerifiedKey key_for(const KeyPair& model) {
  auto peer = PeerKey::parse(model.algo(), model.public_raw());
  return VerifiedKey{*peer, "key", "id", true};
}

// The models' keys, and per model how many attestations ran and how many ran at once.
struct Models {
  std::vector<KeyPair> keys;
  std::array<std::atomic<int>, kModels> attestations{};
  std::array<std::atomic<int>, kModels> in_flight{};
  std::atomic<int> overlapping{0};  // an attestation started while another of its model ran

  Models() {
    for (int m = 0; m < kModels; ++m) keys.push_back(KeyPair::generate(Algo::ecdsa));
  }
  static std::string name(int m) { return "model-" + std::to_string(m); }
};

// An attestation that takes a while (on the requester's executor), so that others pile up.
net::awaitable<std::variant<VerifiedKey, ProxyError>> attest(Models* models, int m) {
  ++models->attestations[m];
  if (++models->in_flight[m] > 1) ++models->overlapping;
  co_await sleep_for(20ms);
  --models->in_flight[m];
  co_return key_for(models->keys[m]);
}

struct Seen {
  std::mutex mutex;
  std::array<std::vector<SessionPtr>, kModels> sessions;
  int wrong_model = 0;
  int errors = 0;
  std::atomic<int> finished{0};

  void record(int m, const std::variant<SessionPtr, ProxyError>& got, const Models& models) {
    std::lock_guard lock(mutex);
    if (const auto* s = std::get_if<SessionPtr>(&got)) {
      sessions[m].push_back(*s);
      if ((*s)->model.key.public_raw() != models.keys[m].public_raw()) ++wrong_model;
    } else {
      ++errors;
    }
  }
};

TEST(SessionCacheConcurrency, ABurstAttestsEachModelExactlyOnce) {
  net::io_context ioc(4);
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  Models models;
  Seen seen;
  constexpr int kRequests = 200;
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int i = 0; i < kRequests; ++i) {
          net::co_spawn(
              net::make_strand(ex),
              [&, i]() -> net::awaitable<void> {
                const int m = i % kModels;
                const std::string model = Models::name(m);
                auto got = co_await cache.acquire(model, [&models, m] { return attest(&models, m); });
                seen.record(m, got, models);
                ++seen.finished;
              },
              net::detached);
        }
        for (int i = 0; i < 3000 && seen.finished.load() < kRequests; ++i) co_await sleep_for(10ms);
      },
      /*threads=*/4);
  ASSERT_EQ(seen.finished.load(), kRequests);
  EXPECT_EQ(seen.errors, 0);
  EXPECT_EQ(seen.wrong_model, 0);
  EXPECT_EQ(cache.attestations_started(), static_cast<std::size_t>(kModels));
  for (int m = 0; m < kModels; ++m) {
    EXPECT_EQ(models.attestations[m].load(), 1) << Models::name(m);
    ASSERT_EQ(seen.sessions[m].size(), static_cast<std::size_t>(kRequests / kModels));
    for (const auto& s : seen.sessions[m]) EXPECT_EQ(s, seen.sessions[m][0]) << Models::name(m);
  }
  EXPECT_EQ(models.overlapping.load(), 0);
}

// Requests keep coming while some of them report their session broken (invalidate), which forces
// new attestations in the middle of the traffic: still never two attestations of one model at
// once, every request gets a session of its own model, and each attestation made one session.
TEST(SessionCacheConcurrency, InvalidationUnderLoadNeverOverlapsAttestations) {
  net::io_context ioc(4);
  SessionCache cache(ioc.get_executor(), Algo::ecdsa, 3600s);
  Models models;
  Seen seen;
  constexpr int kWorkers = 100;
  constexpr int kPerWorker = 5;
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int w = 0; w < kWorkers; ++w) {
          net::co_spawn(
              net::make_strand(ex),
              [&, w]() -> net::awaitable<void> {
                const int m = w % kModels;
                const std::string model = Models::name(m);
                for (int i = 0; i < kPerWorker; ++i) {
                  auto got = co_await cache.acquire(model, [&models, m] { return attest(&models, m); });
                  seen.record(m, got, models);
                  // One worker in ten reports a decryption failure with its session.
                  if (const auto* s = std::get_if<SessionPtr>(&got); s != nullptr && (w + i) % 10 == 0)
                    cache.invalidate(model, *s);
                  co_await sleep_for(1ms);
                }
                ++seen.finished;
              },
              net::detached);
        }
        for (int i = 0; i < 6000 && seen.finished.load() < kWorkers; ++i) co_await sleep_for(10ms);
      },
      /*threads=*/4);
  ASSERT_EQ(seen.finished.load(), kWorkers);
  EXPECT_EQ(seen.errors, 0);
  EXPECT_EQ(seen.wrong_model, 0);
  EXPECT_EQ(models.overlapping.load(), 0) << "two attestations of one model ran at once";
  int total = 0;
  for (int m = 0; m < kModels; ++m) {
    total += models.attestations[m].load();
    EXPECT_GE(models.attestations[m].load(), 2) << Models::name(m) << ": invalidation forced no new attestation";
    // Each attestation made exactly one session, and every session came from one.
    std::set<SessionPtr> distinct(seen.sessions[m].begin(), seen.sessions[m].end());
    EXPECT_EQ(distinct.size(), static_cast<std::size_t>(models.attestations[m].load())) << Models::name(m);
  }
  EXPECT_EQ(cache.attestations_started(), static_cast<std::size_t>(total));
}

}  // namespace
}  // namespace e2ee::proxy::field

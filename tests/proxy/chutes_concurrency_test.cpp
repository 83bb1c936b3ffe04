// NoncePools under concurrent load: an io_context run by four threads, hundreds of request
// coroutines on their own strands (as the server runs handlers) taking nonces from a fake
// api.chutes.ai on loopback. Whatever the interleaving: a burst on an empty pool costs one
// discovery, no nonce is ever handed out twice, and every lease is a nonce that the server issued
// for that API key, chute and instance, with that instance's key. Labelled `concurrency`: the
// tsan preset runs it under ThreadSanitizer.

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

#include "common/encoding.hpp"
#include "crypto/mlkem768.hpp"
#include "http/client.hpp"
#include "proxy/chutes/nonce_pool.hpp"

namespace e2ee::proxy::chutes {
namespace {

namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using http::testing::listen_local;
using http::testing::run;
using http::testing::sleep_for;

// The discovery endpoint of api.chutes.ai: `instances` instances with `per_instance` fresh nonces
// each per call. A nonce reads "<api key>|<chute>|<instance>|<serial>", so a lease can be traced
// back to the discovery that issued it.
class FakeChutes {
 public:
  FakeChutes(int instances, int per_instance) : per_instance_(per_instance) {
    for (int i = 0; i < instances; ++i) {
      const auto dk = crypto::mlkem768::DecapsulationKey::generate();
      const auto& ek = dk.encapsulation_key().bytes();
      pubkeys_["inst-" + std::to_string(i)] = base64_encode(ByteView(ek.data(), ek.size()));
    }
  }

  http::Handler handler() {
    return [this](http::Request& request, http::ResponseWriter& writer) -> net::awaitable<void> {
      http::Response response = discover(request);
      auto sent = co_await writer.send(std::move(response));
      (void)sent;
    };
  }

  int discoveries() const { return discoveries_.load(); }
  const std::map<std::string, std::string>& pubkeys() const { return pubkeys_; }

  // Whether `nonce` was issued, to this key for this chute and instance.
  bool issued(const std::string& nonce, std::string_view api_key, std::string_view chute, std::string_view instance) {
    std::lock_guard lock(mutex_);
    if (!issued_.contains(nonce)) return false;
    const std::string prefix = std::string(api_key) + "|" + std::string(chute) + "|" + std::string(instance) + "|";
    return nonce.compare(0, prefix.size(), prefix) == 0;
  }

 private:
  http::Response discover(const http::Request& request) {
    http::Response response;
    constexpr std::string_view kPrefix = "/e2e/instances/";
    const auto auth = request.headers.get("Authorization");
    if (request.method != "GET" || request.path.compare(0, kPrefix.size(), kPrefix) != 0 || !auth ||
        auth->compare(0, 7, "Bearer ") != 0) {
      response.status = 404;
      return response;
    }
    ++discoveries_;
    const std::string chute = request.path.substr(kPrefix.size());
    const std::string api_key(auth->substr(7));
    json::array instances;
    std::lock_guard lock(mutex_);
    for (const auto& [id, pubkey] : pubkeys_) {
      json::array nonces;
      for (int n = 0; n < per_instance_; ++n) {
        std::string nonce = api_key + "|" + chute + "|" + id + "|" + std::to_string(serial_++);
        issued_.insert(nonce);
        nonces.emplace_back(nonce);
      }
      instances.push_back(json::object{{"instance_id", id}, {"e2e_pubkey", pubkey}, {"nonces", std::move(nonces)}});
    }
    response.body = json::serialize(json::object{{"instances", std::move(instances)}, {"nonce_expires_in", 55}});
    response.headers.set("Content-Type", "application/json");
    return response;
  }

  const int per_instance_;
  std::map<std::string, std::string> pubkeys_;  // instance id → base64 key; fixed after construction
  std::atomic<int> discoveries_{0};
  std::mutex mutex_;
  std::set<std::string> issued_;
  long serial_ = 0;
};

// What the request coroutines saw; shared by all of them.
struct Outcomes {
  std::mutex mutex;
  std::vector<std::string> nonces;
  int wrong_lease = 0;  // a nonce not issued for its key/chute/instance, or the wrong instance key
  std::map<std::string, int> errors;  // code → count
  std::atomic<int> finished{0};
};

// string_view parameters: GCC 12 mishandles by-value string parameters of coroutines initialised
// from temporaries; the callers' strings outlive the call.
net::awaitable<void> take_one(NoncePools& pools, FakeChutes& fake, Outcomes& out, std::string_view api_key,
                              std::string_view chute, std::uint64_t affinity) {
  auto got = co_await pools.acquire(api_key, chute, affinity);
  std::lock_guard lock(out.mutex);
  if (auto* lease = std::get_if<Lease>(&got)) {
    out.nonces.push_back(lease->nonce);
    const auto key = fake.pubkeys().find(lease->instance_id);
    const bool key_ok = key != fake.pubkeys().end() && lease->key &&
                        base64_encode(ByteView(lease->key->bytes().data(), lease->key->bytes().size())) == key->second;
    if (!key_ok || !fake.issued(lease->nonce, api_key, chute, lease->instance_id)) ++out.wrong_lease;
  } else {
    ++out.errors[std::get<ProxyError>(got).code];
  }
}

std::size_t distinct(const std::vector<std::string>& values) { return std::set<std::string>(values.begin(), values.end()).size(); }

// 200 requests at once on an empty pool: one discovery serves them all (the batch is large
// enough), everyone else waits for it instead of sending their own.
TEST(NoncePoolConcurrency, ABurstOnAnEmptyPoolCostsOneDiscovery) {
  net::io_context ioc(4);
  FakeChutes fake(/*instances=*/5, /*per_instance=*/50);
  http::Server server(ioc.get_executor(), fake.handler());
  const http::Url url = listen_local(server);
  http::Client client(ioc.get_executor(), http::ClientOptions{});
  PoolOptions options;
  options.api_upstream = url;
  options.discoveries_per_minute = 1000;
  options.refill_fraction = 0;  // no refill ahead of need: 250 nonces cover the burst
  NoncePools pools(ioc.get_executor(), client, options);
  constexpr int kRequests = 200;
  Outcomes out;
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int i = 0; i < kRequests; ++i) {
          net::co_spawn(
              net::make_strand(ex),
              [&, i]() -> net::awaitable<void> {
                co_await take_one(pools, fake, out, "key-a", "chute-1", static_cast<std::uint64_t>(i % 10));
                ++out.finished;
              },
              net::detached);
        }
        for (int i = 0; i < 3000 && out.finished.load() < kRequests; ++i) co_await sleep_for(10ms);
        co_await server.shutdown(100ms);
      },
      /*threads=*/4);
  ASSERT_EQ(out.finished.load(), kRequests);
  EXPECT_TRUE(out.errors.empty()) << out.errors.begin()->first;
  EXPECT_EQ(out.nonces.size(), static_cast<std::size_t>(kRequests));
  EXPECT_EQ(distinct(out.nonces), out.nonces.size()) << "a nonce was handed out twice";
  EXPECT_EQ(out.wrong_lease, 0);
  EXPECT_EQ(fake.discoveries(), 1);
  EXPECT_EQ(pools.discoveries_sent(), 1u);
}

// Sustained load on small batches across two API keys and two chutes, with refills ahead of need,
// while other coroutines invalidate pools and drop instances (the 403 / gone-instance recoveries):
// many discoveries run while nonces are being taken, and still no nonce is handed out twice or
// to the wrong pool. Under a burst a request may find every fresh batch drained by others (503
// no_nonces, by design); nothing else may fail.
TEST(NoncePoolConcurrency, NoNonceIsHandedOutTwiceUnderSustainedLoadAndInvalidation) {
  net::io_context ioc(4);
  FakeChutes fake(/*instances=*/3, /*per_instance=*/10);
  http::Server server(ioc.get_executor(), fake.handler());
  const http::Url url = listen_local(server);
  http::Client client(ioc.get_executor(), http::ClientOptions{});
  PoolOptions options;
  options.api_upstream = url;
  options.discoveries_per_minute = 100000;
  NoncePools pools(ioc.get_executor(), client, options);
  constexpr int kWorkers = 200;
  constexpr int kPerWorker = 4;
  Outcomes out;
  std::atomic<bool> stop_chaos{false};
  std::atomic<int> chaos_done{0};
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int w = 0; w < kWorkers; ++w) {
          net::co_spawn(
              net::make_strand(ex),
              [&, w]() -> net::awaitable<void> {
                const std::string api_key = w % 2 == 0 ? "key-a" : "key-b";
                const std::string chute = (w / 2) % 2 == 0 ? "chute-1" : "chute-2";
                for (int i = 0; i < kPerWorker; ++i)
                  co_await take_one(pools, fake, out, api_key, chute, static_cast<std::uint64_t>(w % 16));
                ++out.finished;
              },
              net::detached);
        }
        for (int c = 0; c < 2; ++c) {
          net::co_spawn(
              net::make_strand(ex),
              [&, c]() -> net::awaitable<void> {
                for (int i = 0; !stop_chaos.load(); ++i) {
                  if (i % 3 == 0) pools.invalidate(c == 0 ? "key-a" : "key-b", "chute-1");
                  else pools.drop_instance(c == 0 ? "key-b" : "key-a", "chute-2", "inst-" + std::to_string(i % 3));
                  co_await sleep_for(3ms);
                }
                ++chaos_done;
              },
              net::detached);
        }
        for (int i = 0; i < 6000 && out.finished.load() < kWorkers; ++i) co_await sleep_for(10ms);
        stop_chaos = true;
        for (int i = 0; i < 500 && chaos_done.load() < 2; ++i) co_await sleep_for(10ms);
        // Let refills still in flight land before the server goes.
        for (int i = 0; i < 500 && fake.discoveries() < static_cast<int>(pools.discoveries_sent()); ++i)
          co_await sleep_for(10ms);
        co_await sleep_for(50ms);
        co_await server.shutdown(100ms);
      },
      /*threads=*/4);
  ASSERT_EQ(out.finished.load(), kWorkers);
  int failed = 0;
  for (const auto& [code, count] : out.errors) {
    EXPECT_EQ(code, "no_nonces") << count << " requests failed";
    failed += count;
  }
  std::printf("%d acquires: %zu leases, %d found every batch drained (no_nonces), %d discoveries\n",
              kWorkers * kPerWorker, out.nonces.size(), failed, fake.discoveries());
  EXPECT_EQ(out.nonces.size() + static_cast<std::size_t>(failed), static_cast<std::size_t>(kWorkers * kPerWorker));
  EXPECT_GT(out.nonces.size(), static_cast<std::size_t>(kWorkers * kPerWorker / 2));
  EXPECT_EQ(distinct(out.nonces), out.nonces.size()) << "a nonce was handed out twice";
  EXPECT_EQ(out.wrong_lease, 0);
  EXPECT_GT(fake.discoveries(), 4);
  EXPECT_EQ(static_cast<std::size_t>(fake.discoveries()), pools.discoveries_sent());
}

}  // namespace
}  // namespace e2ee::proxy::chutes

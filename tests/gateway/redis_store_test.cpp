// RedisNonceStore against a real redis-server that the test starts on a free port.

#include "gateway/redis_store.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <thread>

#include "gateway/redis_test_server.hpp"

namespace e2ee::gateway {
namespace {

using redis_test::free_port;
using redis_test::RedisServer;

template <typename T>
T run(boost::asio::io_context& ioc, boost::asio::awaitable<T> work) {
  std::optional<T> out;
  boost::asio::co_spawn(
      ioc, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(work)); }, boost::asio::detached);
  ioc.restart();
  ioc.run();
  return std::move(*out);
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    server_ = std::make_unique<RedisServer>(port_);
    RedisOptions o;
    o.port = port_;
    o.key_prefix = "test:" + std::to_string(::getpid()) + ":";
    store_ = std::make_unique<RedisNonceStore>(o);
    for (int i = 0; i < 100 && !store_->ping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(store_->ping()) << "redis-server did not come up (is it installed? run scripts/setup)";
  }
  int port_ = 0;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisNonceStore> store_;
  boost::asio::io_context ioc_;
};

TEST_F(RedisStoreTest, NoncesAreSingleUseAcrossStoresSharingOneRedis) {
  ASSERT_TRUE(run(ioc_, store_->put({"n1", "n2", "n3"}, "instance caller", std::chrono::seconds(60))));
  // A second store (another gateway replica) sees the same nonces.
  RedisOptions o;
  o.port = port_;
  o.key_prefix = "test:" + std::to_string(::getpid()) + ":";
  RedisNonceStore replica(o);
  auto taken = run(ioc_, replica.take("n2"));
  ASSERT_TRUE(taken);
  EXPECT_EQ(*taken, std::optional<std::string>("instance caller"));
  auto again = run(ioc_, store_->take("n2"));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "a nonce must be usable once across replicas";
  EXPECT_TRUE(*run(ioc_, store_->take("n1")));
  EXPECT_FALSE(*run(ioc_, store_->take("never")));
}

TEST_F(RedisStoreTest, ClaimDetectsReplaysAndExpires) {
  auto first = run(ioc_, store_->claim("nonce-abc", std::chrono::seconds(1)));
  ASSERT_TRUE(first);
  EXPECT_TRUE(*first);
  auto replay = run(ioc_, store_->claim("nonce-abc", std::chrono::seconds(1)));
  ASSERT_TRUE(replay);
  EXPECT_FALSE(*replay);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_TRUE(*run(ioc_, store_->claim("nonce-abc", std::chrono::seconds(1))));
}

TEST_F(RedisStoreTest, AnOutageIsUnavailableNeverAReplayAndRecoveryIsAutomatic) {
  ASSERT_TRUE(*run(ioc_, store_->claim("before", std::chrono::seconds(60))));
  server_->stop();
  auto during = run(ioc_, store_->claim("during", std::chrono::seconds(60)));
  ASSERT_FALSE(during) << "an unreachable Redis must not answer";
  EXPECT_EQ(during.error().code, Errc::unavailable);
  auto take = run(ioc_, store_->take("x"));
  ASSERT_FALSE(take);
  EXPECT_EQ(take.error().code, Errc::unavailable);
  server_->start();
  for (int i = 0; i < 100 && !store_->ping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto after = run(ioc_, store_->claim("during", std::chrono::seconds(60)));
  ASSERT_TRUE(after) << after.error().message;
  EXPECT_TRUE(*after);
}

// A connection pooled before Redis restarted is dead; the first claim after the restart must not
// report an outage because of it (it used to: one 503 per stale pooled connection).
TEST_F(RedisStoreTest, APooledConnectionClosedByARestartIsReplacedAtOnce) {
  ASSERT_TRUE(*run(ioc_, store_->claim("before-restart", std::chrono::seconds(60))));  // leaves a pooled connection
  server_->stop();
  server_->start();
  // Wait for the new server through another store: store_'s own ping would drop the stale connection.
  RedisOptions o;
  o.port = port_;
  RedisNonceStore probe(o);
  for (int i = 0; i < 100 && !probe.ping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(probe.ping());
  auto after = run(ioc_, store_->claim("after-restart", std::chrono::seconds(60)));
  ASSERT_TRUE(after) << "a stale pooled connection must be replaced, not reported as an outage: " << after.error().message;
  EXPECT_TRUE(*after);
  auto again = run(ioc_, store_->claim("after-restart", std::chrono::seconds(60)));
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again) << "the retried claim must have been recorded once";
}

TEST(RedisUrl, Parses) {
  auto a = parse_redis_url("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->database, 2);
  auto b = parse_redis_url("redis://:s3cret@redis.internal");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->password, "s3cret");
  EXPECT_EQ(b->host, "redis.internal");
  EXPECT_EQ(b->port, 6379);
  EXPECT_FALSE(parse_redis_url("http://x"));
  EXPECT_FALSE(parse_redis_url("redis://"));
  EXPECT_FALSE(parse_redis_url("redis://h:99999"));
}

}  // namespace
}  // namespace e2ee::gateway

// Per-request ML-KEM work made ahead. The response key pool: keys are made ahead on the executor,
// each is handed out once, a burst beyond the pool still gets fresh keys (made inline), and the
// pool refills itself. Instance encapsulations: made ahead per instance key after a request to it,
// valid for that key alone, each handed out once.

#include "proxy/chutes/response_keys.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/encoding.hpp"

namespace e2ee::proxy::chutes {
namespace {

std::string id_of(const crypto::mlkem768::DecapsulationKey& key) {
  return hex_encode(key.encapsulation_key().bytes());
}

TEST(ResponseKeyPool, MakesKeysAheadAndHandsEachOutOnce) {
  boost::asio::io_context ioc;
  ResponseKeyPool pool(ioc.get_executor(), 3);
  EXPECT_EQ(pool.ready(), 0u);  // nothing is made on the caller's stack
  ioc.run();
  ioc.restart();
  EXPECT_EQ(pool.ready(), 3u);

  std::set<std::string> seen;
  // A burst of 10 without the executor running: 3 from the pool, 7 made inline, all distinct.
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(seen.insert(id_of(pool.take())).second) << i;
  EXPECT_EQ(pool.ready(), 0u);
  ioc.run();  // the three queued refills
  ioc.restart();
  EXPECT_EQ(pool.ready(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(seen.insert(id_of(pool.take())).second) << "refilled " << i;
}

TEST(ResponseKeyPool, NeverHoldsMoreThanItsCapacity) {
  boost::asio::io_context ioc;
  ResponseKeyPool pool(ioc.get_executor(), 2);
  ioc.run();
  ioc.restart();
  (void)pool.take();
  (void)pool.take();
  (void)pool.take();  // inline: queues no refill
  ioc.run();
  EXPECT_EQ(pool.ready(), 2u);
}

TEST(ResponseKeyPool, RefillsQueuedWhenThePoolIsGoneDoNothingHarmful) {
  boost::asio::io_context ioc;
  {
    ResponseKeyPool pool(ioc.get_executor(), 2);
  }
  // The refills own what they touch: they run after the pool is gone (a use after free here is
  // what the asan-ubsan stage would report), and their keys go with the last reference.
  EXPECT_EQ(ioc.run(), 2u);
}

namespace mlkem = crypto::mlkem768;

struct Instance {
  mlkem::DecapsulationKey dk = mlkem::DecapsulationKey::generate();
  InstanceEncapsulations::Key key = std::make_shared<const mlkem::EncapsulationKey>(dk.encapsulation_key());
};

// The encapsulation is to this instance's key: its secret is what the instance decapsulates.
void expect_opens(const Instance& instance, const mlkem::Encapsulation& enc, std::set<std::string>& seen) {
  const auto secret = mlkem::decapsulate(instance.dk, enc.ciphertext);
  ASSERT_TRUE(secret);
  EXPECT_EQ(hex_encode(secret->span()), hex_encode(enc.shared_secret.span()));
  EXPECT_TRUE(seen.insert(hex_encode(enc.ciphertext)).second) << "an encapsulation was handed out twice";
}

TEST(InstanceEncapsulations, MadeAheadAfterARequestToTheKeyAndHandedOutOnce) {
  boost::asio::io_context ioc;
  InstanceEncapsulations encs(ioc.get_executor(), 2);
  Instance a;
  std::set<std::string> seen;
  expect_opens(a, encs.take(a.key), seen);  // first request to the key: inline
  EXPECT_EQ(encs.ready(a.key), 0u);         // nothing made on the caller's stack
  ioc.run();
  ioc.restart();
  EXPECT_EQ(encs.ready(a.key), 1u);
  for (int i = 0; i < 6; ++i) {
    expect_opens(a, encs.take(a.key), seen);  // the one made ahead
    EXPECT_EQ(encs.ready(a.key), 0u);
    ioc.run();
    ioc.restart();
    EXPECT_EQ(encs.ready(a.key), 1u) << i;
  }
  // A burst without the executor running: one made ahead, the rest inline, all distinct; the
  // refills then stop at two per key.
  for (int i = 0; i < 5; ++i) expect_opens(a, encs.take(a.key), seen);
  ioc.run();
  ioc.restart();
  EXPECT_EQ(encs.ready(a.key), 2u);
}

TEST(InstanceEncapsulations, EachKeyHasItsOwnAndOnlyRecentKeysAreKept) {
  boost::asio::io_context ioc;
  InstanceEncapsulations encs(ioc.get_executor(), 1);
  std::vector<Instance> instances(InstanceEncapsulations::kMaxKeys + 1);
  std::set<std::string> seen;
  for (const auto& instance : instances) expect_opens(instance, encs.take(instance.key), seen);
  ioc.run();
  ioc.restart();
  // The first key was pushed out by the ninth: its refill found it gone. The others are ready, and
  // each opens under its own instance key only.
  EXPECT_EQ(encs.ready(instances.front().key), 0u);
  for (std::size_t i = 1; i < instances.size(); ++i) {
    EXPECT_EQ(encs.ready(instances[i].key), 1u) << i;
    expect_opens(instances[i], encs.take(instances[i].key), seen);
  }
  // The same bytes in a new key object (a rediscovered instance) start afresh.
  const auto again = std::make_shared<const mlkem::EncapsulationKey>(*instances.back().key);
  ioc.run();
  ioc.restart();
  EXPECT_EQ(encs.ready(instances.back().key), 1u);
  EXPECT_EQ(encs.ready(again), 0u);
}

TEST(InstanceEncapsulations, RefillsQueuedWhenTheCacheIsGoneDoNothingHarmful) {
  boost::asio::io_context ioc;
  Instance a;
  {
    InstanceEncapsulations encs(ioc.get_executor(), 2);
    (void)encs.take(a.key);
  }
  EXPECT_EQ(ioc.run(), 1u);
}

}  // namespace
}  // namespace e2ee::proxy::chutes

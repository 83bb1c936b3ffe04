// The response key pool: keys are made ahead on the executor, each is handed out once, a burst
// beyond the pool still gets fresh keys (made inline), and the pool refills itself.

#include "proxy/chutes/response_keys.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <set>
#include <string>

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

}  // namespace
}  // namespace e2ee::proxy::chutes

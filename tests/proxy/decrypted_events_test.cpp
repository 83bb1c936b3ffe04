// The buffer both decrypting event streams keep between reads: events before a failure are
// delivered, then the failure, and nothing after it.

#include "proxy/decrypted_events.hpp"

#include <gtest/gtest.h>

namespace e2ee::proxy {
namespace {

http::SseEvent event(std::string data) {
  http::SseEvent e;
  e.data = std::move(data);
  return e;
}

ProxyError error(std::string code) { return ProxyError{502, "upstream_error", std::move(code), "failed", 0}; }

TEST(DecryptedEvents, EventsBeforeAFailureComeFirstThenTheFailureOnly) {
  DecryptedEvents events;
  events.push(event("a"));
  events.push(event("b"));
  events.fail(error("first"));
  events.push(event("after"));  // the stream is over: not delivered
  events.fail(error("second"));  // the first failure is the one reported
  EXPECT_TRUE(events.failed());

  for (const char* expected : {"a", "b"}) {
    auto next = events.settled();
    ASSERT_TRUE(next.has_value());
    const auto* ev = std::get_if<std::optional<http::SseEvent>>(&*next);
    ASSERT_TRUE(ev != nullptr && ev->has_value());
    EXPECT_EQ((*ev)->data, expected);
  }
  for (int i = 0; i < 2; ++i) {  // and it stays failed
    auto next = events.settled();
    ASSERT_TRUE(next.has_value());
    const auto* failure = std::get_if<ProxyError>(&*next);
    ASSERT_NE(failure, nullptr);
    EXPECT_EQ(failure->code, "first");
  }
  EXPECT_FALSE(events.take().has_value());
}

TEST(DecryptedEvents, NothingWaitingMeansReadAndClearStartsOver) {
  DecryptedEvents events;
  EXPECT_FALSE(events.settled().has_value());
  events.push(event("a"));
  events.fail(error("x"));
  events.clear();
  EXPECT_FALSE(events.failed());
  EXPECT_FALSE(events.settled().has_value());
  events.push(event("b"));
  EXPECT_EQ(events.take()->data, "b");
}

}  // namespace
}  // namespace e2ee::proxy

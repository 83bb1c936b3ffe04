// relay_stream against a scripted upstream and a recording client writer: the events of one
// upstream read reach the client in one write, keep-alives fill a silence (and only a silence),
// the stream ends with the shaper's closing events, and a client that goes away cancels the
// upstream at once.

#include "http/test_support.hpp"

#include <deque>

#include "proxy/stream_relay.hpp"

namespace e2ee::proxy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using http::testing::run;
using Item = std::variant<std::optional<http::SseEvent>, ProxyError>;

// One upstream read: the events it brings, after an optional pause.
struct Read {
  std::chrono::milliseconds pause{0};
  std::vector<std::string> events;  // data of each; "[DONE]" ends the stream
};

// An EventStream whose reads are scripted. A read with no events is one that never completes
// (until cancel()).
class ScriptedEvents final : public EventStream {
 public:
  explicit ScriptedEvents(std::vector<Read> reads) : reads_(reads.begin(), reads.end()) {}

  net::awaitable<Item> next() override {
    if (!ready_.empty()) co_return std::optional<http::SseEvent>(pop());
    if (reads_.empty()) co_return std::optional<http::SseEvent>();
    Read read = std::move(reads_.front());
    reads_.pop_front();
    timer_.emplace(co_await net::this_coro::executor);
    timer_->expires_after(read.events.empty() ? std::chrono::hours(1) : read.pause);
    ++reads_started;
    auto [ec] = co_await timer_->async_wait(net::as_tuple(net::use_awaitable));
    if (ec) co_return upstream_error(502, "cancelled", "cancelled");
    for (auto& data : read.events) ready_.push_back(http::SseEvent{"", std::move(data), "", std::nullopt});
    co_return std::optional<http::SseEvent>(pop());
  }
  std::optional<http::SseEvent> try_next() override {
    if (ready_.empty()) return std::nullopt;
    return pop();
  }
  void cancel() noexcept override {
    cancelled = true;
    if (timer_) timer_->cancel();
  }

  bool cancelled = false;
  int reads_started = 0;

 private:
  http::SseEvent pop() {
    http::SseEvent ev = std::move(ready_.front());
    ready_.pop_front();
    return ev;
  }
  std::deque<Read> reads_;
  std::deque<http::SseEvent> ready_;
  std::optional<net::steady_timer> timer_;
};

// Passes each event's data through; "closing" on [DONE], "failed" on an error.
class EchoShaper final : public StreamShaper {
 public:
  api::OutEvents on_event(std::string_view data) override { return {api::OutEvent{"", std::string(data)}}; }
  api::OutEvents on_done() override { return {api::OutEvent{"", "closing"}}; }
  api::OutEvents on_error(const ProxyError&) override { return {api::OutEvent{"", "failed"}}; }
};

// Records each write; after `fail_after` writes it reports the client gone.
class RecordingWriter final : public http::ResponseWriter {
 public:
  net::awaitable<Status> send(http::Response) override { co_return Status{}; }
  net::awaitable<Status> start_stream(int, http::Headers) override { co_return Status{}; }
  net::awaitable<Status> write(std::string_view chunk) override {
    if (writes.size() >= fail_after) co_return make_error(Errc::cancelled, "client gone");
    writes.emplace_back(chunk);
    co_return Status{};
  }
  net::awaitable<Status> finish() override {
    finished = true;
    co_return Status{};
  }
  bool started() const noexcept override { return true; }
  void on_client_gone(std::function<void()>) override {}

  std::vector<std::string> writes;
  std::size_t fail_after = SIZE_MAX;
  bool finished = false;
};

const std::string kKeepalive = ": keep-alive\n\n";

TEST(StreamRelay, SendsTheEventsOfOneReadInOneWrite) {
  net::io_context ioc;
  ScriptedEvents events({Read{0ms, {"a", "b", "c"}}, Read{0ms, {"d", "[DONE]"}}});
  EchoShaper shaper;
  RecordingWriter writer;
  int status = 0;
  run(ioc, [&]() -> net::awaitable<void> { status = co_await relay_stream(events, shaper, writer, 10s); });
  EXPECT_EQ(status, 200);
  ASSERT_EQ(writer.writes.size(), 2u);
  EXPECT_EQ(writer.writes[0], "data: a\n\ndata: b\n\ndata: c\n\n");
  EXPECT_EQ(writer.writes[1], "data: d\n\ndata: closing\n\n");
  EXPECT_TRUE(writer.finished);
}

TEST(StreamRelay, KeepsTheClientAliveThroughASilenceOnly) {
  net::io_context ioc;
  // A silence of many keep-alive intervals between two bursts. The counts below hold however
  // slow the machine: they follow from the order of events, not from how long anything took.
  ScriptedEvents events({Read{0ms, {"a"}}, Read{400ms, {"b", "[DONE]"}}});
  EchoShaper shaper;
  RecordingWriter writer;
  run(ioc, [&]() -> net::awaitable<void> { co_await relay_stream(events, shaper, writer, 20ms); });
  ASSERT_GE(writer.writes.size(), 3u);
  EXPECT_EQ(writer.writes.front(), "data: a\n\n");
  EXPECT_EQ(writer.writes.back(), "data: b\n\ndata: closing\n\n");
  for (std::size_t i = 1; i + 1 < writer.writes.size(); ++i) EXPECT_EQ(writer.writes[i], kKeepalive) << i;
  EXPECT_TRUE(writer.finished);
}

TEST(StreamRelay, AnUpstreamThatEndsWithoutDoneIsReportedAsTruncated) {
  net::io_context ioc;
  ScriptedEvents events({Read{0ms, {"a"}}});
  EchoShaper shaper;
  RecordingWriter writer;
  int status = 0;
  run(ioc, [&]() -> net::awaitable<void> { status = co_await relay_stream(events, shaper, writer, 10s); });
  EXPECT_EQ(status, 502);
  ASSERT_EQ(writer.writes.size(), 2u);
  EXPECT_EQ(writer.writes[1], "data: failed\n\n");
}

TEST(StreamRelay, AClientThatLeavesCancelsTheUpstreamAtOnce) {
  net::io_context ioc;
  // After the first burst the upstream never answers; the client is gone by the next write,
  // which is the first keep-alive.
  ScriptedEvents events({Read{0ms, {"a"}}, Read{0ms, {}}});
  EchoShaper shaper;
  RecordingWriter writer;
  writer.fail_after = 1;
  int status = 0;
  run(ioc, [&]() -> net::awaitable<void> { status = co_await relay_stream(events, shaper, writer, 20ms); });
  EXPECT_EQ(status, 499);
  EXPECT_TRUE(events.cancelled);
  EXPECT_EQ(events.reads_started, 2);
  EXPECT_FALSE(writer.finished);
}

}  // namespace
}  // namespace e2ee::proxy

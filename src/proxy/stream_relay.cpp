#include "proxy/stream_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "common/log.hpp"
#include "http/sse.hpp"

namespace e2ee::proxy {

namespace net = boost::asio;
using Item = std::variant<std::optional<http::SseEvent>, ProxyError>;
// What the reader hands the writer: the events of one upstream read, in order. An empty batch is
// the keep-alive ticker's "the client has heard nothing for a while".
using Batch = std::vector<Item>;
using Channel = net::experimental::channel<void(boost::system::error_code, Batch)>;

std::string format_event(const api::OutEvent& event) {
  return http::format_sse(event.data, event.event);
}

namespace {

bool is_end(const Item& item) {
  if (std::holds_alternative<ProxyError>(item)) return true;
  const auto& event = std::get<std::optional<http::SseEvent>>(item);
  return !event || event->data == "[DONE]";
}

// Batches the reader may run ahead of the writer while the client's socket is slow (or a write
// is in flight); the writer then sends all of them in one write. A batch is one upstream read
// (at most a 64 KiB piece), so this bounds what a client that stops reading can hold here, and
// the reader then stops, and through TCP so does the upstream.
constexpr std::size_t kChannelCapacity = 4;

// Shared by the writer, the reader and the keep-alive ticker; the last one out releases it.
struct RelayState {
  explicit RelayState(const net::any_io_executor& ex)
      : channel(ex, kChannelCapacity), reader_gone(ex), ticker(ex), last_write(std::chrono::steady_clock::now()) {
    reader_gone.expires_at(net::steady_timer::time_point::max());
  }
  Channel channel;
  net::steady_timer reader_gone;  // cancelled when the reader has stopped touching `events`
  bool reader_running = true;
  net::steady_timer ticker;       // the keep-alive ticker's sleep
  bool ticking = true;            // false once the relay ends: the ticker's next wake-up is its last
  std::chrono::steady_clock::time_point last_write;  // when the client last got bytes
};

// Pulls events from the upstream: one next() per upstream read, then whatever that read also
// brought (try_next), all handed over as one batch. Per event, a coroutine resumption and a
// channel hand-off were most of what a streamed chunk cost (docs/performance.md, history).
net::awaitable<void> read_upstream(EventStream& events, std::shared_ptr<RelayState> state) {
  for (;;) {
    Batch batch;
    batch.push_back(co_await events.next());
    bool end = is_end(batch.back());
    while (!end) {
      auto more = events.try_next();
      if (!more) break;
      batch.emplace_back(std::optional<http::SseEvent>(std::move(*more)));
      end = is_end(batch.back());
    }
    const boost::system::error_code no_error;
    auto [ec] = co_await state->channel.async_send(no_error, std::move(batch), net::as_tuple(net::use_awaitable));
    if (ec || end) break;
  }
  state->reader_running = false;
  state->reader_gone.cancel();
}

// Wakes when the client will have heard nothing for `every`, and then asks the writer for a
// keep-alive (an empty batch). A timer that sleeps per silence, rather than one armed and
// cancelled around every event, so a busy stream costs it one wake-up per interval.
net::awaitable<void> tick_keepalives(std::shared_ptr<RelayState> state, std::chrono::milliseconds every) {
  while (state->ticking) {
    state->ticker.expires_at(state->last_write + every);
    co_await state->ticker.async_wait(net::as_tuple(net::use_awaitable));
    if (!state->ticking) break;
    const auto now = std::chrono::steady_clock::now();
    if (now - state->last_write >= every) {
      // Refused when batches are queued: the client is about to hear from us anyway. Either way
      // the mark moves on, so the next check is a full interval away (the writer moves it again
      // when it has written).
      state->channel.try_send(boost::system::error_code{}, Batch{});
      state->last_write = now;
    }
  }
}

// Moves the batches already waiting in the channel into `batches`, without waiting.
void take_ready(Channel& channel, std::vector<Batch>& batches) {
  bool more = true;
  while (more) {
    more = channel.try_receive([&](boost::system::error_code ec, Batch batch) {
      if (!ec) batches.push_back(std::move(batch));
    });
  }
}

// Writes `out`; false once the client is gone.
net::awaitable<bool> emit(http::ResponseWriter& writer, const api::OutEvents& out) {
  for (const auto& e : out) {
    const std::string bytes = format_event(e);
    if (auto sent = co_await writer.write(bytes); !sent) co_return false;
  }
  co_return true;
}

}  // namespace

net::awaitable<bool> start_client_stream(StreamShaper& shaper, http::ResponseWriter& writer, http::Headers headers) {
  if (auto sent = co_await writer.start_stream(200, std::move(headers)); !sent) co_return false;
  const api::OutEvents opening = shaper.start();
  co_return co_await emit(writer, opening);
}

net::awaitable<int> fail_client_stream(StreamShaper& shaper, http::ResponseWriter& writer, const ProxyError& error) {
  log::warn("stream failed", {{"code", error.code}, {"status", error.status}});
  const api::OutEvents closing = shaper.on_error(error);
  if (auto sent = co_await emit(writer, closing); !sent) co_return 499;
  co_await writer.finish();
  co_return error.status;
}

net::awaitable<int> relay_stream(EventStream& events, StreamShaper& shaper, http::ResponseWriter& writer,
                                 std::chrono::milliseconds keepalive_every) {
  const auto ex = co_await net::this_coro::executor;
  auto state = std::make_shared<RelayState>(ex);
  net::co_spawn(ex, read_upstream(events, state), net::detached);
  net::co_spawn(ex, tick_keepalives(state, keepalive_every), net::detached);

  int status = 200;
  bool client_gone = false;
  bool ended = false;
  std::vector<Batch> batches;
  std::string out_bytes;
  while (!client_gone && !ended) {
    batches.clear();
    auto [ec, first] = co_await state->channel.async_receive(net::as_tuple(net::use_awaitable));
    if (ec) {  // cannot happen while the reader runs; treat as a failure rather than hang
      status = 502;
      break;
    }
    batches.push_back(std::move(first));
    take_ready(state->channel, batches);
    // Everything that arrived goes out in one write.
    out_bytes.clear();
    for (auto& batch : batches) {
      if (batch.empty()) out_bytes += shaper.keepalive();  // the engine is silent: feed the client's idle watchdog
      for (auto& item : batch) {
        api::OutEvents out;
        if (auto* error = std::get_if<ProxyError>(&item)) {
          log::warn("stream failed", {{"code", error->code}, {"status", error->status}});
          status = error->status;
          out = shaper.on_error(*error);
        } else if (auto& event = std::get<std::optional<http::SseEvent>>(item); !event) {
          // The engine always ends with [DONE]; ending without it means the answer was cut short.
          const ProxyError truncated =
              upstream_error(502, "stream_truncated", "the stream ended before the model finished");
          status = 502;
          out = shaper.on_error(truncated);
        } else if (event->data == "[DONE]") {
          out = shaper.on_done();
        } else {
          out = shaper.on_event(event->data);
        }
        for (const auto& e : out) http::append_sse(out_bytes, e.data, e.event);
        if (is_end(item)) {  // the reader sends nothing after its last item
          ended = true;
          break;
        }
      }
      if (ended) break;
    }
    client_gone = !co_await writer.write(out_bytes);
    state->last_write = std::chrono::steady_clock::now();
  }
  state->ticking = false;
  state->ticker.cancel();
  if (!client_gone && ended) co_await writer.finish();

  if (client_gone) status = 499;
  // Stop the reader (if it is still inside next(), cancelling the upstream makes it return) and
  // wait until it no longer touches `events`, which the caller is about to destroy.
  if (state->reader_running) {
    events.cancel();
    state->channel.close();
    co_await state->reader_gone.async_wait(net::as_tuple(net::use_awaitable));
  }
  co_return status;
}

}  // namespace e2ee::proxy

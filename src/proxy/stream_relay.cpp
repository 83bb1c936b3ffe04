#include "proxy/stream_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <vector>

#include "common/log.hpp"
#include "http/sse.hpp"

namespace e2ee::proxy {

namespace net = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using Item = std::variant<std::optional<http::SseEvent>, ProxyError>;
using Channel = net::experimental::channel<void(boost::system::error_code, Item)>;

std::string format_event(const api::OutEvent& event) {
  return http::format_sse(event.data, event.event);
}

namespace {

bool is_end(const Item& item) {
  if (std::holds_alternative<ProxyError>(item)) return true;
  const auto& event = std::get<std::optional<http::SseEvent>>(item);
  return !event || event->data == "[DONE]";
}

// Events the reader may run ahead of the writer. While the client's socket is slow (or a write is
// in flight) they queue here, and the writer then sends all of them in one write: at full speed a
// write per event (a syscall and a wake-up of the client each) capped the Chutes pair at ~14,000
// chunks/s (docs/performance.md, history). Bounded, so a client that stops reading stops the
// reader and, through TCP, the upstream.
constexpr std::size_t kChannelCapacity = 32;

// Shared by the writer and the reader coroutine; the last one out releases it.
struct RelayState {
  explicit RelayState(const net::any_io_executor& ex) : channel(ex, kChannelCapacity), reader_gone(ex) {
    reader_gone.expires_at(net::steady_timer::time_point::max());
  }
  Channel channel;
  net::steady_timer reader_gone;  // cancelled when the reader has stopped touching `events`
  bool reader_running = true;
};

net::awaitable<void> read_upstream(EventStream& events, std::shared_ptr<RelayState> state) {
  for (;;) {
    Item item = co_await events.next();
    const bool end = is_end(item);
    const boost::system::error_code no_error;
    auto [ec] = co_await state->channel.async_send(no_error, std::move(item), net::as_tuple(net::use_awaitable));
    if (ec || end) break;
  }
  state->reader_running = false;
  state->reader_gone.cancel();
}

// Moves the items already waiting in the channel into `items`, without waiting.
void take_ready(Channel& channel, std::vector<Item>& items) {
  bool more = true;
  while (more && items.size() < kChannelCapacity) {
    more = channel.try_receive([&](boost::system::error_code ec, Item item) {
      if (!ec) items.push_back(std::move(item));
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

  int status = 200;
  bool client_gone = false;
  bool ended = false;
  net::steady_timer keepalive(ex);
  std::vector<Item> items;
  std::string batch;
  while (!client_gone && !ended) {
    items.clear();
    take_ready(state->channel, items);
    if (items.empty()) {
      // Nothing queued: wait for the next event, or for the keep-alive interval to pass.
      keepalive.expires_after(keepalive_every);
      auto next = co_await (state->channel.async_receive(net::as_tuple(net::use_awaitable)) ||
                            keepalive.async_wait(net::as_tuple(net::use_awaitable)));
      if (next.index() == 1) {  // the engine is silent: keep the client's idle watchdog fed
        const std::string bytes = shaper.keepalive();
        client_gone = !co_await writer.write(bytes);
        continue;
      }
      auto [ec, item] = std::get<0>(std::move(next));
      if (ec) {  // cannot happen while the reader runs; treat as a failure rather than hang
        status = 502;
        break;
      }
      items.push_back(std::move(item));
      take_ready(state->channel, items);
    }
    // Everything that arrived goes out in one write.
    batch.clear();
    for (auto& item : items) {
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
      for (const auto& e : out) batch += format_event(e);
      if (is_end(item)) {  // the reader sends nothing after its last item
        ended = true;
        break;
      }
    }
    client_gone = !co_await writer.write(batch);
  }
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

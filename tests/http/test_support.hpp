#pragma once
// Helpers for the HTTP tests: run a test coroutine on an io_context with a hang guard, a one-way
// signal between coroutines, and raw-socket helpers for talking HTTP byte by byte.

#include <gtest/gtest.h>

// GCC 12 at -O2 reports a false -Wmismatched-new-delete when it inlines Asio's awaitable frame
// allocation (aligned_new) into a coroutine lambda's std::function thunk; Asio pairs its own
// operator new and delete correctly. Silenced for the test files that include this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "http/server.hpp"
#include "http/url.hpp"

// ASSERT_* end a test function with `return`, which a coroutine cannot do; these end the test
// coroutine with co_return instead (a void operand is allowed there). Use them in awaitable<void>.
#define E2EE_CO_FATAL_FAILURE_(message) co_return GTEST_MESSAGE_(message, ::testing::TestPartResult::kFatalFailure)
#define CO_ASSERT_TRUE(condition) \
  GTEST_TEST_BOOLEAN_(condition, #condition, false, true, E2EE_CO_FATAL_FAILURE_)
#define CO_ASSERT_FALSE(condition) \
  GTEST_TEST_BOOLEAN_(!(condition), #condition, true, false, E2EE_CO_FATAL_FAILURE_)
#define CO_ASSERT_EQ(a, b) GTEST_PRED_FORMAT2_(::testing::internal::EqHelper::Compare, a, b, E2EE_CO_FATAL_FAILURE_)

namespace e2ee::http::testing {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

inline constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

inline ::testing::AssertionResult Contains(std::string_view haystack, std::string_view needle) {
  if (haystack.find(needle) != std::string_view::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << needle << "' not found in: '" << haystack << "'";
}

// Runs the coroutine made by `body` until it finishes; fails the test if it throws or is still
// running after `limit` (a hang guard, generous on purpose: never a timing assertion).
inline void run(net::io_context& ioc, const std::function<net::awaitable<void>()>& body, int threads = 1,
                std::chrono::seconds limit = std::chrono::seconds(60)) {
  bool done = false;
  std::exception_ptr failure;
  net::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    failure = e;
    done = true;
    ioc.stop();
  });
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&] { ioc.run_for(limit); });
  ioc.run_for(limit);
  for (auto& t : extra) t.join();
  ASSERT_TRUE(done) << "the test coroutine did not finish within " << limit.count() << " s";
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      FAIL() << "test coroutine threw: " << e.what();
    }
  }
}

// GCC 12 destroys an aggregate temporary twice when it is built with braces inside a co_await
// operand (`co_await writer.send(Response{200, {}, "x"})` is a double free). A function that
// returns the value is safe, hence this helper.
inline Response reply(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// A counter that coroutines on one single-threaded io_context can wait on.
class Signal {
 public:
  explicit Signal(net::any_io_executor ex) : timer_(ex, net::steady_timer::time_point::max()) {}
  void notify() {
    ++count_;
    timer_.cancel();
  }
  int count() const { return count_; }
  // Waits until notify() has been called at least `n` times in total.
  net::awaitable<void> wait_for(int n) {
    while (count_ < n) {
      timer_.expires_at(net::steady_timer::time_point::max());
      co_await timer_.async_wait(kUseTuple);
    }
  }

 private:
  net::steady_timer timer_;
  int count_ = 0;
};

inline net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer timer(co_await net::this_coro::executor, d);
  co_await timer.async_wait(kUseTuple);
}

// Starts listening on 127.0.0.1 with an ephemeral port and returns the bound URL.
inline Url listen_local(Server& server, std::shared_ptr<const TlsServerContext> tls = nullptr,
                        const std::string& host = "127.0.0.1") {
  auto url = Url::parse(std::string(tls ? "https://" : "http://") + host + ":0");
  EXPECT_TRUE(url.has_value());
  auto status = server.listen(Listener{*url, std::move(tls)});
  EXPECT_TRUE(status.has_value()) << (status ? "" : status.error().message);
  auto bound = server.bound();
  EXPECT_FALSE(bound.empty());
  return bound.empty() ? *url : bound.back();
}

inline net::awaitable<tcp::socket> connect_raw(const Url& url) {
  tcp::socket socket(co_await net::this_coro::executor);
  auto [ec] = co_await socket.async_connect(tcp::endpoint(net::ip::make_address(url.host), url.port), kUseTuple);
  EXPECT_FALSE(ec) << ec.message();
  co_return socket;
}

inline net::awaitable<bool> write_raw(tcp::socket& socket, std::string_view bytes) {
  auto [ec, n] = co_await net::async_write(socket, net::buffer(bytes.data(), bytes.size()), kUseTuple);
  co_return !ec;
}

// Reads until the peer closes (or an error); returns everything received.
inline net::awaitable<std::string> read_to_close(tcp::socket& socket) {
  std::string out;
  char buffer[4096];
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(net::buffer(buffer), kUseTuple);
    out.append(buffer, n);
    if (ec) co_return out;
  }
}

// Reads one response with a Content-Length body (or none) from `socket`; `pending` keeps bytes
// that arrived beyond it. Returns the whole response text, head included, or "" on EOF. A response
// to HEAD has no body whatever its Content-Length says.
inline net::awaitable<std::string> read_one_response(tcp::socket& socket, std::string& pending,
                                                     bool to_head = false) {
  char buffer[4096];
  for (;;) {
    const auto end = pending.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      const auto lower = [](std::string s) {
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
      }(pending.substr(0, end));
      if (auto at = lower.find("content-length:"); at != std::string::npos && !to_head) {
        length = std::stoul(lower.substr(at + 15));
      }
      if (pending.size() >= end + 4 + length) {
        std::string response = pending.substr(0, end + 4 + length);
        pending.erase(0, end + 4 + length);
        co_return response;
      }
    }
    auto [ec, n] = co_await socket.async_read_some(net::buffer(buffer), kUseTuple);
    pending.append(buffer, n);
    if (ec) co_return std::string();
  }
}

inline Url local_url(std::uint16_t port, bool tls = false, const std::string& host = "127.0.0.1") {
  Url url;
  url.tls = tls;
  url.host = host;
  url.port = port;
  return url;
}

}  // namespace e2ee::http::testing

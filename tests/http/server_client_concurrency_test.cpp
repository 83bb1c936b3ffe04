// The HTTP server and the pooled client under concurrent use: an io_context run by four threads,
// many request coroutines on their own strands (as the proxy runs them: a handler calling an
// upstream) sharing one Client, over plain and TLS listeners, with buffered and streamed
// responses, requests abandoned half-way, and a shutdown started from another strand while
// streams are open. Labelled `concurrency`: the tsan preset runs it under ThreadSanitizer.

#include "http/test_support.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>

#include "http/client.hpp"
#include "http/tls.hpp"

namespace e2ee::http {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT: the local helpers

ClientRequest request_to(const Url& origin, std::string method, std::string target, std::string body = {}) {
  ClientRequest request;
  request.origin = origin;
  request.method = std::move(method);
  request.target = std::move(target);
  request.body = std::move(body);
  return request;
}

// /echo answers the body; /stream sends it back in five chunks; /hold streams one chunk, then
// nothing until its client leaves or the server shuts down.
net::awaitable<void> handle(Request& request, ResponseWriter& writer) {
  if (request.path == "/echo") {
    Response response;
    response.body = request.body;
    auto sent = co_await writer.send(std::move(response));
    (void)sent;
  } else if (request.path == "/stream") {
    auto started = co_await writer.start_stream(200, {});
    if (!started) co_return;
    for (int i = 0; i < 5; ++i) {
      auto written = co_await writer.write(request.body);
      if (!written) co_return;
      co_await sleep_for(1ms);
    }
    auto finished = co_await writer.finish();
    (void)finished;
  } else {
    auto started = co_await writer.start_stream(200, {});
    if (!started) co_return;
    auto written = co_await writer.write("first;");
    if (!written) co_return;
    std::atomic<bool> gone{false};
    writer.on_client_gone([&gone] { gone = true; });
    for (int i = 0; i < 3000 && !gone.load(); ++i) {
      co_await sleep_for(10ms);
      auto more = co_await writer.write(" ");  // fails once the server closed the connection
      if (!more) co_return;
    }
    auto finished = co_await writer.finish();
    (void)finished;
  }
}

// A self-signed identity for 127.0.0.1, trusted by the client through a CA file.
class Tls {
 public:
  Tls() {
    auto pem = generate_self_signed("localhost");
    EXPECT_TRUE(pem);
    auto server = TlsServerContext::from_pem(*pem);
    EXPECT_TRUE(server);
    server_ = *server;
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("e2ee-http-concurrency-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "ca.pem") << pem->certificate_chain_pem;
    auto client = TlsClientContext::create(TlsClientOptions{{dir_ / "ca.pem"}, true});
    EXPECT_TRUE(client);
    client_ = *client;
  }
  ~Tls() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::shared_ptr<const TlsServerContext> server() const { return server_; }
  std::shared_ptr<const TlsClientContext> client() const { return client_; }

 private:
  std::shared_ptr<const TlsServerContext> server_;
  std::shared_ptr<const TlsClientContext> client_;
  fs::path dir_;
};

struct Counts {
  std::atomic<int> good{0};
  std::atomic<int> bad{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> finished{0};
};

// One task: `n` requests to `origin` through the shared client, alternating buffered echoes and
// streamed answers; every fifth one is abandoned (CancelToken) while it waits.
// (`origin` by reference: GCC 12 mishandles by-value class parameters of coroutines initialised
// from temporaries; the caller's URLs outlive the task.)
net::awaitable<void> task(Client& client, const Url& origin, int id, int n, Counts& counts) {
  for (int i = 0; i < n; ++i) {
    const std::string body = std::to_string(id) + "-" + std::to_string(i) + ";";
    if (i % 5 == 4) {
      ClientRequest request = request_to(origin, "GET", "/hold");
      auto token = std::make_shared<CancelToken>();
      request.cancel = token;
      auto stream = co_await client.open(std::move(request));
      if (!stream) {
        ++counts.bad;
        continue;
      }
      auto first = co_await (*stream)->read_some();
      if (!first || first->find("first;") == std::string::npos) ++counts.bad;
      net::steady_timer later(co_await net::this_coro::executor, 5ms);
      later.async_wait([token](const boost::system::error_code&) { token->cancel(); });  // on this strand
      auto rest = co_await (*stream)->read_all();
      if (!rest && rest.error().code == Errc::cancelled) ++counts.cancelled;
      else ++counts.bad;
    } else if (i % 2 == 0) {
      auto response = co_await client.send(request_to(origin, "POST", "/echo", body));
      if (response && response->status == 200 && response->body == body) ++counts.good;
      else ++counts.bad;
    } else {
      auto stream = co_await client.open(request_to(origin, "POST", "/stream", body));
      if (!stream) {
        ++counts.bad;
        continue;
      }
      std::string got;
      for (;;) {
        auto piece = co_await (*stream)->read_some();
        if (!piece || piece->empty()) break;
        got += *piece;
      }
      if (got == body + body + body + body + body) ++counts.good;
      else ++counts.bad;
    }
  }
  ++counts.finished;
}

TEST(HttpConcurrency, ManyStrandsShareOneClientOverPlainAndTls) {
  net::io_context ioc(4);
  Tls tls;
  Server server(ioc.get_executor(), handle);
  const Url plain = listen_local(server);
  const Url secure = listen_local(server, tls.server());
  ClientOptions options;
  options.tls = tls.client();
  Client client(ioc.get_executor(), options);
  constexpr int kTasks = 32;
  constexpr int kRequests = 15;
  Counts counts;
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int t = 0; t < kTasks; ++t)
          net::co_spawn(net::make_strand(ex), task(client, t % 2 == 0 ? plain : secure, t, kRequests, counts), net::detached);
        for (int i = 0; i < 12000 && counts.finished.load() < kTasks; ++i) co_await sleep_for(10ms);
        co_await server.shutdown(200ms);
      },
      /*threads=*/4, /*limit=*/std::chrono::seconds(180));
  ASSERT_EQ(counts.finished.load(), kTasks);
  EXPECT_EQ(counts.bad.load(), 0);
  EXPECT_EQ(counts.cancelled.load(), kTasks * (kRequests / 5));
  EXPECT_EQ(counts.good.load(), kTasks * (kRequests - kRequests / 5));
  // Keep-alive reuse held under concurrency: far fewer connections than requests (a cancelled
  // request's connection is closed, so each task opens a few).
  EXPECT_LT(client.connections_opened(), static_cast<std::size_t>(kTasks * kRequests / 2));
  EXPECT_EQ(server.open_connections(), 0u);
}

// A shutdown begun on another strand while 24 streams are open: it returns, every stream ends
// (cut or finished), and no connection is left once the handlers have noticed.
TEST(HttpConcurrency, ShutdownFromAnotherStrandEndsOpenStreams) {
  net::io_context ioc(4);
  Server server(ioc.get_executor(), handle);
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  constexpr int kStreams = 24;
  std::atomic<int> opened{0};
  std::atomic<int> ended{0};
  std::atomic<bool> shutdown_returned{false};
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        for (int s = 0; s < kStreams; ++s) {
          net::co_spawn(
              net::make_strand(ex),
              [&]() -> net::awaitable<void> {
                auto stream = co_await client.open(request_to(url, "GET", "/hold"));
                if (stream) {
                  ++opened;
                  for (;;) {
                    auto piece = co_await (*stream)->read_some();
                    if (!piece || piece->empty()) break;
                  }
                }
                ++ended;
              },
              net::detached);
        }
        for (int i = 0; i < 3000 && opened.load() < kStreams; ++i) co_await sleep_for(10ms);
        net::co_spawn(
            net::make_strand(ex),
            [&]() -> net::awaitable<void> {
              co_await server.shutdown(100ms);
              shutdown_returned = true;
            },
            net::detached);
        for (int i = 0; i < 3000 && (ended.load() < kStreams || !shutdown_returned.load()); ++i) co_await sleep_for(10ms);
        // Handlers still running when the sockets closed end at their next write.
        for (int i = 0; i < 3000 && server.open_connections() > 0; ++i) co_await sleep_for(10ms);
      },
      /*threads=*/4, /*limit=*/std::chrono::seconds(120));
  EXPECT_EQ(opened.load(), kStreams);
  EXPECT_EQ(ended.load(), kStreams);
  EXPECT_TRUE(shutdown_returned.load());
  EXPECT_EQ(server.open_connections(), 0u);
}

}  // namespace
}  // namespace e2ee::http

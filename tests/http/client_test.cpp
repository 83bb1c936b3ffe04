#include "http/client.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/detached.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "http/server.hpp"
#include "http/sse.hpp"
#include "http/test_support.hpp"
#include "http/tls.hpp"

namespace e2ee::http {
namespace {

using namespace testing;  // NOLINT: the local helpers
namespace fs = std::filesystem;

ClientRequest get(const Url& origin, std::string target = "/") {
  ClientRequest request;
  request.origin = origin;
  request.target = std::move(target);
  return request;
}

ClientRequest post(const Url& origin, std::string target, std::string body) {
  ClientRequest request = get(origin, std::move(target));
  request.method = "POST";
  request.body = std::move(body);
  return request;
}

net::awaitable<void> eventually(const std::function<bool()>& condition) {
  while (!condition()) co_await sleep_for(10ms);
}

// A TLS identity for "localhost" written to a temporary CA file, as a user would pass it.
class TlsFixture {
 public:
  explicit TlsFixture(const std::string& domain = "localhost") {
    auto pem = generate_self_signed(domain);
    EXPECT_TRUE(pem);
    pem_ = *pem;
    auto context = TlsServerContext::from_pem(pem_);
    EXPECT_TRUE(context);
    server_ = *context;
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("e2ee-client-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(dir_);
    std::ofstream(ca_file()) << pem_.certificate_chain_pem;
  }
  ~TlsFixture() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path ca_file() const { return dir_ / "ca.pem"; }
  std::shared_ptr<const TlsServerContext> server() const { return server_; }
  std::shared_ptr<const TlsClientContext> trusting() const {
    auto context = TlsClientContext::create(TlsClientOptions{{ca_file()}, true});
    EXPECT_TRUE(context) << (context ? "" : context.error().message);
    return context ? *context : nullptr;
  }
  static std::shared_ptr<const TlsClientContext> system_only() {
    auto context = TlsClientContext::create(TlsClientOptions{});
    EXPECT_TRUE(context);
    return context ? *context : nullptr;
  }

 private:
  PemCertificate pem_;
  std::shared_ptr<const TlsServerContext> server_;
  fs::path dir_;
};

// A server written byte by byte in the test, for what our own server never does (stale
// connections, truncated bodies, interim responses). `script` runs once per accepted connection.
class ScriptedServer {
 public:
  using Script = std::function<net::awaitable<void>(tcp::socket&, int connection_index)>;
  ScriptedServer(net::io_context& ioc, Script script)
      : acceptor_(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)), script_(std::move(script)) {
    net::co_spawn(ioc, accept_loop(), net::detached);
  }
  Url url() const { return local_url(acceptor_.local_endpoint().port()); }
  int accepted() const { return accepted_; }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
      if (ec) co_return;
      const int index = accepted_++;
      net::co_spawn(
          acceptor_.get_executor(),
          [this, index, s = std::make_shared<tcp::socket>(std::move(socket))]() -> net::awaitable<void> {
            co_await script_(*s, index);
          },
          net::detached);
    }
  }
  tcp::acceptor acceptor_;
  Script script_;
  int accepted_ = 0;
};

// Reads one request (head plus Content-Length body); "" when the client closed first.
net::awaitable<std::string> read_request(tcp::socket& socket, std::string& pending) {
  char buffer[4096];
  for (;;) {
    const auto end = pending.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      if (auto at = pending.find("Content-Length: "); at != std::string::npos && at < end) {
        length = std::stoul(pending.substr(at + 16));
      }
      if (pending.size() >= end + 4 + length) {
        std::string request = pending.substr(0, end + 4 + length);
        pending.erase(0, end + 4 + length);
        co_return request;
      }
    }
    auto [ec, n] = co_await socket.async_read_some(net::buffer(buffer), kUseTuple);
    pending.append(buffer, n);
    if (ec) co_return std::string();
  }
}

TEST(Client, StreamsEachChunkBeforeTheNextIsWritten) {
  for (const bool tls : {false, true}) {
    SCOPED_TRACE(tls ? "https" : "http");
    net::io_context ioc;
    TlsFixture identity;
    Signal received(ioc.get_executor());
    int written = 0;
    // The handler writes event i only after the client has received event i-1. If anything
    // between them buffered (our writer, the client's reader), this would wait forever.
    Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
      Headers headers;
      headers.set("Content-Type", "text/event-stream");
      co_await writer.start_stream(200, std::move(headers));
      for (int i = 0; i < 5; ++i) {
        co_await received.wait_for(i);
        ++written;  // before the write: the client may see the event before this coroutine resumes
        auto status = co_await writer.write(format_sse("{\"n\":" + std::to_string(i) + "}"));
        EXPECT_TRUE(status);
      }
      co_await received.wait_for(5);
      co_await writer.write(format_sse("[DONE]"));
      co_await writer.finish();
    });
    const Url url = listen_local(server, tls ? identity.server() : nullptr);
    ClientOptions options;
    options.tls = identity.trusting();
    options.read_timeout = 20s;  // a buffering bug shows up as this timeout, not as a hang
    Client client(ioc.get_executor(), options);
    run(ioc, [&]() -> net::awaitable<void> {
      auto stream = co_await client.open(get(url, "/v1/chat/completions"));
      CO_ASSERT_TRUE(stream) << stream.error().message;
      EXPECT_EQ((*stream)->status(), 200);
      EXPECT_EQ((*stream)->headers().get("content-type"), "text/event-stream");
      SseParser parser;
      std::vector<SseEvent> events;
      for (;;) {
        auto piece = co_await (*stream)->read_some();
        CO_ASSERT_TRUE(piece) << piece.error().message;
        if (piece->empty()) break;
        const std::size_t before = events.size();
        CO_ASSERT_TRUE(parser.feed(*piece, events));
        for (std::size_t i = before; i < events.size(); ++i) {
          // Each event arrives while the server has written exactly that many.
          if (events[i].data != "[DONE]") {
            EXPECT_EQ(written, static_cast<int>(i) + 1);
            EXPECT_EQ(events[i].data, "{\"n\":" + std::to_string(i) + "}");
          }
          received.notify();
        }
      }
      CO_ASSERT_EQ(events.size(), 6u);
      EXPECT_EQ(events.back().data, "[DONE]");
    });
  }
}

TEST(Client, ReusesOneConnectionForSequentialRequests) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    if (request.path == "/stream") {
      co_await writer.start_stream(200, {});
      co_await writer.write("a");
      co_await writer.write("b");
      co_await writer.finish();
    } else {
      co_await writer.send(reply(200, request.method + ":" + request.body));
    }
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 10; ++i) {
      if (i % 3 == 2) {
        auto stream = co_await client.open(get(url, "/stream"));
        CO_ASSERT_TRUE(stream) << stream.error().message;
        auto body = co_await (*stream)->read_all();
        CO_ASSERT_TRUE(body) << body.error().message;
        EXPECT_EQ(*body, "ab");
      } else {
        auto response = co_await client.send(post(url, "/", std::to_string(i)));
        CO_ASSERT_TRUE(response) << response.error().message;
        EXPECT_EQ(response->body, "POST:" + std::to_string(i));
      }
    }
    // HEAD has no body whatever its Content-Length says, and leaves the connection usable.
    ClientRequest head = get(url, "/");
    head.method = "HEAD";
    auto response = co_await client.send(head);
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->body, "");
    EXPECT_EQ(response->headers.get("Content-Length"), "5");  // "HEAD:"
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(server.open_connections(), 1u);
  });
}

TEST(Client, PoolLimitsApply) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.send(reply(200, "ok"));
  });
  const Url url = listen_local(server);
  ClientOptions no_ttl;
  no_ttl.idle_ttl = std::chrono::seconds(0);  // every idle connection has expired by the next use
  Client expiring(ioc.get_executor(), no_ttl);
  ClientOptions no_pool;
  no_pool.max_idle_per_origin = 0;
  Client unpooled(ioc.get_executor(), no_pool);
  run(ioc, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(co_await expiring.send(get(url)));
      EXPECT_TRUE(co_await unpooled.send(get(url)));
    }
    EXPECT_EQ(expiring.connections_opened(), 3u);
    EXPECT_EQ(unpooled.connections_opened(), 3u);
    // Nothing is kept open on their behalf.
    co_await eventually([&] { return server.open_connections() == 0; });
  });
}

TEST(Client, NoticesThatTheServerClosedAnIdleConnection) {
  net::io_context ioc;
  ServerLimits limits;
  limits.idle_timeout = std::chrono::seconds(1);
  Server server(
      ioc.get_executor(),
      [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
        co_await writer.send(reply(200, request.body));
      },
      limits);
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto first = co_await client.send(post(url, "/", "one"));
    CO_ASSERT_TRUE(first) << first.error().message;
    co_await eventually([&] { return server.open_connections() == 0; });  // the server's idle timeout
    // A POST is never replayed, so this succeeds only because the dead connection was noticed
    // before the request went out on it.
    auto second = co_await client.send(post(url, "/", "two"));
    CO_ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->body, "two");
    EXPECT_EQ(client.connections_opened(), 2u);
  });
}

// Connection 0 answers its first request and then, on the second, reads it and closes without a
// word: the race where the server times a keep-alive connection out just as a request goes out.
// Later connections answer normally. Counts every request that reached the server.
struct StaleAfterOne {
  int requests = 0;
  ScriptedServer::Script script() {
    return [this](tcp::socket& socket, int index) -> net::awaitable<void> {
      std::string pending;
      for (int n = 0;; ++n) {
        const std::string request = co_await read_request(socket, pending);
        if (request.empty()) co_return;
        ++requests;
        if (index == 0 && n == 1) {
          socket.close();
          co_return;
        }
        co_await write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      }
    };
  }
};

TEST(Client, RetriesAnIdempotentRequestOnceWhenAReusedConnectionDies) {
  net::io_context ioc;
  StaleAfterOne behaviour;
  ScriptedServer server(ioc, behaviour.script());
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    EXPECT_TRUE(co_await client.send(get(server.url())));
    auto second = co_await client.send(get(server.url()));
    CO_ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(second->body, "ok");
    EXPECT_EQ(behaviour.requests, 3);  // first, the lost one, and its retry
    EXPECT_EQ(client.connections_opened(), 2u);
  });
}

TEST(Client, NeverReplaysAPostThatMayHaveBeenProcessed) {
  net::io_context ioc;
  StaleAfterOne behaviour;
  ScriptedServer server(ioc, behaviour.script());
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    EXPECT_TRUE(co_await client.send(post(server.url(), "/e2e/invoke", "nonce-1")));
    auto second = co_await client.send(post(server.url(), "/e2e/invoke", "nonce-2"));
    CO_ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, Errc::not_answered) << "distinct, so callers can resend with fresh nonces";
    EXPECT_TRUE(Contains(second.error().message, "not replayed")) << second.error().message;
    EXPECT_EQ(behaviour.requests, 2);
    EXPECT_EQ(client.connections_opened(), 1u);
    // The pool does not hand out the dead connection again.
    auto third = co_await client.send(post(server.url(), "/e2e/invoke", "nonce-3"));
    EXPECT_TRUE(third);
  });
}

TEST(Client, SkipsInterimResponses) {
  net::io_context ioc;
  ScriptedServer server(ioc, [](tcp::socket& socket, int) -> net::awaitable<void> {
    std::string pending;
    if ((co_await read_request(socket, pending)).empty()) co_return;
    co_await write_raw(socket,
                       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                       "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    co_await read_request(socket, pending);
  });
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(server.url()));
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status, 201);
    EXPECT_EQ(response->body, "ok");
  });
}

TEST(Client, ReadSomeReturnsEveryChunkAlreadyReceived) {
  // A burst of chunks that arrived together comes back from one read_some(), including the part
  // of a chunk that has arrived so far; the rest follows on the next read. Beast alone returns
  // one chunk per read, which cost the stream relay a write per chunk downstream.
  net::io_context ioc;
  ScriptedServer server(ioc, [](tcp::socket& socket, int) -> net::awaitable<void> {
    std::string pending;
    if ((co_await read_request(socket, pending)).empty()) co_return;
    co_await write_raw(socket,
                       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1\r\na\r\n2\r\nbc\r\n4\r\nde");
    co_await sleep_for(100ms);
    co_await write_raw(socket, "fg\r\n1\r\nh\r\n0\r\n\r\n");
    co_await read_request(socket, pending);
  });
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto stream = co_await client.open(get(server.url()));
    CO_ASSERT_TRUE(stream) << stream.error().message;
    auto first = co_await (*stream)->read_some();
    CO_ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, "abcde");
    auto second = co_await (*stream)->read_some();
    CO_ASSERT_TRUE(second) << second.error().message;
    EXPECT_EQ(*second, "fgh");
    auto end = co_await (*stream)->read_some();
    CO_ASSERT_TRUE(end) << end.error().message;
    EXPECT_EQ(*end, "");
  });
}

TEST(Client, ReportsTruncatedBodiesAsProtocolErrors) {
  net::io_context ioc;
  ScriptedServer server(ioc, [](tcp::socket& socket, int index) -> net::awaitable<void> {
    std::string pending;
    if ((co_await read_request(socket, pending)).empty()) co_return;
    if (index == 0) {
      co_await write_raw(socket, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    } else if (index == 1) {
      co_await write_raw(socket, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
    } else {
      co_await write_raw(socket, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n");
    }
    socket.close();
  });
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto chunked = co_await client.open(get(server.url()));
    CO_ASSERT_TRUE(chunked) << chunked.error().message;
    auto first = co_await (*chunked)->read_some();
    CO_ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, "hello");  // what did arrive is delivered
    auto rest = co_await (*chunked)->read_some();
    CO_ASSERT_FALSE(rest);
    EXPECT_EQ(rest.error().code, Errc::protocol);
    EXPECT_TRUE(Contains(rest.error().message, "ended early")) << rest.error().message;
    auto again = co_await (*chunked)->read_some();  // the error sticks
    EXPECT_FALSE(again);

    auto sized = co_await client.send(get(server.url()));
    CO_ASSERT_FALSE(sized);
    EXPECT_EQ(sized.error().code, Errc::protocol);

    auto malformed = co_await client.send(get(server.url()));
    CO_ASSERT_FALSE(malformed);
    EXPECT_EQ(malformed.error().code, Errc::protocol);
    EXPECT_TRUE(Contains(malformed.error().message, "malformed")) << malformed.error().message;
  });
}

TEST(Client, EnforcesTheBufferedBodyLimit) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.send(reply(200, std::string(100, 'x')));
  });
  const Url url = listen_local(server);
  ClientOptions options;
  options.max_response_body = 99;
  Client client(ioc.get_executor(), options);
  ClientOptions roomy;
  roomy.max_response_body = 100;
  Client enough(ioc.get_executor(), roomy);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(url));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::limit_exceeded);
    auto fits = co_await enough.send(get(url));
    CO_ASSERT_TRUE(fits) << fits.error().message;
    EXPECT_EQ(fits->body.size(), 100u);
  });
}

TEST(Client, TimesOutWhenTheServerStalls) {
  net::io_context ioc;
  Signal never(ioc.get_executor());
  Server server(ioc.get_executor(), [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    if (request.path == "/mid-body") {
      co_await writer.start_stream(200, {});
      co_await writer.write("first");
    }
    co_await never.wait_for(1);
  });
  const Url url = listen_local(server);
  ClientOptions options;
  options.read_timeout = 300ms;
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(url, "/before-head"));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::timeout) << response.error().message;

    auto stream = co_await client.open(get(url, "/mid-body"));
    CO_ASSERT_TRUE(stream) << stream.error().message;
    auto first = co_await (*stream)->read_some();
    CO_ASSERT_TRUE(first) << first.error().message;
    EXPECT_EQ(*first, "first");
    auto stalled = co_await (*stream)->read_some();
    CO_ASSERT_FALSE(stalled);
    EXPECT_EQ(stalled.error().code, Errc::timeout) << stalled.error().message;
  });
}

TEST(Client, ClosesTheConnectionWhenAStreamIsDroppedEarly) {
  net::io_context ioc;
  Signal handler_done(ioc.get_executor());
  std::optional<Status> failed_write;
  Server server(ioc.get_executor(), [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    if (request.path != "/endless") {
      co_await writer.send(reply(200, "short"));
      co_return;
    }
    co_await writer.start_stream(200, {});
    // Keep writing until the client's departure shows up as a failed write.
    for (int i = 0; i < 2000; ++i) {
      auto status = co_await writer.write(std::string(1024, 'x'));
      if (!status) {
        failed_write = status;
        break;
      }
      co_await sleep_for(5ms);
    }
    handler_done.notify();
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    {
      auto stream = co_await client.open(get(url, "/endless"));
      CO_ASSERT_TRUE(stream) << stream.error().message;
      auto piece = co_await (*stream)->read_some();
      CO_ASSERT_TRUE(piece) << piece.error().message;
      EXPECT_FALSE(piece->empty());
    }  // dropped mid-body
    co_await handler_done.wait_for(1);
    CO_ASSERT_TRUE(failed_write.has_value()) << "the server never noticed the client leaving";
    EXPECT_EQ(failed_write->error().code, Errc::cancelled);
    // The abandoned connection was not pooled: the next request needs a new one.
    auto next = co_await client.send(get(url, "/short"));
    CO_ASSERT_TRUE(next) << next.error().message;
    EXPECT_EQ(client.connections_opened(), 2u);
  });
}

TEST(Client, ReportsRefusedConnectionsAsUnavailable) {
  net::io_context ioc;
  std::uint16_t port = 0;
  {
    tcp::acceptor probe(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed again: nothing listens there now
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(local_url(port)));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::unavailable);
    EXPECT_TRUE(Contains(response.error().message, "connect to 127.0.0.1:" + std::to_string(port) + " failed"))
        << response.error().message;
    EXPECT_EQ(client.connections_opened(), 0u);
  });
}

TEST(Client, RejectsRequestsItCannotSendSafely) {
  net::io_context ioc;
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    ClientRequest injected = get(local_url(1));
    injected.headers.set("X-Evil", "a\r\nHost: elsewhere");
    auto response = co_await client.send(injected);
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::invalid_argument);

    auto bad_target = co_await client.send(get(local_url(1), "/a b"));
    CO_ASSERT_FALSE(bad_target);
    EXPECT_EQ(bad_target.error().code, Errc::invalid_argument);

    auto no_tls = co_await client.send(get(local_url(1, /*tls=*/true)));
    CO_ASSERT_FALSE(no_tls);
    EXPECT_EQ(no_tls.error().code, Errc::invalid_argument);
    EXPECT_EQ(client.connections_opened(), 0u);
  });
}

TEST(ClientTls, TrustsTheGivenCaAndReportsTlsToTheHandler) {
  net::io_context ioc;
  TlsFixture identity;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    const std::string host(request.headers.get("Host").value_or(""));
    co_await writer.send(reply(200, std::string(request.tls ? "tls " : "plain ") + host));
  });
  const Url by_ip = listen_local(server, identity.server());
  const Url by_name = local_url(by_ip.port, true, "localhost");
  ClientOptions options;
  options.tls = identity.trusting();
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(by_ip));
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->body, "tls 127.0.0.1:" + std::to_string(by_ip.port));
    // By name: SNI and the DNS SAN instead of the IP SAN.
    auto named = co_await client.send(get(by_name));
    CO_ASSERT_TRUE(named) << named.error().message;
    EXPECT_EQ(named->body, "tls localhost:" + std::to_string(by_ip.port));
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(co_await client.send(get(by_ip)));
    EXPECT_EQ(client.connections_opened(), 2u);  // one per origin, each reused
  });
}

TEST(ClientTls, RejectsACertificateItDoesNotTrust) {
  net::io_context ioc;
  TlsFixture identity;
  int handled = 0;
  Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    ++handled;
    co_await writer.send(reply(200, "secret"));
  });
  const Url url = listen_local(server, identity.server());
  ClientOptions options;
  options.tls = TlsFixture::system_only();
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(post(url, "/", "prompt"));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::protocol);
    EXPECT_TRUE(Contains(response.error().message, "TLS certificate of 127.0.0.1:")) << response.error().message;
    EXPECT_TRUE(Contains(response.error().message, "self-signed")) << response.error().message;
    EXPECT_EQ(handled, 0);
  });
}

TEST(ClientTls, RejectsAHostnameTheCertificateDoesNotName) {
  net::io_context ioc;
  TlsFixture identity("service.example");  // SANs: service.example, localhost, 127.0.0.1
  Server server(ioc.get_executor(), [](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.send(reply(200, "ok"));
  });
  // 127.0.0.2 is loopback too on Linux, but not in the certificate.
  const Url url = listen_local(server, identity.server(), "127.0.0.2");
  ClientOptions options;
  options.tls = identity.trusting();
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(url));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::protocol);
    EXPECT_TRUE(Contains(response.error().message, "mismatch")) << response.error().message;
  });
}

TEST(ClientTls, HonoursSslCertFile) {
  net::io_context ioc;
  TlsFixture identity;
  Server server(ioc.get_executor(), [](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.send(reply(200, "ok"));
  });
  const Url url = listen_local(server, identity.server());
  // OpenSSL reads the variable when the store is loaded, i.e. in TlsClientContext::create().
  ASSERT_EQ(::setenv("SSL_CERT_FILE", identity.ca_file().c_str(), 1), 0);
  auto context = TlsClientContext::create(TlsClientOptions{});
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_TRUE(context) << context.error().message;
  ClientOptions options;
  options.tls = *context;
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(get(url));
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->body, "ok");
  });
}

TEST(ClientTls, TimesOutAServerThatNeverShakesHands) {
  net::io_context ioc;
  ScriptedServer silent(ioc, [](tcp::socket& socket, int) -> net::awaitable<void> {
    co_await read_to_close(socket);  // accepts, reads the ClientHello, never answers
  });
  ClientOptions options;
  options.tls = TlsFixture::system_only();
  options.connect_timeout = 300ms;
  Client client(ioc.get_executor(), options);
  run(ioc, [&]() -> net::awaitable<void> {
    Url url = silent.url();
    url.tls = true;
    auto response = co_await client.send(get(url));
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::timeout) << response.error().message;
    EXPECT_TRUE(Contains(response.error().message, "TLS handshake")) << response.error().message;
  });
}

}  // namespace
}  // namespace e2ee::http

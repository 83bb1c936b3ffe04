#include "http/server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>

#include "http/client.hpp"
#include "http/test_support.hpp"

namespace e2ee::http {
namespace {

using namespace testing;  // NOLINT: the local helpers

// Answers with what it saw, so that tests can check parsing end to end.
net::awaitable<void> echo(Request& request, ResponseWriter& writer) {
  Response response;
  response.headers.set("Content-Type", "text/plain");
  response.headers.set("X-Remote", request.remote_address);
  response.headers.set("X-Tls", request.tls ? "yes" : "no");
  if (auto test = request.headers.get("x-test")) response.headers.set("X-Test-Echo", *test);
  response.body = request.method + " " + request.path + " ?" + request.query + " |" + request.body;
  co_await writer.send(std::move(response));
}

ClientRequest get(const Url& origin, std::string target) {
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

// Waits (bounded by the test's hang guard) until `condition` holds; for state that another
// strand or the kernel changes, where there is no event to wait on.
net::awaitable<void> eventually(const std::function<bool()>& condition) {
  while (!condition()) co_await sleep_for(10ms);
}

TEST(Server, RoundTripsRequestsAndResponses) {
  net::io_context ioc;
  Server server(ioc.get_executor(), echo);
  const Url url = listen_local(server);
  EXPECT_NE(url.port, 0);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    ClientRequest request = get(url, "/a/b?x=1&y=2");
    request.headers.set("X-Test", "value 1");
    auto response = co_await client.send(request);
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, "GET /a/b ?x=1&y=2 |");
    EXPECT_EQ(response->headers.get("x-test-echo"), "value 1");
    EXPECT_EQ(response->headers.get("X-Remote"), "127.0.0.1");
    EXPECT_EQ(response->headers.get("X-Tls"), "no");
    EXPECT_EQ(response->headers.get("Content-Length"), std::to_string(response->body.size()));

    auto posted = co_await client.send(post(url, "/v1/chat/completions", R"({"model":"m"})"));
    CO_ASSERT_TRUE(posted) << posted.error().message;
    EXPECT_EQ(posted->body, R"(POST /v1/chat/completions ? |{"model":"m"})");
  });
}

TEST(Server, KeepsConnectionsAlive) {
  net::io_context ioc;
  Server server(ioc.get_executor(), echo);
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 10; ++i) {
      auto response = co_await client.send(post(url, "/n", std::to_string(i)));
      CO_ASSERT_TRUE(response) << response.error().message;
      EXPECT_EQ(response->body, "POST /n ? |" + std::to_string(i));
      EXPECT_FALSE(response->headers.has("Connection"));
    }
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(server.open_connections(), 1u);
  });
}

TEST(Server, AnswersHeadWithHeadersOnly) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.send(reply(200, request.method == "HEAD" ? "hello" : "world!"));
  });
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    co_await write_raw(socket, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string pending;
    const std::string head = co_await read_one_response(socket, pending, /*to_head=*/true);
    EXPECT_TRUE(Contains(head, "HTTP/1.1 200 OK\r\n"));
    EXPECT_TRUE(Contains(head, "Content-Length: 5\r\n"));
    EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;
    // The next response starts right after the head: no body bytes were sent for HEAD.
    const std::string next = co_await read_one_response(socket, pending);
    EXPECT_TRUE(next.starts_with("HTTP/1.1 200 OK\r\n")) << next;
    EXPECT_TRUE(next.ends_with("\r\n\r\nworld!")) << next;
  });
}

TEST(Server, AnswersAnOversizedHeadWith431) {
  net::io_context ioc;
  ServerLimits limits;
  limits.max_header_bytes = 1024;
  int handled = 0;
  Server server(
      ioc.get_executor(),
      [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
        ++handled;
        co_await echo(request, writer);
      },
      limits);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    // Just under the limit works.
    auto small = co_await connect_raw(url);
    co_await write_raw(small, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(900, 'a') + "\r\n\r\n");
    std::string pending;
    EXPECT_TRUE(Contains(co_await read_one_response(small, pending), "200 OK"));

    auto big = co_await connect_raw(url);
    co_await write_raw(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n");
    const std::string response = co_await read_to_close(big);
    EXPECT_TRUE(response.starts_with("HTTP/1.1 431 ")) << response;
    EXPECT_TRUE(Contains(response, "Connection: close\r\n"));
    EXPECT_TRUE(Contains(response, R"({"error":{"message":"request headers too large","type":"invalid_request_error"}})"));
    EXPECT_EQ(handled, 1);
  });
}

TEST(Server, AnswersAnOversizedBodyWith413) {
  net::io_context ioc;
  ServerLimits limits;
  limits.max_body_bytes = 1000;
  int handled = 0;
  Server server(
      ioc.get_executor(),
      [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
        ++handled;
        co_await echo(request, writer);
      },
      limits);
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  const std::string expected_body =
      R"({"error":{"message":"request body too large","type":"invalid_request_error"}})";
  run(ioc, [&]() -> net::awaitable<void> {
    // Declared length over the limit: answered from the head, the body is never read.
    auto declared = co_await connect_raw(url);
    co_await write_raw(declared, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n" + std::string(1001, 'b'));
    std::string response = co_await read_to_close(declared);
    EXPECT_TRUE(response.starts_with("HTTP/1.1 413 ")) << response;
    EXPECT_TRUE(response.ends_with("\r\n\r\n" + expected_body)) << response;
    EXPECT_TRUE(Contains(response, "Content-Type: application/json\r\n"));

    // Chunked: only counting reveals it.
    auto chunked = co_await connect_raw(url);
    std::string body = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 3; ++i) body += "190\r\n" + std::string(400, 'c') + "\r\n";
    body += "0\r\n\r\n";
    co_await write_raw(chunked, body);
    response = co_await read_to_close(chunked);
    EXPECT_TRUE(response.starts_with("HTTP/1.1 413 ")) << response;

    // Through our client: the 413 arrives as a response, not as a broken connection.
    auto via_client = co_await client.send(post(url, "/", std::string(5000, 'd')));
    CO_ASSERT_TRUE(via_client) << via_client.error().message;
    EXPECT_EQ(via_client->status, 413);
    EXPECT_EQ(via_client->body, expected_body);

    // Exactly at the limit is fine.
    auto at_limit = co_await client.send(post(url, "/", std::string(1000, 'e')));
    CO_ASSERT_TRUE(at_limit) << at_limit.error().message;
    EXPECT_EQ(at_limit->status, 200);
    EXPECT_EQ(handled, 1);
  });
}

TEST(Server, ErrorResponderChoosesTheDialect) {
  net::io_context ioc;
  ServerLimits limits;
  limits.max_body_bytes = 10;
  std::string seen_path = "(none)";
  limits.error_responder = [&](int status, std::string_view message, const Request* head) {
    seen_path = head ? head->path : "(no head)";
    Response response;
    response.status = status;
    response.headers.set("Content-Type", "application/json");
    response.body = R"({"type":"error","error":{"type":"request_too_large","message":")" + std::string(message) + "\"}}";
    return response;
  };
  Server server(ioc.get_executor(), echo, limits);
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto response = co_await client.send(post(url, "/v1/messages?beta=1", std::string(50, 'x')));
    CO_ASSERT_TRUE(response) << response.error().message;
    EXPECT_EQ(response->status, 413);
    EXPECT_EQ(response->body, R"({"type":"error","error":{"type":"request_too_large","message":"request body too large"}})");
    EXPECT_EQ(seen_path, "/v1/messages");
  });
}

TEST(Server, AnswersMalformedRequestsWith400AndCloses) {
  net::io_context ioc;
  Server server(ioc.get_executor(), echo);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    for (const char* bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
                            "GET / HTTP/9.9\r\n\r\n",
                            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"}) {
      auto socket = co_await connect_raw(url);
      co_await write_raw(socket, bad);
      const std::string response = co_await read_to_close(socket);
      EXPECT_TRUE(response.starts_with("HTTP/1.1 400 ")) << bad << " → " << response;
      EXPECT_TRUE(Contains(response, "Connection: close\r\n"));
      EXPECT_TRUE(Contains(response, "malformed HTTP request"));
    }
  });
}

TEST(Server, CutsOffASlowlorisAfterTheHeaderTimeout) {
  net::io_context ioc;
  ServerLimits limits;
  limits.header_timeout = std::chrono::seconds(1);
  limits.idle_timeout = std::chrono::seconds(60);  // must not be what ends it
  Server server(ioc.get_executor(), echo, limits);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    bool closed = false;
    std::string received;
    net::co_spawn(
        socket.get_executor(),
        [&]() -> net::awaitable<void> {
          received = co_await read_to_close(socket);
          closed = true;
        },
        net::detached);
    // One byte every 100 ms of a head that never ends; 300 bytes would take 30 s.
    const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(300, 'z');
    std::size_t sent = 0;
    while (!closed && sent < head.size()) {
      if (!co_await write_raw(socket, head.substr(sent, 1))) break;
      ++sent;
      co_await sleep_for(100ms);
    }
    co_await eventually([&] { return closed; });
    EXPECT_LT(sent, head.size()) << "the server kept the connection for the whole trickle";
    EXPECT_EQ(received, "");  // closed without an answer
    co_await eventually([&] { return server.open_connections() == 0; });
  });
}

TEST(Server, ClosesIdleKeepAliveConnections) {
  net::io_context ioc;
  ServerLimits limits;
  limits.idle_timeout = std::chrono::seconds(1);
  Server server(ioc.get_executor(), echo, limits);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    co_await write_raw(socket, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string pending;
    EXPECT_TRUE(Contains(co_await read_one_response(socket, pending), "GET /1"));
    EXPECT_EQ(server.open_connections(), 1u);
    // Nothing more is sent: the server must end the connection by itself.
    EXPECT_EQ(co_await read_to_close(socket), "");
    co_await eventually([&] { return server.open_connections() == 0; });
  });
}

TEST(Server, HonoursConnectionClose) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    Response response{200, {}, "bye"};
    if (request.path == "/handler-closes") response.headers.set("Connection", "close");
    co_await writer.send(std::move(response));
  });
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    for (const char* request : {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                "GET /handler-closes HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.0\r\n\r\n"}) {
      auto socket = co_await connect_raw(url);
      co_await write_raw(socket, request);
      const std::string response = co_await read_to_close(socket);  // ends only if the server closes
      EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << response;
      EXPECT_TRUE(Contains(response, "Connection: close\r\n"));
      EXPECT_TRUE(response.ends_with("\r\n\r\nbye")) << response;
    }
    // HTTP/1.0 with keep-alive asked for stays open and says so.
    auto socket = co_await connect_raw(url);
    co_await write_raw(socket, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    std::string pending;
    EXPECT_TRUE(Contains(co_await read_one_response(socket, pending), "Connection: keep-alive\r\n"));
    EXPECT_TRUE(Contains(co_await read_one_response(socket, pending), "Connection: close\r\n"));
  });
}

TEST(Server, AnswersPipelinedRequestsInOrder) {
  net::io_context ioc;
  Server server(ioc.get_executor(), echo);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    co_await write_raw(socket,
                       "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /third HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string pending;
    EXPECT_TRUE((co_await read_one_response(socket, pending)).ends_with("GET /first ? |"));
    EXPECT_TRUE((co_await read_one_response(socket, pending)).ends_with("POST /second ? |abc"));
    EXPECT_TRUE((co_await read_one_response(socket, pending)).ends_with("GET /third ? |"));
  });
}

TEST(Server, SendsContinueBeforeReadingTheBody) {
  net::io_context ioc;
  Server server(ioc.get_executor(), echo);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    co_await write_raw(socket, "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    std::string pending;
    // The interim response comes before we send a single body byte.
    while (pending.find("\r\n\r\n") == std::string::npos) {
      char buffer[256];
      auto [ec, n] = co_await socket.async_read_some(net::buffer(buffer), kUseTuple);
      CO_ASSERT_FALSE(ec) << ec.message();
      pending.append(buffer, n);
    }
    EXPECT_TRUE(pending.starts_with("HTTP/1.1 100 Continue\r\n\r\n")) << pending;
    pending.erase(0, 25);
    co_await write_raw(socket, "hello");
    EXPECT_TRUE((co_await read_one_response(socket, pending)).ends_with("POST /e ? |hello"));
  });
}

TEST(Server, HandlerFailuresBecome500OrAClosedConnection) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    if (request.path == "/throw") throw std::runtime_error("boom");
    if (request.path == "/stream-then-throw") {
      co_await writer.start_stream(200, {});
      co_await writer.write("partial");
      throw std::runtime_error("boom");
    }
    if (request.path == "/stream-unfinished") {
      co_await writer.start_stream(200, {});
      co_await writer.write("partial");
      co_return;
    }
    if (request.path == "/bad-header") {
      Response response{200, {}, "x"};
      response.headers.set("X-Evil", "a\r\nSet-Cookie: injected");
      auto sent = co_await writer.send(response);
      EXPECT_FALSE(sent);
      EXPECT_FALSE(writer.started());
      co_return;  // nothing was sent, so the server answers 500
    }
    co_return;  // "/silent": no response at all
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    for (const char* path : {"/throw", "/silent", "/bad-header"}) {
      auto response = co_await client.send(get(url, path));
      CO_ASSERT_TRUE(response) << response.error().message;
      EXPECT_EQ(response->status, 500) << path;
      EXPECT_TRUE(Contains(response->body, R"("type":"server_error")"));
      EXPECT_FALSE(Contains(response->body, "injected"));
    }
    for (const char* path : {"/stream-then-throw", "/stream-unfinished"}) {
      auto stream = co_await client.open(get(url, path));
      CO_ASSERT_TRUE(stream) << stream.error().message;
      EXPECT_EQ((*stream)->status(), 200);
      auto body = co_await (*stream)->read_all();
      CO_ASSERT_FALSE(body) << path;
      EXPECT_EQ(body.error().code, Errc::protocol) << body.error().message;
    }
  });
}

TEST(Server, AtTheLimitANewConnectionReplacesTheLongestIdleOne) {
  net::io_context ioc;
  ServerLimits limits;
  limits.max_connections = 2;
  Server server(ioc.get_executor(), echo, limits);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    std::string pending;
    auto kept_alive = co_await connect_raw(url);  // answered once, then idle
    co_await write_raw(kept_alive, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(Contains(co_await read_one_response(kept_alive, pending), "GET /1"));
    auto silent = co_await connect_raw(url);  // never sends a byte
    co_await eventually([&] { return server.open_connections() == 2; });

    auto newcomer = co_await connect_raw(url);
    co_await write_raw(newcomer, "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(Contains(co_await read_one_response(newcomer, pending), "GET /3")) << "served despite the limit";
    EXPECT_EQ(co_await read_to_close(kept_alive), "") << "the longest-idle connection made room";
    co_await eventually([&] { return server.open_connections() == 2; });

    auto another = co_await connect_raw(url);
    co_await write_raw(another, "GET /4 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(Contains(co_await read_one_response(another, pending), "GET /4"));
    EXPECT_EQ(co_await read_to_close(silent), "") << "a connection that never sent a byte is idle too";
  });
}

TEST(Server, AtTheLimitWithEveryConnectionBusyANewOneIsClosedAtOnce) {
  net::io_context ioc;
  ServerLimits limits;
  limits.max_connections = 1;
  bool release = false;
  Handler hold = [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    while (!release) co_await sleep_for(10ms);
    co_await echo(request, writer);
  };
  Server server(ioc.get_executor(), hold, limits);
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    std::string pending;
    auto busy = co_await connect_raw(url);
    co_await write_raw(busy, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n");
    co_await sleep_for(100ms);  // the request is in the handler now

    auto refused = co_await connect_raw(url);
    co_await write_raw(refused, "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(co_await read_to_close(refused), "");  // closed at once, unanswered
    EXPECT_EQ(server.open_connections(), 1u);

    release = true;
    EXPECT_TRUE(Contains(co_await read_one_response(busy, pending), "GET /1")) << "the busy one was not disturbed";
    busy.close();
    co_await eventually([&] { return server.open_connections() == 0; });
  });
}

TEST(Server, StreamsToHttp10ClientsWithoutChunking) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.start_stream(200, {});
    co_await writer.write("one,");
    co_await writer.write("");  // writes nothing (and must not end the body)
    co_await writer.write("two");
    co_await writer.finish();
  });
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto old = co_await connect_raw(url);
    co_await write_raw(old, "GET / HTTP/1.0\r\n\r\n");
    const std::string response = co_await read_to_close(old);
    EXPECT_FALSE(Contains(response, "Transfer-Encoding"));
    EXPECT_TRUE(response.ends_with("\r\n\r\none,two")) << response;

    auto modern = co_await connect_raw(url);
    co_await write_raw(modern, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string chunked = co_await read_to_close(modern);
    EXPECT_TRUE(Contains(chunked, "Transfer-Encoding: chunked\r\n"));
    EXPECT_TRUE(chunked.ends_with("\r\n\r\n4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n")) << chunked;
  });
}

TEST(Server, ShutdownWaitsForInFlightRequestsThenCloses) {
  net::io_context ioc;
  std::optional<Signal> started;
  std::optional<Signal> release;
  started.emplace(ioc.get_executor());
  release.emplace(ioc.get_executor());
  std::vector<std::string> events;
  Server server(ioc.get_executor(), [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    if (request.path == "/slow") {
      started->notify();
      co_await release->wait_for(1);
      events.push_back("handler answers");
    }
    co_await writer.send(reply(200, "done " + request.path));
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    // An idle keep-alive connection, which shutdown may close at once.
    auto idle = co_await connect_raw(url);
    co_await write_raw(idle, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n");
    std::string pending;
    EXPECT_TRUE(Contains(co_await read_one_response(idle, pending), "done /quick"));

    std::optional<Result<Response>> slow;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
          slow.emplace(co_await client.send(get(url, "/slow")));
          events.push_back("client has response");
        },
        net::detached);
    co_await started->wait_for(1);

    bool shut_down = false;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
          co_await server.shutdown(std::chrono::seconds(30));
          events.push_back("shutdown returned");
          shut_down = true;
        },
        net::detached);

    EXPECT_EQ(co_await read_to_close(idle), "");  // the idle connection goes first
    // No new connections once shutdown has begun.
    co_await eventually([&] {
      tcp::socket probe(ioc);
      boost::system::error_code ec;
      probe.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), url.port), ec);
      return static_cast<bool>(ec);
    });
    EXPECT_FALSE(shut_down);
    EXPECT_EQ(server.open_connections(), 1u);

    release->notify();
    co_await eventually([&] { return shut_down; });
    CO_ASSERT_TRUE(slow.has_value());
    CO_ASSERT_TRUE(*slow) << slow->error().message;
    EXPECT_EQ((*slow)->body, "done /slow");
    EXPECT_EQ((*slow)->headers.get("Connection"), "close");
    EXPECT_EQ(server.open_connections(), 0u);
    CO_ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0], "handler answers");
    EXPECT_EQ(events[2], "shutdown returned");
  });
}

TEST(Server, ShutdownClosesWhatOutlastsTheGrace) {
  net::io_context ioc;
  std::optional<Signal> wrote_first;
  std::optional<Signal> never;
  wrote_first.emplace(ioc.get_executor());
  never.emplace(ioc.get_executor());
  std::optional<Status> late_write;
  Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.start_stream(200, {});
    co_await writer.write("first");
    wrote_first->notify();
    co_await never->wait_for(1);
    late_write = co_await writer.write("too late");
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto stream = co_await client.open(get(url, "/"));
    CO_ASSERT_TRUE(stream) << stream.error().message;
    auto first = co_await (*stream)->read_some();
    CO_ASSERT_TRUE(first);
    EXPECT_EQ(*first, "first");
    co_await wrote_first->wait_for(1);

    co_await server.shutdown(200ms);
    auto rest = co_await (*stream)->read_some();
    CO_ASSERT_FALSE(rest);
    EXPECT_EQ(rest.error().code, Errc::protocol) << rest.error().message;

    never->notify();  // let the handler try again: its connection is gone
    co_await eventually([&] { return late_write.has_value(); });
    CO_ASSERT_FALSE(*late_write);
    EXPECT_EQ(late_write->error().code, Errc::cancelled);
    co_await eventually([&] { return server.open_connections() == 0; });
  });
}

TEST(Server, ServesManyClientsOnSeveralThreads) {
  net::io_context ioc;
  Server server(ioc.get_executor(), [](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
    co_await writer.start_stream(200, {});
    for (int i = 0; i < 3; ++i) co_await writer.write(request.body);
    co_await writer.finish();
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  constexpr int kTasks = 8;
  constexpr int kRequests = 10;
  std::atomic<int> finished{0};
  std::atomic<int> good{0};
  run(
      ioc,
      [&]() -> net::awaitable<void> {
        for (int t = 0; t < kTasks; ++t) {
          // On strands, as server handlers are: a coroutine is then never run on two threads.
          net::co_spawn(
              net::make_strand(ioc),
              [&, t]() -> net::awaitable<void> {
                for (int i = 0; i < kRequests; ++i) {
                  const std::string body = std::to_string(t) + "-" + std::to_string(i) + ";";
                  auto response = co_await client.send(post(url, "/", body));
                  if (response && response->body == body + body + body) ++good;
                }
                ++finished;
              },
              net::detached);
        }
        co_await eventually([&] { return finished.load() == kTasks; });
        EXPECT_EQ(good.load(), kTasks * kRequests);
        // Connections were reused across tasks, never more than one per concurrent task.
        EXPECT_LE(client.connections_opened(), static_cast<std::size_t>(kTasks));
      },
      /*threads=*/4);
}

}  // namespace
}  // namespace e2ee::http

namespace e2ee::http {
namespace {

// A handler waiting on a silent upstream (nothing to write) must still learn that its client left,
// so it can cancel the upstream work; and a client that stays must not trigger the hook.
TEST(Server, TellsAHandlerWhenItsClientLeavesWhileNothingIsWritten) {
  net::io_context ioc;
  bool hook_ran = false;
  bool handler_saw_it = false;
  Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    writer.on_client_gone([&] { hook_ran = true; });
    // The "upstream" stays silent for up to 20 s; the hook must fire long before.
    for (int i = 0; i < 2000 && !hook_ran; ++i) co_await sleep_for(10ms);
    handler_saw_it = hook_ran;
    auto sent = co_await writer.send(reply(200, "late"));
    (void)sent;
  });
  const Url url = listen_local(server);
  run(ioc, [&]() -> net::awaitable<void> {
    auto socket = co_await connect_raw(url);
    CO_ASSERT_TRUE(co_await write_raw(socket, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    co_await sleep_for(100ms);
    socket.close();  // the user gave up
    co_await eventually([&] { return handler_saw_it; });
    EXPECT_TRUE(hook_ran);
  });
}

TEST(Server, DoesNotReportAClientThatStays) {
  net::io_context ioc;
  bool hook_ran = false;
  Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    writer.on_client_gone([&] { hook_ran = true; });
    co_await sleep_for(300ms);
    auto sent = co_await writer.send(reply(200, "done"));
    (void)sent;
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    for (int i = 0; i < 3; ++i) {  // on one keep-alive connection: the watch of one request must not leak into the next
      auto response = co_await client.send(get(url, "/"));
      CO_ASSERT_TRUE(response) << response.error().message;
      EXPECT_EQ(response->body, "done");
    }
    EXPECT_FALSE(hook_ran);
    EXPECT_EQ(client.connections_opened(), 1u);
  });
}

// With `one_thread` the connections run on the context's own executor instead of a strand each
// (the default of both binaries: --threads 1). The same server behaviour must hold: keep-alive,
// pipelining, the client-gone hook, the connection limit's closer (which posts to the connection's
// executor) and a graceful shutdown.
TEST(Server, OnOneThreadConnectionsRunOnThePlainExecutor) {
  for (const bool one_thread : {false, true}) {
    SCOPED_TRACE(one_thread ? "one_thread" : "strand per connection");
    net::io_context ioc(1);
    std::vector<bool> on_strand;
    bool hook_ran = false;
    ServerLimits limits;
    limits.one_thread = one_thread;
    limits.max_connections = 2;
    Server server(
        ioc.get_executor(),
        [&](Request& request, ResponseWriter& writer) -> net::awaitable<void> {
          const auto executor = co_await net::this_coro::executor;
          on_strand.push_back(executor.target<net::strand<net::any_io_executor>>() != nullptr);
          if (request.path == "/gone") {
            writer.on_client_gone([&] { hook_ran = true; });
            for (int i = 0; i < 2000 && !hook_ran; ++i) co_await sleep_for(10ms);
          }
          auto sent = co_await writer.send(reply(200, "done " + request.path));
          (void)sent;
        },
        limits);
    const Url url = listen_local(server);
    run(ioc, [&]() -> net::awaitable<void> {
      std::string pending;
      auto kept_alive = co_await connect_raw(url);
      co_await write_raw(kept_alive, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_TRUE(Contains(co_await read_one_response(kept_alive, pending), "done /1"));
      EXPECT_TRUE(Contains(co_await read_one_response(kept_alive, pending), "done /2")) << "pipelined, in order";

      auto leaving = co_await connect_raw(url);
      co_await write_raw(leaving, "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n");
      co_await eventually([&] { return on_strand.size() == 3; });
      leaving.close();
      co_await eventually([&] { return hook_ran; });
      co_await eventually([&] { return server.open_connections() == 1; });

      // At the limit (2), a newcomer replaces the idle keep-alive connection: the closer runs
      // on that connection's executor.
      auto silent = co_await connect_raw(url);
      co_await eventually([&] { return server.open_connections() == 2; });
      auto newcomer = co_await connect_raw(url);
      co_await write_raw(newcomer, "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_TRUE(Contains(co_await read_one_response(newcomer, pending), "done /3"));
      EXPECT_EQ(co_await read_to_close(kept_alive), "") << "the longest-idle connection made room";

      co_await server.shutdown(std::chrono::seconds(5));
      EXPECT_EQ(co_await read_to_close(newcomer), "");
      EXPECT_EQ(co_await read_to_close(silent), "");
      EXPECT_EQ(server.open_connections(), 0u);
    });
    ASSERT_EQ(on_strand.size(), 4u);
    for (const bool s : on_strand) EXPECT_EQ(s, !one_thread);
  }
}

// A cancelled request fails at once with Errc::cancelled, and the server sees the connection go.
TEST(Client, ACancelTokenAbandonsARequestWaitingForItsResponse) {
  net::io_context ioc;
  bool server_saw_client_leave = false;
  Server server(ioc.get_executor(), [&](Request&, ResponseWriter& writer) -> net::awaitable<void> {
    writer.on_client_gone([&] { server_saw_client_leave = true; });
    for (int i = 0; i < 2000 && !server_saw_client_leave; ++i) co_await sleep_for(10ms);
    auto sent = co_await writer.send(reply(200, "late"));
    (void)sent;
  });
  const Url url = listen_local(server);
  Client client(ioc.get_executor(), ClientOptions{});
  run(ioc, [&]() -> net::awaitable<void> {
    auto token = std::make_shared<CancelToken>();
    ClientRequest request = post(url, "/generate", "{}");
    request.cancel = token;
    net::steady_timer later(co_await net::this_coro::executor);
    later.expires_after(200ms);
    later.async_wait([token](const boost::system::error_code&) { token->cancel(); });
    auto response = co_await client.send(request);
    CO_ASSERT_FALSE(response);
    EXPECT_EQ(response.error().code, Errc::cancelled) << response.error().message;
    co_await eventually([&] { return server_saw_client_leave; });
  });
}

}  // namespace
}  // namespace e2ee::http

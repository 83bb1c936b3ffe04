// e2ee-bench-load: the load generator of bench/run-proxy (docs/performance.md).
//
// Why our own and not wrk: wrk with a Lua script could send the non-stream requests just as
// cheaply, but it cannot time individual SSE chunks, check that every answer is the right one
// (a proxy that answers fast with errors must not look fast), or hold 1,000 streams open on cue.
// One tool for every path keeps the request bytes and the timing identical across paths.
//
// It has to stay cheap, because on this 2-core machine it competes with the processes it
// measures: one thread, one keep-alive connection per concurrent client, requests built once,
// responses parsed in place (status line, Content-Length or chunked framing, SSE events scanned
// for the engine's stamps, no JSON parsing). It reports its own CPU time so the cost is visible.
//
// Per-chunk latency: e2ee-bench-engine --bench writes, as each chunk's content, "@" and its
// CLOCK_MONOTONIC time in ns just before writing the chunk. This process reads the same clock
// when a read returns, so latency = receive time - stamp, exact to the microsecond, whatever
// the proxies did to the framing (re-chunking, re-encryption) in between.
//
//   e2ee-bench-load --url http://127.0.0.1:8080 --body 1k --concurrency 64 --warmup 1 --duration 5
//                                                    # closed loop; JSON summary on stdout
//   … --stream --chunks 1000 --interval-us 1000     # streams; chunk latency from the stamps
//   … --requests 20000                              # stop after N answers instead of a duration
//   … --hold 1000 --stream --chunks 150 --interval-us 100000
//                                                    # open 1,000 streams at once; prints "ready"
//                                                    # on stderr when every one has a chunk

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cstring>
#include <functional>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/cli.hpp"
#include "http/url.hpp"
#include "sample_prompt.hpp"

namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using e2ee::http::Url;

namespace {

constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Options {
  Url url;
  std::string body_kind = "1k";
  std::string model = "bench/model";
  std::string api_key = "bench-key";
  bool stream = false;
  std::size_t concurrency = 1;
  double warmup_s = 0;
  double duration_s = 5;
  std::uint64_t requests = 0;     // stop after this many answers (0: run for duration_s)
  std::size_t chunks = 1000;      // stream: content chunks the engine is asked for (max_tokens)
  std::int64_t interval_us = 0;   // stream: the engine's pace between chunks
  std::string expect = "";        // non-stream: text every answer must contain
  std::size_t hold = 0;           // hold mode: open this many streams at once
};

// The request bytes, built once: head and body in one buffer, so one write sends them.
std::string build_request(const Options& o) {
  std::string body;
  if (o.body_kind == "1k") {
    body = e2ee::bench::sample_chat_prompt(1024, 2);  // the crypto benchmark's 1 KB request
  } else if (o.body_kind == "450k") {
    body = e2ee::bench::sample_chat_prompt(e2ee::bench::kLargePromptBytes, 1);
  } else {
    throw std::runtime_error("--body must be 1k or 450k");
  }
  json::value doc = json::parse(body);
  auto& obj = doc.as_object();
  obj["model"] = o.model;
  obj["stream"] = o.stream;
  obj["max_tokens"] = static_cast<std::int64_t>(o.chunks);
  if (o.stream) obj["bench_chunk_interval_us"] = o.interval_us;
  body = json::serialize(doc);
  std::string head = "POST " + o.url.target("/v1/chat/completions") + " HTTP/1.1\r\nHost: " + o.url.host_header() +
                     "\r\nContent-Type: application/json\r\nAccept: " +
                     (o.stream ? "text/event-stream" : "application/json") + "\r\nAuthorization: Bearer " + o.api_key +
                     "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  return head + body;
}

// Everything measured, in this one thread.
struct Stats {
  std::vector<std::int64_t> latency_ns;      // whole request, answers completed in the window
  std::vector<std::int64_t> first_chunk_ns;  // stream: request start → first content chunk (in the window)
  std::vector<std::int64_t> chunk_ns;        // stream: engine stamp → received
  std::uint64_t completed = 0;               // answers completed in the window
  std::uint64_t completed_total = 0;         // including warm-up and drain
  std::uint64_t chunks = 0;                  // stamped chunks received in the window
  std::uint64_t chunks_total = 0;            // including warm-up
  std::uint64_t cut = 0;                     // requests in flight when the run was cut short
  std::uint64_t errors = 0;
  std::uint64_t connects = 0;
  std::uint64_t bytes_in = 0;
  std::vector<std::string> error_samples;

  void error(std::string what) {
    ++errors;
    if (error_samples.size() < 5) error_samples.push_back(std::move(what));
  }
};

struct Run {
  Options options;
  std::string request;
  tcp::endpoint endpoint;
  std::int64_t window_start = 0;  // ns; answers before this are warm-up
  std::int64_t window_end = 0;    // ns; 0 while running open-ended (--requests)
  bool stopping = false;  // no new requests
  bool cutting = false;   // in-flight requests are being abandoned
  std::size_t active = 0; // clients still running
  Stats stats;
  std::vector<std::shared_ptr<tcp::socket>> sockets;  // to cut in-flight requests at the end
  // hold mode
  std::size_t streams_with_chunk = 0;
  bool announced = false;

  bool in_window(std::int64_t t) const { return t >= window_start && (window_end == 0 || t < window_end); }
};

// An HTTP/1.1 response read in place: head, then Content-Length or chunked body. The decoded
// body is handed to `on_body` piece by piece (for streams) or collected (otherwise).
class ResponseReader {
 public:
  enum class Result { more, done, bad };

  void reset() {
    state_ = State::head;
    status_ = 0;
    content_length_ = -1;
    chunked_ = false;
    close_ = false;
    chunk_left_ = 0;
  }

  // Consumes what it can from `buf` (starting at `pos`), calling on_body(decoded bytes).
  template <class OnBody>
  Result feed(std::string_view buf, std::size_t& pos, OnBody&& on_body) {
    for (;;) {
      switch (state_) {
        case State::head: {
          const auto end = buf.find("\r\n\r\n", pos);
          if (end == std::string::npos) return Result::more;
          if (!parse_head(buf.substr(pos, end + 4 - pos))) return Result::bad;
          pos = end + 4;
          if (chunked_) state_ = State::chunk_size;
          else if (content_length_ >= 0) state_ = State::fixed;
          else return Result::bad;  // the servers measured here always frame their bodies
          break;
        }
        case State::fixed: {
          const std::size_t take = std::min<std::size_t>(buf.size() - pos, static_cast<std::size_t>(content_length_));
          if (take > 0) on_body(buf.substr(pos, take));
          pos += take;
          content_length_ -= static_cast<std::int64_t>(take);
          if (content_length_ == 0) return Result::done;
          return Result::more;
        }
        case State::chunk_size: {
          const auto eol = buf.find("\r\n", pos);
          if (eol == std::string::npos) return Result::more;
          std::size_t size = 0;
          const char* b = buf.data() + pos;
          const auto [p, ec] = std::from_chars(b, buf.data() + eol, size, 16);
          if (ec != std::errc() || p == b) return Result::bad;
          pos = eol + 2;
          chunk_left_ = size;
          state_ = size == 0 ? State::trailer : State::chunk_data;
          break;
        }
        case State::chunk_data: {
          const std::size_t take = std::min(buf.size() - pos, chunk_left_);
          if (take > 0) on_body(buf.substr(pos, take));
          pos += take;
          chunk_left_ -= take;
          if (chunk_left_ > 0) return Result::more;
          state_ = State::chunk_crlf;
          break;
        }
        case State::chunk_crlf: {
          if (buf.size() - pos < 2) return Result::more;
          if (buf.substr(pos, 2) != "\r\n") return Result::bad;
          pos += 2;
          state_ = State::chunk_size;
          break;
        }
        case State::trailer: {
          const auto eol = buf.find("\r\n", pos);
          if (eol == std::string::npos) return Result::more;
          const bool empty = eol == pos;
          pos = eol + 2;
          if (empty) return Result::done;
          break;
        }
      }
    }
  }

  int status() const { return status_; }
  bool close() const { return close_; }

 private:
  enum class State { head, fixed, chunk_size, chunk_data, chunk_crlf, trailer };

  static bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  }

  bool parse_head(std::string_view head) {
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") return false;
    const auto [p, ec] = std::from_chars(head.data() + 9, head.data() + 12, status_);
    if (ec != std::errc()) return false;
    std::size_t line = head.find("\r\n") + 2;
    while (line < head.size()) {
      const auto eol = head.find("\r\n", line);
      if (eol == line || eol == std::string_view::npos) break;
      const std::string_view field = head.substr(line, eol - line);
      line = eol + 2;
      const auto colon = field.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = field.substr(0, colon);
      std::string_view value = field.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (iequal(name, "content-length")) {
        std::from_chars(value.data(), value.data() + value.size(), content_length_);
      } else if (iequal(name, "transfer-encoding")) {
        chunked_ = value.find("chunked") != std::string_view::npos;
      } else if (iequal(name, "connection")) {
        close_ = iequal(value, "close");
      }
    }
    return true;
  }

  State state_ = State::head;
  int status_ = 0;
  std::int64_t content_length_ = -1;
  bool chunked_ = false;
  bool close_ = false;
  std::size_t chunk_left_ = 0;
};

// Scans the decoded SSE body of one stream for stamped content chunks and the end marker.
// Content "@<ns>" is what the engine stand-in writes; the JSON around it is not parsed.
struct StreamScan {
  std::string pending;  // bytes after the last complete event
  std::size_t stamped = 0;
  bool done = false;
  std::int64_t first_chunk_at = 0;

  template <class OnStamp>
  void feed(std::string_view bytes, OnStamp&& on_stamp) {
    pending.append(bytes);
    std::size_t start = 0;
    for (;;) {
      const auto end = pending.find("\n\n", start);
      if (end == std::string::npos) break;
      const std::string_view event(pending.data() + start, end - start);
      start = end + 2;
      if (event.find("data: [DONE]") != std::string_view::npos) {
        done = true;
        continue;
      }
      for (auto at = event.find("\":\"@"); at != std::string_view::npos; at = event.find("\":\"@", at + 4)) {
        std::int64_t stamp = 0;
        const char* b = event.data() + at + 4;
        const auto [p, ec] = std::from_chars(b, event.data() + event.size(), stamp);
        if (ec == std::errc() && p != b) {
          ++stamped;
          on_stamp(stamp);
        }
      }
    }
    pending.erase(0, start);
  }
};

// The read buffer of one connection: bytes [pos, len) are unparsed. Not a std::string, whose
// resize() would zero every byte it is about to receive.
class ReadBuffer {
 public:
  static constexpr std::size_t kRead = 64 * 1024;

  // Room for the next read, keeping the unparsed tail.
  net::mutable_buffer prepare() {
    if (pos == len) {
      pos = len = 0;
    } else if (mem_.size() - len < kRead) {
      std::memmove(mem_.data(), mem_.data() + pos, len - pos);
      len -= pos;
      pos = 0;
      if (mem_.size() - len < kRead) mem_.resize(std::max(mem_.size() * 2, len + kRead));
    }
    return net::buffer(mem_.data() + len, kRead);
  }
  std::string_view view() const { return {mem_.data(), len}; }
  void clear() { pos = len = 0; }

  std::size_t pos = 0;
  std::size_t len = 0;

 private:
  struct Mem {
    std::unique_ptr<char[]> p;
    std::size_t n = 0;
    char* data() const { return p.get(); }
    std::size_t size() const { return n; }
    void resize(std::size_t m) {
      std::unique_ptr<char[]> q(new char[m]);
      if (n > 0) std::memcpy(q.get(), p.get(), n);
      p = std::move(q);
      n = m;
    }
  };
  Mem mem_ = [] {
    Mem m;
    m.resize(2 * kRead);
    return m;
  }();
};

net::awaitable<void> pause(std::chrono::milliseconds d) {
  net::steady_timer t(co_await net::this_coro::executor, d);
  co_await t.async_wait(kUseTuple);
}

// One closed-loop client: a keep-alive connection, one request at a time.
net::awaitable<void> client(Run& run, std::size_t index) {
  auto ex = co_await net::this_coro::executor;
  const Options& o = run.options;
  std::shared_ptr<tcp::socket> socket;
  ReadBuffer buf;
  ResponseReader reader;
  std::string body;
  while (!run.stopping) {
    // --requests N: N correct answers, or N failures (a path that fails for good must not spin).
    if (o.requests > 0 && (run.stats.completed_total >= o.requests || run.stats.errors >= o.requests)) break;
    if (!socket || !socket->is_open()) {
      socket = std::make_shared<tcp::socket>(ex);
      run.sockets[index] = socket;
      auto [ec] = co_await socket->async_connect(run.endpoint, kUseTuple);
      if (ec) {
        if (!run.cutting) run.stats.error("connect: " + ec.message());
        socket->close();
        co_await pause(std::chrono::milliseconds(10));
        continue;
      }
      socket->set_option(tcp::no_delay(true));
      ++run.stats.connects;
      buf.clear();
    }
    const std::int64_t started = now_ns();
    auto [wec, wn] = co_await net::async_write(*socket, net::buffer(run.request), kUseTuple);
    if (wec) {
      if (!run.cutting) run.stats.error("write: " + wec.message());
      else ++run.stats.cut;
      socket->close();
      continue;
    }
    reader.reset();
    body.clear();
    StreamScan scan;
    bool ok = true;
    bool counted_hold = false;
    for (;;) {
      auto [rec, rn] = co_await socket->async_read_some(buf.prepare(), kUseTuple);
      buf.len += rn;
      if (rec) {
        if (!run.cutting) run.stats.error("read: " + rec.message());
        else ++run.stats.cut;
        ok = false;
        break;
      }
      const std::int64_t received = now_ns();
      run.stats.bytes_in += rn;
      const auto result = reader.feed(buf.view(), buf.pos, [&](std::string_view piece) {
        if (!o.stream) {
          body.append(piece);
          return;
        }
        scan.feed(piece, [&](std::int64_t stamp) {
          ++run.stats.chunks_total;
          if (scan.first_chunk_at == 0) {
            scan.first_chunk_at = received;
            if (run.in_window(received)) run.stats.first_chunk_ns.push_back(received - started);
          }
          if (run.in_window(received)) {
            ++run.stats.chunks;
            run.stats.chunk_ns.push_back(received - stamp);
          }
        });
      });
      if (o.hold > 0 && !counted_hold && scan.stamped > 0) {
        counted_hold = true;
        if (++run.streams_with_chunk == o.hold && !run.announced) {
          run.announced = true;
          std::fprintf(stderr, "ready %zu streams\n", o.hold);
          std::fflush(stderr);
        }
      }
      if (result == ResponseReader::Result::bad) {
        run.stats.error("malformed HTTP response");
        ok = false;
        break;
      }
      if (result == ResponseReader::Result::done) break;
    }
    if (!ok) {
      socket->close();
      continue;
    }
    const std::int64_t finished = now_ns();
    // Every answer is checked: a fast error must count as an error, not as throughput.
    std::string wrong;
    if (reader.status() != 200) {
      wrong = "HTTP " + std::to_string(reader.status()) + ": " + (o.stream ? scan.pending : body).substr(0, 300);
    } else if (o.stream && !scan.done) {
      wrong = "stream ended without [DONE]";
    } else if (o.stream && scan.stamped != o.chunks) {
      wrong = "stream carried " + std::to_string(scan.stamped) + " stamped chunks, expected " + std::to_string(o.chunks);
    } else if (!o.stream && !o.expect.empty() && body.find(o.expect) == std::string::npos) {
      wrong = "answer lacks the expected text: " + body.substr(0, 300);
    }
    if (!wrong.empty()) {
      run.stats.error(std::move(wrong));
    } else {
      ++run.stats.completed_total;
      if (run.in_window(finished)) {
        ++run.stats.completed;
        run.stats.latency_ns.push_back(finished - started);
      }
    }
    if (reader.close()) socket->close();
    if (o.hold > 0) break;  // hold mode: one stream per client
  }
  if (socket) {
    boost::system::error_code ignored;
    socket->close(ignored);
  }
  --run.active;
}

json::object percentiles(std::vector<std::int64_t>& v) {
  json::object out;
  out["n"] = v.size();
  if (v.empty()) return out;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const auto i = std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())));
    return static_cast<double>(v[i]) / 1e3;  // µs
  };
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  out["mean_us"] = sum / static_cast<double>(v.size()) / 1e3;
  out["p50_us"] = at(0.50);
  out["p90_us"] = at(0.90);
  out["p99_us"] = at(0.99);
  out["max_us"] = static_cast<double>(v.back()) / 1e3;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  e2ee::app::CommandLine cli(
      "e2ee-bench-load",
      "The load generator of bench/run-proxy: closed-loop keep-alive clients sending chat-completion\n"
      "requests, checking every answer, timing requests and (with e2ee-bench-engine --bench) every\n"
      "stream chunk. Prints a JSON summary.",
      {{"--url", "URL", "the server's base URL (http only); requests go to /v1/chat/completions under it", "", false, ""},
       {"--body", "1k|450k", "request body: bench/sample_prompt's 1 KB or 450 KB chat prompt", "", false, "1k"},
       {"--model", "NAME", "the model named in requests", "", false, "bench/model"},
       {"--stream", "", "ask for streams and time their chunks", "", false, ""},
       {"--concurrency", "N", "clients, each with one keep-alive connection", "", false, "1"},
       {"--warmup", "SECONDS", "run this long before measuring", "", false, "0"},
       {"--duration", "SECONDS", "measure this long", "", false, "5"},
       {"--requests", "N", "instead of a duration: stop after N correct answers, or N errors (no warm-up)", "", false, ""},
       {"--chunks", "N", "stream: content chunks to ask for (sent as max_tokens)", "", false, "1000"},
       {"--interval-us", "N", "stream: the engine's pause between chunks (bench_chunk_interval_us)", "", false, "0"},
       {"--drain", "SECONDS", "non-stream: after the window, let requests in flight finish for up to this long",
        "", false, "30"},
       {"--expect", "TEXT", "non-stream: every answer must contain this", "", false, ""},
       {"--hold", "N", "open N streams at once (one per connection), say \"ready\" on stderr when each has "
                       "its first chunk, read them to the end", "", false, ""},
       {"--help", "", "this text", "", false, ""}});
  if (auto error = cli.parse(argc, argv)) {
    std::fprintf(stderr, "e2ee-bench-load: %s\n", error->c_str());
    return 2;
  }
  if (cli.has("--help")) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  Run run;
  Options& o = run.options;
  double drain_s = 30;
  try {
    auto url = Url::parse(cli.value("--url").value_or(""));
    if (!url || url->tls) throw std::runtime_error("--url must be an http:// URL");
    o.url = *url;
    o.body_kind = cli.value("--body").value_or("1k");
    o.model = cli.value("--model").value_or(o.model);
    o.stream = cli.has("--stream");
    o.concurrency = std::stoul(cli.value("--concurrency").value_or("1"));
    o.warmup_s = std::stod(cli.value("--warmup").value_or("0"));
    o.duration_s = std::stod(cli.value("--duration").value_or("5"));
    if (auto v = cli.value("--requests")) o.requests = std::stoull(*v);
    o.chunks = std::stoul(cli.value("--chunks").value_or("1000"));
    o.interval_us = std::stoll(cli.value("--interval-us").value_or("0"));
    o.expect = cli.value("--expect").value_or("");
    drain_s = std::stod(cli.value("--drain").value_or("30"));
    if (auto v = cli.value("--hold")) {
      o.hold = std::stoul(*v);
      o.concurrency = o.hold;
      o.stream = true;
    }
    if (o.concurrency == 0) throw std::runtime_error("--concurrency must be positive");
    run.request = build_request(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "e2ee-bench-load: %s\n", e.what());
    return 2;
  }

  net::io_context ioc(1);
  {
    boost::system::error_code ec;
    tcp::resolver resolver(ioc);
    auto results = resolver.resolve(o.url.host, std::to_string(o.url.port), ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "e2ee-bench-load: cannot resolve %s\n", o.url.host.c_str());
      return 2;
    }
    run.endpoint = results.begin()->endpoint();
  }
  run.sockets.resize(o.concurrency);

  const std::int64_t start = now_ns();
  const bool open_ended = o.requests > 0 || o.hold > 0;
  run.window_start = open_ended ? start : start + static_cast<std::int64_t>(o.warmup_s * 1e9);
  run.window_end = open_ended ? 0 : run.window_start + static_cast<std::int64_t>(o.duration_s * 1e9);

  run.active = o.concurrency;
  for (std::size_t i = 0; i < o.concurrency; ++i) net::co_spawn(ioc, client(run, i), net::detached);

  // CPU of this process over the measured window only, and over the whole run.
  const double cpu_at_start = cpu_seconds();
  double cpu_at_window = open_ended ? cpu_at_start : -1;
  net::steady_timer window_timer(ioc);
  // While draining: once every client has stopped, end the run instead of waiting out the limit.
  net::steady_timer poll_timer(ioc);
  auto drain_poll = [&](auto& self) -> void {
    if (run.active == 0) {
      window_timer.cancel();
      return;
    }
    poll_timer.expires_after(std::chrono::milliseconds(5));
    poll_timer.async_wait([&self](const boost::system::error_code&) { self(self); });
  };
  if (!open_ended) {
    window_timer.expires_after(std::chrono::nanoseconds(run.window_start - start));
    window_timer.async_wait([&](const boost::system::error_code&) {
      cpu_at_window = cpu_seconds();
      window_timer.expires_after(std::chrono::nanoseconds(run.window_end - run.window_start));
      window_timer.async_wait([&](const boost::system::error_code&) {
        run.stopping = true;
        // Non-stream requests in flight are let finish (up to --drain seconds), so that every
        // request the servers worked on is a completed one and CPU per request is exact. Streams
        // are cut at once: their figures are per chunk, and a 1,000-chunk tail would only wait.
        auto cut = [&run] {
          run.cutting = true;
          for (auto& s : run.sockets) {
            boost::system::error_code ignored;
            if (s) s->close(ignored);
          }
        };
        if (o.stream || drain_s <= 0) {
          cut();
          return;
        }
        window_timer.expires_after(std::chrono::milliseconds(static_cast<long>(drain_s * 1000)));
        window_timer.async_wait([cut](const boost::system::error_code&) { cut(); });
        drain_poll(drain_poll);
      });
    });
  }
  ioc.run();
  const double cpu_end = cpu_seconds();
  const double cpu = cpu_end - cpu_at_window;
  const std::int64_t end = open_ended ? now_ns() : run.window_end;
  const double window_s = static_cast<double>(end - run.window_start) / 1e9;

  Stats& s = run.stats;
  json::object out;
  out["path_url"] = o.url.origin();
  out["body"] = o.body_kind;
  out["request_bytes"] = run.request.size();
  out["stream"] = o.stream;
  out["concurrency"] = o.concurrency;
  out["window_s"] = window_s;
  out["completed"] = s.completed;
  out["completed_total"] = s.completed_total;
  out["cut"] = s.cut;
  out["errors"] = s.errors;
  json::array samples;
  for (auto& e : s.error_samples) samples.emplace_back(e);
  out["error_samples"] = std::move(samples);
  out["connects"] = s.connects;
  out["rps"] = static_cast<double>(s.completed) / window_s;
  out["latency"] = percentiles(s.latency_ns);
  if (o.stream) {
    out["chunks"] = s.chunks;
    out["chunks_total"] = s.chunks_total;
    out["chunks_per_s"] = static_cast<double>(s.chunks) / window_s;
    out["chunk_latency"] = percentiles(s.chunk_ns);
    out["first_chunk"] = percentiles(s.first_chunk_ns);
  }
  out["loadgen_cpu_s"] = cpu;
  out["loadgen_cpu_total_s"] = cpu_end - cpu_at_start;
  std::printf("%s\n", json::serialize(out).c_str());
  return 0;
}

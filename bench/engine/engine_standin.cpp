// e2ee-bench-engine: a small, fast OpenAI-compatible engine stand-in.
//
// Two uses: the benchmarks (issue 6) measure the proxy path, not a model, so the engine must
// answer instantly or at a fixed pace; and the local demo (scripts/run) needs an engine that runs
// anywhere without an account or a GPU. It answers
//   GET  /v1/models
//   POST /v1/chat/completions, /v1/completions   (stream or not; vLLM's chunk framing)
//   POST /tokenize                               ({"count": …}, a whitespace-token estimate)
// In echo mode (the default) the reply quotes the last user message, which makes the demo show
// that the engine — and only the engine — saw the plaintext. It logs nothing about requests.
//
// --bench (for bench/run-proxy) lets each request choose its stream: max_tokens content chunks,
// bench_chunk_interval_us apart, and stamps each chunk's content with "@" and this process's
// CLOCK_MONOTONIC time in ns, read just before the chunk is written. One engine then serves every
// stream shape of a run, and the load generator measures per-chunk latency from the stamps.
// Only requests carrying bench_chunk_interval_us get stamped chunks: a non-stream request that a
// proxy streams upstream (Venice's always does) still gets the canned reply to aggregate.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <thread>

#include "app/cli.hpp"
#include "app/runtime.hpp"
#include "http/server.hpp"

using namespace e2ee;
namespace json = boost::json;
namespace net = boost::asio;

namespace {

struct EngineOptions {
  std::string model = "demo/echo";
  std::string reply;            // fixed reply; empty = echo mode
  std::size_t chunks = 0;       // stream chunks; 0 = one per word of the reply
  std::chrono::microseconds interval{0};
  bool bench = false;           // per-request chunks and pace, stamped chunks
};

// steady_clock is CLOCK_MONOTONIC on Linux, the clock e2ee-bench-load reads on receipt.
std::string stamp_now() {
  return "@" + std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count());
}

std::int64_t int_member(const json::object& body, std::string_view name, std::int64_t fallback) {
  const auto* v = body.if_contains(name);
  return v != nullptr && v->is_int64() && v->as_int64() >= 0 ? v->as_int64() : fallback;
}

std::string last_user_text(const json::value& body) {
  const auto* messages = body.is_object() ? body.as_object().if_contains("messages") : nullptr;
  if (messages != nullptr && messages->is_array()) {
    for (auto it = messages->as_array().rbegin(); it != messages->as_array().rend(); ++it) {
      if (!it->is_object()) continue;
      const auto& m = it->as_object();
      const auto* role = m.if_contains("role");
      if (role == nullptr || !role->is_string() || role->as_string() != "user") continue;
      const auto* content = m.if_contains("content");
      if (content == nullptr) return {};
      if (content->is_string()) return std::string(content->as_string());
      if (content->is_array())
        for (const auto& part : content->as_array())
          if (part.is_object())
            if (const auto* t = part.as_object().if_contains("text"); t != nullptr && t->is_string())
              return std::string(t->as_string());
    }
  }
  if (const auto* prompt = body.is_object() ? body.as_object().if_contains("prompt") : nullptr;
      prompt != nullptr && prompt->is_string())
    return std::string(prompt->as_string());
  return {};
}

std::vector<std::string> split_reply(const std::string& text, std::size_t chunks) {
  std::vector<std::string> out;
  if (chunks == 0) {
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find(' ', start + 1);
      if (end == std::string::npos) end = text.size();
      out.push_back(text.substr(start, end - start));
      start = end;
    }
  } else {
    const std::size_t piece = std::max<std::size_t>(1, text.size() / chunks);
    for (std::size_t i = 0; i < chunks; ++i) {
      const std::size_t begin = (i * piece) % std::max<std::size_t>(1, text.size());
      out.push_back(text.substr(begin, piece));
    }
  }
  if (out.empty()) out.emplace_back();
  return out;
}

class Engine {
 public:
  explicit Engine(EngineOptions options) : options_(std::move(options)) {}

  net::awaitable<void> handle(http::Request& req, http::ResponseWriter& writer) {
    if (req.path == "/health") {
      static constexpr std::string_view kOk = R"({"status":"ok"})";
      co_await send_json(writer, 200, kOk);
    } else if (req.path == "/v1/models") {
      const std::string list = json::serialize(json::object{
          {"object", "list"},
          {"data", json::array{json::object{{"id", options_.model}, {"object", "model"}, {"owned_by", "e2ee-bench-engine"}}}}});
      co_await send_json(writer, 200, list);
    } else if (req.method == "POST" && (req.path == "/v1/chat/completions" || req.path == "/v1/completions" || req.path == "/tokenize")) {
      json::error_code ec;
      const json::value body = json::parse(req.body, ec);
      if (ec || !body.is_object()) {
        static constexpr std::string_view kInvalid = R"({"error":{"message":"invalid JSON","type":"BadRequestError","code":400}})";
        co_await send_json(writer, 400, kInvalid);
      } else if (req.path == "/tokenize") {
        const std::string count = json::serialize(json::object{{"count", static_cast<std::int64_t>(req.body.size() / 4)}});
        co_await send_json(writer, 200, count);
      } else {
        co_await complete(body.as_object(), req.path == "/v1/chat/completions", writer);
      }
    } else {
      static constexpr std::string_view kNotFound = R"({"error":{"message":"not found","type":"NotFoundError","code":404}})";
      co_await send_json(writer, 404, kNotFound);
    }
  }

 private:
  // Takes a string_view, not a literal-initialised std::string: GCC 12 rejects string literals
  // bound to a by-value std::string coroutine parameter ("array used as initializer").
  static net::awaitable<void> send_json(http::ResponseWriter& writer, int status, std::string_view body) {
    http::Response r;
    r.status = status;
    r.headers.set("Content-Type", "application/json");
    r.body = std::string(body);
    co_await writer.send(std::move(r));
  }

  std::string reply_for(const json::object& body) const {
    if (!options_.reply.empty()) return options_.reply;
    const std::string said = last_user_text(body);
    return "You said: \"" + said + "\". Only the engine inside the TEE could read that; everything between "
           "your machine and here carried ciphertext.";
  }

  net::awaitable<void> complete(const json::object& body, bool chat, http::ResponseWriter& writer) {
    const std::string model = body.contains("model") && body.at("model").is_string() ? std::string(body.at("model").as_string()) : options_.model;
    const std::string text = reply_for(body);
    const auto created = static_cast<std::int64_t>(std::time(nullptr));
    const std::int64_t prompt_tokens = 12, completion_tokens = static_cast<std::int64_t>(split_reply(text, 0).size());
    const json::object usage{{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                             {"total_tokens", prompt_tokens + completion_tokens}};
    const bool stream = body.contains("stream") && body.at("stream").is_bool() && body.at("stream").as_bool();
    const std::string id = chat ? "chatcmpl-standin" : "cmpl-standin";
    if (!stream) {
      json::object choice{{"index", 0}, {"finish_reason", "stop"}};
      if (chat) choice["message"] = json::object{{"role", "assistant"}, {"content", text}};
      else choice["text"] = text;
      const std::string completion =
          json::serialize(json::object{{"id", id}, {"object", chat ? "chat.completion" : "text_completion"},
                                       {"created", created}, {"model", model},
                                       {"choices", json::array{std::move(choice)}}, {"usage", usage}});
      co_await send_json(writer, 200, completion);
      co_return;
    }
    const bool include_usage = body.contains("stream_options") && body.at("stream_options").is_object() &&
                               body.at("stream_options").as_object().contains("include_usage") &&
                               body.at("stream_options").as_object().at("include_usage") == json::value(true);
    http::Headers headers;
    headers.set("Content-Type", "text/event-stream");
    if (auto sent = co_await writer.start_stream(200, std::move(headers)); !sent) co_return;
    auto chunk = [&](json::object delta, json::value finish) {
      json::object choice{{"index", 0}, {"finish_reason", finish}};
      if (chat) choice["delta"] = std::move(delta);
      else choice["text"] = delta.contains("content") ? delta.at("content") : json::value("");
      return "data: " +
             json::serialize(json::object{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"},
                                          {"created", created}, {"model", model}, {"choices", json::array{std::move(choice)}}}) +
             "\n\n";
    };
    net::steady_timer timer(co_await net::this_coro::executor);
    if (chat) {
      const std::string first = chunk(json::object{{"role", "assistant"}, {"content", ""}}, nullptr);
      if (auto sent = co_await writer.write(first); !sent) co_return;
    }
    if (options_.bench && body.contains("bench_chunk_interval_us")) {
      const auto count = static_cast<std::size_t>(int_member(body, "max_tokens", static_cast<std::int64_t>(options_.chunks)));
      const std::chrono::microseconds pace(int_member(body, "bench_chunk_interval_us", options_.interval.count()));
      for (std::size_t i = 0; i < count; ++i) {
        if (pace.count() > 0) {
          timer.expires_after(pace);
          co_await timer.async_wait(net::use_awaitable);
        }
        const std::string data = chunk(json::object{{"content", stamp_now()}}, nullptr);
        if (auto sent = co_await writer.write(data); !sent) co_return;
      }
    } else {
      for (const auto& piece : split_reply(text, options_.chunks)) {
        if (options_.interval.count() > 0) {
          timer.expires_after(options_.interval);
          co_await timer.async_wait(net::use_awaitable);
        }
        const std::string data = chunk(json::object{{"content", piece}}, nullptr);
        if (auto sent = co_await writer.write(data); !sent) co_return;
      }
    }
    const std::string last = chunk(json::object{}, "stop");
    if (auto sent = co_await writer.write(last); !sent) co_return;
    if (include_usage) {
      const std::string usage_chunk =
          "data: " + json::serialize(json::object{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created},
                                                  {"model", model}, {"choices", json::array{}}, {"usage", usage}}) +
          "\n\n";
      if (auto sent = co_await writer.write(usage_chunk); !sent) co_return;
    }
    static constexpr std::string_view kDone = "data: [DONE]\n\n";
    if (auto sent = co_await writer.write(kDone); !sent) co_return;
    co_await writer.finish();
  }

  EngineOptions options_;
};

}  // namespace

int main(int argc, char** argv) {
  app::CommandLine cli("e2ee-bench-engine",
                       "An OpenAI-compatible engine stand-in for benchmarks and the local demo: canned or echoed\n"
                       "answers, streamed at a configurable pace. Not a model.",
                       {{"--listen", "URL", "where to listen", "", true, "http://127.0.0.1:8001"},
                        {"--model", "NAME", "the model name it reports", "", false, "demo/echo"},
                        {"--reply", "TEXT", "a fixed reply instead of echoing the last user message", "", false, ""},
                        {"--chunks", "N", "stream the reply in N chunks (0 = one per word)", "", false, "0"},
                        {"--chunk-interval-us", "N", "pause between stream chunks, microseconds", "", false, "0"},
                        {"--threads", "N", "worker threads", "", false, "1"},
                        {"--bench", "", "requests with bench_chunk_interval_us stream max_tokens chunks that far apart, each "
                                        "chunk's content '@' + its CLOCK_MONOTONIC write time in ns (bench/run-proxy)",
                         "", false, ""},
                        {"--help", "", "this text", "", false, ""}});
  if (auto error = cli.parse(argc, argv)) {
    std::fprintf(stderr, "e2ee-bench-engine: %s\n", error->c_str());
    return 2;
  }
  if (cli.has("--help")) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  EngineOptions options;
  options.model = cli.value("--model").value_or(options.model);
  options.reply = cli.value("--reply").value_or("");
  options.bench = cli.has("--bench");
  unsigned threads = 1;
  try {
    options.chunks = std::stoul(cli.value("--chunks").value_or("0"));
    options.interval = std::chrono::microseconds(std::stol(cli.value("--chunk-interval-us").value_or("0")));
    threads = static_cast<unsigned>(std::stoul(cli.value("--threads").value_or("1")));
  } catch (const std::exception&) {
    std::fprintf(stderr, "e2ee-bench-engine: --chunks, --chunk-interval-us and --threads take numbers\n");
    return 2;
  }
  net::io_context ioc(static_cast<int>(threads));
  Engine engine(options);
  http::ServerLimits limits;
  limits.max_body_bytes = 64 * 1024 * 1024;
  http::Server server(ioc.get_executor(), [&engine](http::Request& r, http::ResponseWriter& w) { return engine.handle(r, w); }, limits);
  auto listens = cli.values("--listen");
  if (listens.empty()) listens.push_back("http://127.0.0.1:8001");
  for (const auto& l : listens) {
    auto url = http::Url::parse(l);
    if (!url || url->tls) {
      std::fprintf(stderr, "e2ee-bench-engine: --listen %s: plain http URLs only\n", l.c_str());
      return 2;
    }
    if (auto s = server.listen(http::Listener{*url, nullptr}); !s) {
      std::fprintf(stderr, "e2ee-bench-engine: cannot listen on %s: %s\n", l.c_str(), s.error().message.c_str());
      return 2;
    }
  }
  // Before the start line: whoever reads it may send SIGTERM at once.
  app::ShutdownSignals signals(ioc, [&] {
    net::co_spawn(ioc, server.shutdown(std::chrono::seconds(2)), [&](std::exception_ptr) { ioc.stop(); });
  });
  std::string where;
  for (const auto& u : server.bound()) where += (where.empty() ? "" : ", ") + u.origin();
  std::printf("e2ee-bench-engine listening on %s; model %s\n", where.c_str(), options.model.c_str());
  std::fflush(stdout);
  app::run_io(ioc, threads);
  return 0;
}

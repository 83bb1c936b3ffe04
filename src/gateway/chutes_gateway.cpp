#include "gateway/chutes_gateway.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>
#include <ctime>

#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "common/log.hpp"
#include "crypto/hash.hpp"
#include "crypto/random.hpp"
#include "http/cancel_on_disconnect.hpp"
#include "protocol/chutes/envelope.hpp"

namespace e2ee::gateway {

namespace json = boost::json;
namespace envelope = protocol::chutes;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

http::Response detail(int status, std::string_view message) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  r.body = "{\"detail\":" + json_text::quote(message) + "}";
  return r;
}

// Nonces are bound to the caller's credential, as the Chutes API binds them to the user.
std::string caller_of(const http::Request& request) {
  const auto auth = request.headers.get("Authorization").value_or("");
  return hex_encode(crypto::sha256(as_bytes(auth))).substr(0, 32);
}

// secrets.token_urlsafe(24): 24 random bytes, URL-safe base64, 32 characters.
std::string new_nonce() {
  std::uint8_t b[24];
  crypto::random_bytes(b);
  return base64url_encode(b, false);
}

}  // namespace

bool e2e_path_allowed(std::string_view path) {
  for (std::string_view p : {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize", "/detokenize"})
    if (path == p) return true;
  return false;
}

Result<std::string> force_include_usage(std::string_view body) {
  auto span = json_text::find_member(body, "stream_options");
  if (!span) return std::move(span).error();
  std::string options = "{}";
  if (*span) {
    const auto value = body.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
    if (!value.empty() && value.front() == '{') options = std::string(value);
  }
  auto with_usage = json_text::set_member(options, "include_usage", "true");
  if (!with_usage) return std::move(with_usage).error();
  return json_text::set_member(body, "stream_options", *with_usage);
}

ChutesGateway::ChutesGateway(http::Client& engine, NonceStore& nonces, InstanceIdentity& identity,
                             ChutesGatewayOptions options)
    : engine_(engine),
      nonces_(nonces),
      identity_(identity),
      options_(std::move(options)),
      listed_since_(static_cast<std::int64_t>(std::time(nullptr))) {}

boost::asio::awaitable<bool> ChutesGateway::handle(http::Request& request, http::ResponseWriter& writer, int& status) {
  const std::string_view path = request.path;
  if (path == "/v1/models" && request.method == "GET") {
    status = co_await models(writer);
  } else if (path.substr(0, 15) == "/e2e/instances/" && request.method == "GET") {
    status = co_await instances(request, path.substr(15), writer);
  } else if (path == "/e2e/invoke" && request.method == "POST") {
    status = co_await invoke(request, writer);
  } else {
    co_return false;
  }
  co_return true;
}

boost::asio::awaitable<int> ChutesGateway::models(http::ResponseWriter& writer) {
  json::array data;
  auto describe = [&](json::object entry) {
    entry["chute_id"] = options_.chute_id;
    entry["confidential_compute"] = options_.confidential;
    return entry;
  };
  if (!options_.models.empty()) {
    for (const auto& name : options_.models)
      data.push_back(describe(json::object{{"id", name}, {"object", "model"}, {"created", listed_since_}, {"owned_by", "e2ee-gateway"}, {"root", name}}));
  } else {
    http::ClientRequest req;
    req.method = "GET";
    req.origin = options_.backend;
    req.target = options_.backend.target("/v1/models");
    auto response = co_await engine_.send(std::move(req));
    json::error_code ec;
    json::value doc;
    if (response && response->status == 200) doc = json::parse(response->body, ec);
    if (!response || response->status != 200 || ec || !doc.is_object() || !doc.as_object().contains("data") ||
        !doc.as_object().at("data").is_array()) {
      co_await writer.send(detail(503, "the engine's model list is unavailable"));
      co_return 503;
    }
    for (auto& entry : doc.as_object().at("data").as_array())
      if (entry.is_object()) data.push_back(describe(entry.as_object()));
  }
  http::Response r;
  r.headers.set("Content-Type", "application/json");
  r.body = json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
  co_await writer.send(std::move(r));
  co_return 200;
}

boost::asio::awaitable<int> ChutesGateway::instances(const http::Request& request, std::string_view chute_id,
                                                     http::ResponseWriter& writer) {
  if (chute_id != options_.chute_id) {
    co_await writer.send(detail(404, "Chute not found"));
    co_return 404;
  }
  std::vector<std::string> nonces;
  for (std::size_t i = 0; i < options_.nonces_per_discovery; ++i) nonces.push_back(new_nonce());
  // Stored value: "<instance id> <caller>"; the invoke checks both.
  const std::string bound = identity_.instance_id + " " + caller_of(request);
  auto stored = co_await nonces_.put(nonces, bound, options_.nonce_ttl + options_.nonce_grace);
  if (!stored) {
    const bool full = stored.error().code == Errc::limit_exceeded;
    auto refusal =
        detail(full ? 429 : 503, full ? "Too many outstanding nonces, try again later" : "Nonce store unavailable");
    co_await writer.send(std::move(refusal));
    co_return full ? 429 : 503;
  }
  json::array list;
  for (auto& n : nonces) list.emplace_back(n);
  json::object instance{{"instance_id", identity_.instance_id}, {"e2e_pubkey", identity_.public_key_base64}, {"nonces", std::move(list)}};
  const auto ttl = options_.nonce_ttl.count();
  http::Response r;
  r.headers.set("Content-Type", "application/json");
  r.headers.set("Cache-Control", "no-store");
  r.body = json::serialize(json::object{{"instances", json::array{std::move(instance)}},
                                        {"nonce_expires_in", ttl},
                                        {"nonce_expires_at", static_cast<std::int64_t>(std::time(nullptr)) + ttl}});
  co_await writer.send(std::move(r));
  co_return 200;
}

boost::asio::awaitable<int> ChutesGateway::invoke(http::Request& request, http::ResponseWriter& writer) {
  auto reply = [&](int status, std::string_view message) -> boost::asio::awaitable<int> {
    co_await writer.send(detail(status, message));
    co_return status;
  };
  const auto chute = request.headers.get("X-Chute-Id");
  const auto instance = request.headers.get("X-Instance-Id");
  const auto nonce = request.headers.get("X-E2E-Nonce");
  if (!chute || !instance || !nonce) {
    http::Response r;
    r.status = 422;
    r.headers.set("Content-Type", "application/json");
    r.body = R"({"detail":[{"type":"missing","loc":["header"],"msg":"X-Chute-Id, X-Instance-Id and X-E2E-Nonce are required"}]})";
    co_await writer.send(std::move(r));
    co_return 422;
  }
  // The nonce is consumed before anything else, so a failing request still burns it (as production).
  auto taken = co_await nonces_.take(std::string(*nonce));
  if (!taken) co_return co_await reply(503, "Nonce store unavailable");
  if (!*taken || **taken != identity_.instance_id + " " + caller_of(request))
    co_return co_await reply(403, "Invalid, expired, or already-used nonce");
  if (*chute != options_.chute_id) co_return co_await reply(404, "Chute not found");
  if (*instance != identity_.instance_id) co_return co_await reply(404, "Instance not found");
  if (request.body.empty()) co_return co_await reply(400, "Empty request body");
  const std::string path(request.headers.get("X-E2E-Path").value_or("/"));
  if (!e2e_path_allowed(path)) co_return co_await reply(403, "Path not available via E2E");

  auto opened = envelope::open_request(identity_.key, as_bytes(request.body), options_.max_plaintext);
  if (!opened) {
    // Deliberately vague towards the network; the log keeps the kind for the operator.
    log::info("invoke: request did not open", {{"reason", to_string(opened.error().code)}});
    const char* const reason =
        opened.error().code == Errc::limit_exceeded ? "E2E request too large" : "E2E decryption failed";
    co_return co_await reply(400, reason);
  }
  const bool header_stream = http::iequals(request.headers.get("X-E2E-Stream").value_or("false"), "true");
  if (header_stream != opened->stream)
    co_return co_await reply(400, "X-E2E-Stream does not match the request body's stream flag");

  std::string body = std::move(opened->json);
  if (opened->stream) {
    auto with_usage = force_include_usage(body);
    if (!with_usage) co_return co_await reply(400, "E2E decryption failed");
    body = std::move(*with_usage);
  }

  http::ClientRequest req;
  req.method = "POST";
  req.origin = options_.backend;
  req.target = options_.backend.target(path);
  req.headers.set("Content-Type", "application/json");
  req.headers.set("Accept", opened->stream ? "text/event-stream" : "application/json");
  req.body = std::move(body);
  req.cancel = http::cancel_on_disconnect(writer);  // a gone proxy must stop the engine, even mid-prefill

  // The answer's key (expanding the client's key, encapsulating, HKDF: ~60 us) does not depend on
  // the answer, so it is made while the engine works: the engine call runs first, up to its first
  // wait (the request is already written by then), then the key. At concurrency 1 that takes it
  // off the request's serial path (docs/performance.md, history).
  const auto use = opened->stream ? envelope::AnswerKey::Use::stream : envelope::AnswerKey::Use::body;
  auto make_answer_key = [&]() -> boost::asio::awaitable<envelope::AnswerKey> {
    co_return envelope::AnswerKey(opened->client_key, use);
  };
  auto [upstream, answer_key] = co_await (engine_.open(std::move(req)) && make_answer_key());
  if (!upstream) {
    log::warn("engine unreachable", {{"reason", upstream.error().message}});
    co_return co_await reply(502, "engine unreachable: the model server behind this instance is not answering");
  }
  const int engine_status = (*upstream)->status();
  if (engine_status < 200 || engine_status >= 300 || !opened->stream) {
    auto payload = co_await (*upstream)->read_all();
    if (!payload) co_return co_await reply(502, "Instance returned status 502");
    // A stream request the engine refused is answered with a sealed body, which takes a body key.
    envelope::AnswerKey body_key = answer_key.use() == envelope::AnswerKey::Use::body
                                       ? std::move(answer_key)
                                       : envelope::AnswerKey(opened->client_key, envelope::AnswerKey::Use::body);
    auto sealed = envelope::seal_response(std::move(body_key), as_bytes(*payload), options_.gzip_level);
    if (!sealed) co_return co_await reply(500, "Internal error during E2E invocation");
    if (engine_status >= 200 && engine_status < 300) {
      http::Response r;
      r.headers.set("Content-Type", "application/octet-stream");
      r.body.assign(as_text(*sealed));
      co_await writer.send(std::move(r));
      co_return 200;
    }
    // The engine's error goes back sealed to the client, which alone may read it (it can quote
    // the prompt). The status stays the engine's, so the client can act on it.
    co_return co_await reply(engine_status, base64_encode_public(*sealed));
  }

  // Stream: e2e_init, then one encrypted event per engine line, exactly as production frames it.
  envelope::StreamSealer sealer(std::move(answer_key));
  http::Headers headers;
  headers.set("Content-Type", "text/event-stream");
  headers.set("Cache-Control", "no-cache");
  headers.set("X-Accel-Buffering", "no");
  if (auto sent = co_await writer.start_stream(200, std::move(headers)); !sent) co_return 499;
  if (auto sent = co_await writer.write("data: " + sealer.init_event_json() + "\n\n"); !sent) co_return 499;
  std::string line;
  std::string batch;
  auto seal_into = [&](std::string& out, std::string_view piece) {
    out.append("data: ").append(sealer.seal_chunk_json(as_bytes(piece))).append("\n\n");
  };
  auto emit = [&](std::string_view piece) -> boost::asio::awaitable<bool> {
    std::string event;
    seal_into(event, piece);
    const bool ok = static_cast<bool>(co_await writer.write(event));
    co_return ok;
  };
  for (;;) {
    auto chunk = co_await (*upstream)->read_some();
    if (!chunk) {
      log::warn("engine stream failed", {{"reason", chunk.error().message}});
      // Fail closed and in-band: the client sees an encrypted error event and the end marker. An
      // unfinished engine line is dropped (it would corrupt the next event), and the error starts
      // with a blank line that ends any event the engine left open.
      co_await emit("\ndata: {\"error\":{\"message\":\"the engine's stream failed before it finished\",\"type\":\"upstream_error\"}}\n\n");
      co_await emit("data: [DONE]\n\n");
      co_await writer.finish();
      co_return 502;
    }
    if (chunk->empty()) break;
    // Every line this read completes goes out in one write. The framing stays production's (one
    // e2e event per line), but a burst of tokens costs one syscall and one wake-up of the reader,
    // instead of two per token (an engine event is two lines: "data: …" and the blank one).
    // bench/run-proxy: docs/performance.md, history.
    std::string_view rest = *chunk;
    batch.clear();
    for (auto nl = rest.find('\n'); nl != std::string_view::npos; nl = rest.find('\n')) {
      line.append(rest.substr(0, nl + 1));
      rest.remove_prefix(nl + 1);
      seal_into(batch, line);
      line.clear();
    }
    line.append(rest);
    if (!batch.empty()) {
      // Client gone: dropping `upstream` cancels the engine.
      if (auto sent = co_await writer.write(batch); !sent) co_return 499;
    }
  }
  if (!line.empty()) {
    if (auto sent = co_await emit(line); !sent) co_return 499;
  }
  co_await writer.finish();
  co_return 200;
}

}  // namespace e2ee::gateway

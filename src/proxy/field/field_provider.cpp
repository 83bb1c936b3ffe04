#include "proxy/field/field_provider.hpp"

#include <boost/json.hpp>

#include "api/chat/chat_model.hpp"
#include "common/log.hpp"
#include "common/raw_json.hpp"
#include "protocol/field/fields.hpp"
#include "proxy/decrypted_events.hpp"
#include "proxy/field/aggregate.hpp"

namespace e2ee::proxy::field {

namespace json = boost::json;

struct FieldProvider::Request {
  std::string model;
  std::string api_key;
  std::string body;  // the prepared plaintext; encrypted afresh for every attempt
  bool upstream_stream = false;
  std::shared_ptr<http::CancelToken> cancel;  // the client's; shared by every attempt
};

std::string_view provider_name(ProviderKind kind) noexcept {
  switch (kind) {
    case ProviderKind::venice: return "Venice";
    case ProviderKind::nearai: return "NEAR AI";
    case ProviderKind::dstack: return "dstack";
  }
  return "provider";
}

std::unique_ptr<Flavor> make_flavor(const FieldOptions& options) {
  switch (options.kind) {
    case ProviderKind::venice: return make_venice_flavor(options);
    case ProviderKind::nearai: return make_nearai_flavor(options);
    case ProviderKind::dstack: return make_dstack_flavor(options);
  }
  return nullptr;
}

std::optional<ProxyError> Flavor::check_response(const http::Headers&, const RequestPlan&) const { return std::nullopt; }

bool asks_for_logprobs(std::string_view body) {
  auto doc = RawJson::parse(body);
  if (!doc || !doc->root().is_object()) return false;  // refused later as invalid JSON
  const RawValue root = doc->root();
  const auto set = [](const std::optional<RawValue>& v) {
    if (!v) return false;
    if (v->is_bool()) return v->boolean();
    if (v->is_number()) return v->raw().find_first_not_of("-0.eE+") != std::string_view::npos;  // any non-zero number
    return false;
  };
  return set(root.get("logprobs")) || set(root.get("top_logprobs"));
}

ProxyError logprobs_refused(std::string_view who, std::string_view remedy) {
  return ProxyError{400, "invalid_request_error", "e2ee_unsupported_parameter",
                    std::string(who) + "'s end-to-end encryption does not cover logprobs: their tokens are the answer's text and "
                        "would come back in plaintext. The proxy refuses rather than leak them; remove logprobs/top_logprobs" +
                        std::string(remedy) + ".",
                    0};
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The message and type of an error body in the shapes these servers use: OpenAI
// {"error":{"message","type"}}, {"error":"…"}, FastAPI {"detail":…}, or {"message":…}.
void error_fields(std::string_view body, std::string& message, std::string& type) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (ec || !doc.is_object()) return;
  const auto& o = doc.as_object();
  if (const auto* e = o.if_contains("error")) {
    if (e->is_string()) message = std::string(e->as_string());
    if (e->is_object()) {
      const auto& eo = e->as_object();
      if (const auto* m = eo.if_contains("message"); m != nullptr && m->is_string()) message = std::string(m->as_string());
      if (const auto* t = eo.if_contains("type"); t != nullptr && t->is_string()) type = std::string(t->as_string());
    }
  }
  if (message.empty()) {
    for (const char* key : {"detail", "message"}) {
      if (const auto* m = o.if_contains(key)) {
        if (m->is_string()) message = std::string(m->as_string());
        else if (!m->is_null()) message = json::serialize(*m);
        if (!message.empty()) break;
      }
    }
  }
  if (message.size() > 500) message = message.substr(0, 500) + "…";
}

bool e2ee_type(std::string_view type) {
  return type.rfind("e2ee_", 0) == 0 || type == "invalid_e2ee_request";
}

// The engine's in-band error inside a decrypted chunk, if any.
std::optional<ProxyError> in_band_error(std::string_view chunk) {
  if (chunk.find("\"error\"") == std::string_view::npos) return std::nullopt;
  auto parsed = api::chat::parse_chunk(chunk);
  if (!parsed || !parsed->error_message) return std::nullopt;
  return api::chat::engine_error(*parsed);
}

class FieldEventStream final : public EventStream {
 public:
  FieldEventStream(FieldProvider& provider, std::shared_ptr<const FieldProvider::Request> request,
                   FieldProvider::Opened opened, bool may_retry)
      : provider_(provider), request_(std::move(request)), opened_(std::move(opened)), may_retry_(may_retry) {}

  void cancel() noexcept override {
    cancelled_ = true;
    if (opened_.response) opened_.response->cancel();
  }

  std::optional<http::SseEvent> try_next() override {
    auto ev = events_.take();
    if (ev) yielded_ = true;
    return ev;
  }

  boost::asio::awaitable<std::variant<std::optional<http::SseEvent>, ProxyError>> next() override {
    const std::string who(provider_name(provider_.flavor().kind()));
    for (;;) {
      if (auto ev = try_next()) co_return std::move(ev);
      if (auto settled = events_.settled()) co_return std::move(*settled);  // the failure, if any
      if (ended_) co_return std::optional<http::SseEvent>();
      auto chunk = co_await opened_.response->read_some();
      if (!chunk) co_return transport_error("the stream from " + who + " failed", chunk.error());
      std::vector<http::SseEvent> events;
      bool oversized = false;
      if (chunk->empty()) {
        ended_ = true;
        if (auto last = parser_.finish()) events.push_back(std::move(*last));
      } else {
        oversized = !parser_.feed(*chunk, events);  // the events completed before it are in `events`
      }
      bool restarted = false;
      for (auto& ev : events) {
        if (ev.data.empty()) continue;
        if (ev.data == "[DONE]") {
          events_.push(std::move(ev));
          continue;
        }
        auto plain = protocol::field::decrypt_response(ev.data, opened_.policy, opened_.session->client);
        if (!plain) {
          provider_.invalidate(request_->model, opened_.session);
          if (may_retry_ && !yielded_ && !cancelled_) {
            // Nothing reached the client yet: a new session and one more attempt are invisible to it.
            may_retry_ = false;
            log::info("answer did not decrypt; new session, one retry", {{"provider", who}, {"model", request_->model}});
            auto reopened = co_await provider_.open(request_, nullptr);
            if (auto* error = std::get_if<ProxyError>(&reopened)) co_return std::move(*error);
            opened_ = std::get<FieldProvider::Opened>(std::move(reopened));
            if (cancelled_) opened_.response->cancel();
            parser_ = http::SseParser();
            events_.clear();
            ended_ = false;
            restarted = true;
            break;
          }
          events_.fail(ProxyError{502, "upstream_error", "response_decryption_failed",
                                  "part of " + who + "'s answer is not a valid envelope for this session (" +
                                      plain.error().message + "); the answer was stopped and the E2EE session renewed",
                                  0});
          break;
        }
        if (auto error = in_band_error(*plain)) {
          events_.fail(std::move(*error));
          break;
        }
        ev.data = std::move(*plain);
        events_.push(std::move(ev));
      }
      if (restarted) continue;
      if (oversized) events_.fail(upstream_error(502, "upstream_stream_invalid", who + " sent an oversized stream event"));
    }
  }

 private:
  FieldProvider& provider_;
  std::shared_ptr<const FieldProvider::Request> request_;
  FieldProvider::Opened opened_;
  bool may_retry_;
  bool yielded_ = false;
  bool ended_ = false;
  bool cancelled_ = false;
  http::SseParser parser_;
  DecryptedEvents events_;
};

// A non-stream client's answer from a streaming upstream: the decrypted chunks joined.
boost::asio::awaitable<std::variant<std::string, ProxyError>> aggregate(EventStream& stream, std::string_view model_name) {
  const std::string model(model_name);
  ChunkAggregator aggregator;
  bool done = false;
  for (;;) {
    auto next = co_await stream.next();
    if (auto* error = std::get_if<ProxyError>(&next)) co_return std::move(*error);
    auto& event = std::get<std::optional<http::SseEvent>>(next);
    if (!event) break;
    if (event->data == "[DONE]") {
      done = true;
      continue;
    }
    if (auto added = aggregator.add(event->data); !added)
      co_return upstream_error(502, "upstream_stream_invalid", "the model's answer could not be assembled: " + added.error().message);
  }
  if (!done) co_return upstream_error(502, "stream_truncated", "the stream ended before the model finished");
  co_return aggregator.finish(model);
}

}  // namespace

UpstreamFailure classify_upstream_error(ProviderKind kind, int status, std::string_view body) {
  const std::string who(provider_name(kind));
  std::string message, type;
  error_fields(body, message, type);
  const std::string shown = message.empty() ? std::string("no details") : message;
  const std::string lowered = lower(message);
  UpstreamFailure out;
  out.stale_key = status == 421 || type == "e2ee_model_key_mismatch" ||
                  (status == 400 && (type == "e2ee_decryption_failed" || lowered.find("decrypt") != std::string::npos));
  if (status == 421) {
    out.error = ProxyError{502, "upstream_error", "e2ee_model_key_rejected",
                           who + " no longer holds the model key the request was encrypted to (HTTP 421: " + shown + ")", 0};
  } else if (out.stale_key) {
    out.error = ProxyError{502, "upstream_error", type.empty() ? "e2ee_rejected" : type,
                           who + " could not decrypt the request with the attested key (" + shown + ")", 0};
  } else if (e2ee_type(type)) {
    // The proxy and the server disagree about the protocol: not something the client can fix.
    std::string hint = type == "e2ee_invalid_timestamp" ? " (check this machine's clock)" : "";
    out.error = ProxyError{502, "upstream_error", type, who + " refused the encrypted request: " + shown + hint, 0};
  } else {
    switch (status) {
      case 401:
        out.error = ProxyError{401, "authentication_error", "invalid_api_key", who + " rejected the API key: " + shown, 0};
        break;
      case 402:
        out.error = ProxyError{402, "insufficient_quota", "insufficient_quota", who + " refused for billing reasons: " + shown, 0};
        break;
      case 403:
        out.error = ProxyError{403, "permission_error", "forbidden", who + " refused the request: " + shown, 0};
        break;
      case 404:
        out.error = ProxyError{404, "invalid_request_error", "model_unavailable", who + " could not route the request: " + shown, 0};
        break;
      case 429:
        out.error = ProxyError{429, "rate_limit_error", "rate_limited", who + " is rate limiting: " + shown, 5};
        break;
      case 400:
      case 413:
      case 422:
        // The engine's own verdict on the request (context length, a bad parameter): its wording
        // and code, which clients key off (context_length_exceeded).
        out.error = api::chat::engine_error_from_body(status, body);
        break;
      case 503:
        out.error = ProxyError{503, "upstream_error", "unavailable", who + " is unavailable: " + shown, 0};
        break;
      default:
        out.error = ProxyError{502, "upstream_error", "upstream_status_" + std::to_string(status),
                               who + " returned HTTP " + std::to_string(status) + ": " + shown, 0};
    }
  }
  return out;
}

FieldProvider::FieldProvider(boost::asio::any_io_executor executor, http::Client& client, FieldOptions options)
    : executor_(executor),
      client_(client),
      options_(std::move(options)),
      flavor_(make_flavor(options_)),
      sessions_(executor, flavor_->algo(), options_.session_ttl, options_.clock) {}

FieldProvider::~FieldProvider() = default;

void FieldProvider::invalidate(const std::string& model, const SessionPtr& session) { sessions_.invalidate(model, session); }

boost::asio::awaitable<std::variant<VerifiedKey, ProxyError>> FieldProvider::attest(std::string_view model_name,
                                                                                   std::string_view key) {
  const std::string model(model_name);
  const std::string api_key(key);
  const std::string who(provider_name(flavor_->kind()));
  // One retry for a network failure or a 5xx: a fresh nonce each time (Venice's CLI retries too).
  for (int attempt = 0; attempt < 2; ++attempt) {
    const AttestationNonce nonce = AttestationNonce::random();
    http::ClientRequest req;
    req.method = "GET";
    req.origin = options_.upstream;
    req.target = options_.upstream.target(flavor_->attestation_target(model, nonce));
    if (!api_key.empty()) req.headers.set("Authorization", "Bearer " + api_key);
    req.headers.set("Accept", "application/json");
    auto response = co_await client_.send(std::move(req));
    if (!response) {
      if (attempt == 0) continue;
      co_return transport_error("fetching " + who + "'s attestation for '" + model + "' failed", response.error());
    }
    const int status = response->status;
    if (status >= 500 && attempt == 0) continue;
    if (status != 200) {
      std::string message, type;
      error_fields(response->body, message, type);
      const std::string detail = "HTTP " + std::to_string(status) + (message.empty() ? "" : ": " + message);
      if (status == 401 || status == 403)
        co_return ProxyError{status, status == 401 ? "authentication_error" : "permission_error", "invalid_api_key",
                             who + " rejected the API key while attesting '" + model + "' (" + detail + ")", 0};
      if (status == 400 || status == 404)
        co_return ProxyError{404, "invalid_request_error", "model_not_attestable",
                             who + " has no attestation for model '" + model + "' (" + detail +
                                 "); only models that run in a TEE with E2EE can be used",
                             0};
      if (status == 429)
        co_return ProxyError{429, "rate_limit_error", "rate_limited", who + " is rate limiting attestation (" + detail + ")", 5};
      co_return ProxyError{502, "upstream_error", "attestation_unavailable",
                           who + "'s attestation for '" + model + "' failed (" + detail + ")", 0};
    }
    auto verified = flavor_->verify(response->body, model, nonce);
    if (!verified) {
      log::warn("attestation refused", {{"provider", who}, {"model", model}, {"reason", verified.error().message}});
      co_return ProxyError{502, "upstream_error", "attestation_failed",
                           verified.error().message + ". Nothing was sent to the model.", 0};
    }
    co_return std::move(*verified);
  }
  co_return ProxyError{502, "upstream_error", "attestation_unavailable", who + "'s attestation could not be fetched", 0};
}

boost::asio::awaitable<std::variant<FieldProvider::Opened, ProxyError>> FieldProvider::open(std::shared_ptr<const Request> r,
                                                                                          bool* stale) {
  if (stale != nullptr) *stale = false;
  const std::string who(provider_name(flavor_->kind()));
  SessionCache::Attest attest_model = [this, model = r->model, key = r->api_key] { return attest(model, key); };
  auto acquired = co_await sessions_.acquire(r->model, std::move(attest_model));
  if (auto* error = std::get_if<ProxyError>(&acquired)) co_return std::move(*error);
  SessionPtr session = std::get<SessionPtr>(std::move(acquired));

  RequestPlan plan;
  Result<std::unique_ptr<http::ResponseStream>> opened = make_error(Errc::internal, "not sent");
  for (int send = 0; send < 2; ++send) {
    // Sealed afresh for each send: new ephemeral keys, and in dstack v2 a new nonce and timestamp.
    plan = flavor_->plan(*session);
    auto sealed = protocol::field::encrypt_request(r->body, plan.policy, session->model.key);
    if (!sealed)
      co_return ProxyError{400, "invalid_request_error", "e2ee_encryption_failed",
                           "the request could not be encrypted for " + who + ": " + sealed.error().message, 0};

    http::ClientRequest req;
    req.method = "POST";
    req.origin = options_.upstream;
    req.target = options_.upstream.target(flavor_->chat_path());
    if (!r->api_key.empty()) req.headers.set("Authorization", "Bearer " + r->api_key);
    req.headers.set("Content-Type", "application/json");
    req.headers.set("Accept", r->upstream_stream ? "text/event-stream" : "application/json");
    for (const auto& [name, value] : plan.headers) req.headers.set(name, value);
    req.body = std::move(*sealed);
    req.cancel = r->cancel;

    opened = co_await client_.open(std::move(req));
    // A pooled connection the server closed as the request went out (uvicorn and Node close idle
    // ones after 5 s): sent once more, sealed anew, never replayed as it was.
    if (opened || opened.error().code != Errc::not_answered) break;
    log::debug("reused connection closed unanswered; sending again", {{"provider", who}});
  }
  if (!opened) co_return transport_error("the request to " + who + " failed", opened.error());
  std::unique_ptr<http::ResponseStream> response = std::move(*opened);
  const int status = response->status();
  if (status != 200) {
    auto payload = co_await response->read_all();
    const std::string body = payload ? std::move(*payload) : std::string();
    UpstreamFailure failure = classify_upstream_error(flavor_->kind(), status, body);
    log::info("upstream refused", {{"provider", who}, {"model", r->model}, {"status", status}, {"code", failure.error.code}});
    if (failure.stale_key) {
      invalidate(r->model, session);
      if (stale != nullptr) *stale = true;
    }
    co_return std::move(failure.error);
  }
  if (auto refused = flavor_->check_response(response->headers(), plan)) co_return std::move(*refused);
  if (r->upstream_stream) {
    const std::string type = lower(response->headers().get("Content-Type").value_or(""));
    if (type.find("text/event-stream") == std::string::npos)
      co_return upstream_error(502, "upstream_not_streaming", who + " answered a streaming request with '" + type.substr(0, 60) + "'");
  }
  co_return Opened{std::move(response), std::move(session), std::move(plan.policy)};
}

boost::asio::awaitable<std::variant<CallResult, ProxyError>> FieldProvider::call(E2eeCall c) {
  const std::string who(provider_name(flavor_->kind()));
  if (c.path != "/v1/chat/completions") {
    // Anything else would leave the proxy in plaintext (or not be understood): nothing is sent.
    co_return ProxyError{404, "invalid_request_error", "unsupported_endpoint",
                         who + " end-to-end encryption covers /v1/chat/completions only; " + c.path.substr(0, 100) +
                             " was not sent",
                         0};
  }
  auto prepared = flavor_->prepare(c.body, c.stream);
  if (auto* error = std::get_if<ProxyError>(&prepared)) co_return std::move(*error);
  PreparedBody& ready = std::get<PreparedBody>(prepared);
  auto request = std::make_shared<Request>();
  request->model = c.model;
  request->api_key = std::move(c.api_key);
  request->body = std::move(ready.json);
  request->upstream_stream = ready.upstream_stream;
  request->cancel = std::move(c.cancel);

  for (int attempt = 0; attempt < 2; ++attempt) {
    bool stale = false;
    auto opened = co_await open(request, &stale);
    if (auto* error = std::get_if<ProxyError>(&opened)) {
      if (stale && attempt == 0) {
        log::info("model key stale; attesting again", {{"provider", who}, {"model", c.model}});
        continue;
      }
      co_return std::move(*error);
    }
    Opened o = std::get<Opened>(std::move(opened));

    if (request->upstream_stream) {
      auto stream = std::make_unique<FieldEventStream>(*this, request, std::move(o), attempt == 0);
      if (c.stream) co_return CallResult{{}, std::move(stream)};
      auto body = co_await aggregate(*stream, c.model);
      if (auto* error = std::get_if<ProxyError>(&body)) co_return std::move(*error);
      co_return CallResult{std::get<std::string>(std::move(body)), nullptr};
    }

    auto payload = co_await o.response->read_all();
    if (!payload) co_return transport_error("reading " + who + "'s answer failed", payload.error());
    auto plain = protocol::field::decrypt_response(*payload, o.policy, o.session->client);
    if (!plain) {
      invalidate(request->model, o.session);
      if (attempt == 0) {
        log::info("answer did not decrypt; new session, one retry", {{"provider", who}, {"model", c.model}});
        continue;
      }
      co_return ProxyError{502, "upstream_error", "response_decryption_failed",
                           who + "'s answer is not valid for this session's key (" + plain.error().message + ")", 0};
    }
    co_return CallResult{std::move(*plain), nullptr};
  }
  co_return ProxyError{502, "upstream_error", "retry_exhausted",
                       "the E2EE request to " + who + " failed again after a fresh attestation", 0};
}

boost::asio::awaitable<http::Response> FieldProvider::list_models(const http::Request& request, std::string api_key) {
  http::ClientRequest req;
  req.method = "GET";
  req.origin = options_.models_upstream;
  req.target = options_.models_upstream.target(flavor_->models_path());
  if (!request.query.empty()) req.target += "?" + request.query;
  if (!api_key.empty()) req.headers.set("Authorization", "Bearer " + api_key);
  req.headers.set("Accept", "application/json");
  auto response = co_await client_.send(std::move(req));
  if (!response) co_return render_openai_error(transport_error("model list request failed", response.error()));
  http::Response out;
  out.status = response->status;
  out.headers.set("Content-Type", response->headers.get("Content-Type").value_or("application/json"));
  out.body = std::move(response->body);
  co_return out;
}

}  // namespace e2ee::proxy::field

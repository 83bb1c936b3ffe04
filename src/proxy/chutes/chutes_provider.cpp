#include "proxy/chutes/chutes_provider.hpp"

#include <boost/json.hpp>

#include "api/chat/chat_model.hpp"
#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "common/log.hpp"
#include "http/client.hpp"
#include "protocol/chutes/envelope.hpp"
#include "proxy/chutes/thinking.hpp"
#include "proxy/decrypted_events.hpp"

namespace e2ee::proxy::chutes {

namespace json = boost::json;
namespace envelope = protocol::chutes;

namespace {

// Folds `text` into `h`. The affinity only has to agree within this process, so the library's
// word-at-a-time string hash serves; a byte-at-a-time FNV-1a over the first messages (a system
// prompt can be tens of KB) cost ~1 % of the proxy's CPU per request (perf, c=64).
std::uint64_t mix(std::uint64_t h, std::string_view text) {
  return (h ^ std::hash<std::string_view>{}(text)) * 0x9e3779b97f4a7c15ULL + text.size();
}

// The first `count` element texts of a (valid) JSON array.
std::vector<std::string_view> leading_elements(std::string_view array, std::size_t count) {
  std::vector<std::string_view> out;
  std::size_t i = array.find('[');
  if (i == std::string_view::npos) return out;
  ++i;
  while (out.size() < count && i < array.size()) {
    while (i < array.size() && (array[i] == ' ' || array[i] == '\n' || array[i] == '\r' || array[i] == '\t' || array[i] == ','))
      ++i;
    if (i >= array.size() || array[i] == ']') break;
    const std::size_t start = i;
    int depth = 0;
    bool in_string = false;
    for (; i < array.size(); ++i) {
      const char c = array[i];
      if (in_string) {
        if (c == '\\') ++i;
        else if (c == '"') in_string = false;
        continue;
      }
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if (c == '}' || c == ']') {
        if (depth == 0) break;
        --depth;
      } else if (c == ',' && depth == 0) break;
    }
    std::size_t end = i;
    while (end > start && (array[end - 1] == ' ' || array[end - 1] == '\n' || array[end - 1] == '\r' || array[end - 1] == '\t'))
      --end;
    out.push_back(array.substr(start, end - start));
  }
  return out;
}

// The "detail" of a FastAPI error body, or the body itself when it is not one.
std::string detail_of(std::string_view body) {
  json::error_code ec;
  const json::value doc = json::parse(body, ec);
  if (!ec && doc.is_object()) {
    if (const auto* d = doc.as_object().if_contains("detail")) {
      if (d->is_string()) return std::string(d->as_string());
      return json::serialize(*d);
    }
  }
  return std::string(body.substr(0, 300));
}

bool contains_ci(std::string_view haystack, std::string_view needle) {
  auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && lower(haystack[i + j]) == lower(needle[j])) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

bool is_nonce_rejection(int status, std::string_view body) { return status == 403 && contains_ci(body, "nonce"); }

// The instance could not open our envelope: its key changed (it restarted) and our cached key is
// stale. A fresh discovery brings the new key.
bool is_stale_key(int status, std::string_view body) {
  return status == 400 && (contains_ci(body, "E2E decryption failed") || contains_ci(body, "Decryption failed"));
}

// Failures of one instance rather than of the request: another instance may serve it.
bool is_instance_failure(int status, std::string_view body) {
  return (status == 404 && contains_ci(body, "instance not found")) || status == 410 ||
         (status == 502 && contains_ci(body, "key exchange")) ||
         (status == 400 && contains_ci(body, "does not belong"));
}

class ChutesEventStream final : public EventStream {
 public:
  ChutesEventStream(std::unique_ptr<http::ResponseStream> upstream, crypto::mlkem768::DecapsulationKey key)
      : upstream_(std::move(upstream)), key_(std::make_unique<crypto::mlkem768::DecapsulationKey>(std::move(key))),
        opener_(*key_) {}

  void cancel() noexcept override { upstream_->cancel(); }

  std::optional<http::SseEvent> try_next() override { return events_.take(); }

  boost::asio::awaitable<std::variant<std::optional<http::SseEvent>, ProxyError>> next() override {
    for (;;) {
      if (auto settled = events_.settled()) co_return std::move(*settled);
      if (ended_) {
        if (auto last = inner_.finish()) co_return std::optional<http::SseEvent>(std::move(*last));
        co_return std::optional<http::SseEvent>();
      }
      auto chunk = co_await upstream_->read_some();
      if (!chunk) {
        co_return upstream_error(chunk.error().code == Errc::timeout ? 504 : 502, "upstream_stream_failed",
                                 "the encrypted stream from the instance failed: " + chunk.error().message);
      }
      std::vector<http::SseEvent>& outer = outer_events_;  // reused: its capacity outlives a read
      outer.clear();
      bool oversized = false;
      if (chunk->empty()) {
        ended_ = true;
        if (auto last = outer_.finish()) outer.push_back(std::move(*last));
      } else {
        oversized = !outer_.feed(*chunk, outer);  // the events completed before it are in `outer`
      }
      for (const auto& ev : outer) {
        if (!events_.failed()) open_outer(ev);
      }
      if (oversized) events_.fail(upstream_error(502, "upstream_stream_invalid", "the instance sent an oversized stream event"));
    }
  }

 private:
  // Decrypts one event of the instance's stream into events_, or records why the stream ends.
  void open_outer(const http::SseEvent& ev) {
    if (ev.data.empty()) return;
    // A plaintext [DONE] is not production framing and proves nothing (a relay could forge
    // it to cut the answer short): only the [DONE] inside the ciphertext ends a stream.
    if (ev.data == "[DONE]") return;
    auto item = opener_.open_event(ev.data);
    if (!item) {
      events_.fail(upstream_error(502, "stream_decryption_failed",
                                  "failed to decrypt a stream chunk from the instance (" + item.error().message +
                                      "); the stream was stopped"));
      return;
    }
    switch (item->kind) {
      case envelope::StreamOpener::Kind::plaintext: {
        const bool fits = inner_.feed(item->text, inner_events_);  // events completed before a failure count
        for (auto& e : inner_events_) events_.push(std::move(e));
        inner_events_.clear();
        if (!fits) events_.fail(upstream_error(502, "upstream_stream_invalid", "the engine sent an oversized stream event"));
        return;
      }
      case envelope::StreamOpener::Kind::usage:
        // Plaintext billing copies of the usage that the encrypted chunks already carry.
        return;
      case envelope::StreamOpener::Kind::error:
        events_.fail(upstream_error(502, "instance_stream_error", "the instance reported an error: " + item->text));
        return;
      case envelope::StreamOpener::Kind::init:
        return;
    }
  }

  std::unique_ptr<http::ResponseStream> upstream_;
  std::unique_ptr<crypto::mlkem768::DecapsulationKey> key_;  // heap: opener_ holds a reference
  envelope::StreamOpener opener_;
  http::SseParser outer_, inner_;
  std::vector<http::SseEvent> outer_events_, inner_events_;
  DecryptedEvents events_;
  bool ended_ = false;
};

}  // namespace

std::uint64_t conversation_affinity(std::string_view model, std::string_view body) {
  auto members = json_text::ObjectMembers::index(body);
  if (!members) return conversation_affinity(model, nullptr);
  return conversation_affinity(model, &*members);
}

std::uint64_t conversation_affinity(std::string_view model, const json_text::ObjectMembers* body) {
  std::uint64_t h = mix(0, model);
  if (body == nullptr) return h;
  const json_text::ObjectMembers* const members = body;
  if (const auto messages = members->value("messages"); !messages.empty()) {
    for (auto element : leading_elements(messages, 2)) h = mix(h, element);
  } else if (const auto prompt = members->value("prompt"); !prompt.empty()) {
    h = mix(h, prompt.substr(0, 4096));
  }
  return h;
}

ProxyError map_invoke_error(int status, std::string_view body, const crypto::mlkem768::DecapsulationKey* response_key) {
  const std::string detail = detail_of(body);
  const auto raw = base64_decode_public(detail);  // ciphertext, or text that is not base64
  const bool sealed_detail = raw && raw->size() >= envelope::kBlobOverhead;
  // Our gateway seals the engine's own error to this request's key (only the client may read it:
  // it can quote the prompt). Production relays the instance's transport ciphertext instead,
  // which nobody outside the instance can open (upstream issue #7).
  if (sealed_detail && response_key != nullptr) {
    if (auto opened = envelope::open_response(*response_key, *raw, 1 << 20)) {
      // The engine's own error, read with the same rules as an in-band one: context-length errors
      // keep their code (context_length_exceeded), which Claude Code and Codex act on.
      return api::chat::engine_error_from_body(status, *opened);
    }
  }
  // Never show base64 ciphertext to a user: it is noise, and a very long one.
  const std::string shown = sealed_detail ? std::string("an encrypted error that only the TEE instance can read") : detail;
  switch (status) {
    case 400: {
      if (sealed_detail) {
        return ProxyError{400, "invalid_request_error", "instance_rejected_request",
                          "the TEE instance rejected the request, and its error message is encrypted so only the "
                          "instance can read it. The usual causes: the prompt is longer than the model's context "
                          "window, max_tokens is too large, or the engine does not support a parameter in the "
                          "request. Shorten the conversation or remove parameters and retry.",
                          0};
      }
      if (contains_ci(detail, "E2E decryption failed") || contains_ci(detail, "Decryption failed"))
        return ProxyError{502, "upstream_error", "instance_decryption_failed",
                          "the TEE instance could not decrypt the request (" + detail +
                              "); its key may have changed — retry to rediscover the instance",
                          0};
      return ProxyError{400, "invalid_request_error", "upstream_rejected_request", "the provider rejected the request: " + shown, 0};
    }
    case 401:
      return ProxyError{401, "authentication_error", "invalid_api_key", "the provider rejected the API key: " + shown, 0};
    case 402:
      return ProxyError{402, "insufficient_quota", "insufficient_quota", "the provider refused for billing reasons: " + shown, 0};
    case 403:
      return ProxyError{403, "permission_error", "forbidden", "the provider refused the request: " + shown, 0};
    case 404:
      return ProxyError{404, "invalid_request_error", "model_unavailable", "the provider could not route the request: " + shown, 0};
    case 413:
      return ProxyError{413, "invalid_request_error", "request_too_large", "the provider refused the request size: " + shown, 0};
    case 429:
      return ProxyError{429, "rate_limit_error", "rate_limited", "the provider is rate limiting: " + shown, 5};
    case 503:
      return ProxyError{503, "upstream_error", "unavailable", "the provider is unavailable: " + shown, 0};
    default:
      return ProxyError{502, "upstream_error", "upstream_status_" + std::to_string(status),
                        "the provider returned HTTP " + std::to_string(status) + ": " + shown, 0};
  }
}

// Response keys, and encapsulations per instance key, made ahead: enough for the requests a few
// threads start between two idle moments.
constexpr std::size_t kMadeAhead = 4;

ChutesProvider::ChutesProvider(boost::asio::any_io_executor executor, http::Client& client, ChutesOptions options)
    : executor_(executor),
      client_(client),
      options_(std::move(options)),
      catalog_(executor, client, CatalogOptions{options_.models_upstream, std::chrono::seconds(300), options_.allow_non_confidential}),
      pools_(executor, client, PoolOptions{options_.api_upstream, std::chrono::seconds(5), std::chrono::seconds(55),
                                           options_.discoveries_per_minute, 0.3}),
      response_keys_(executor, kMadeAhead),
      encapsulations_(executor, kMadeAhead) {}

ChutesProvider::~ChutesProvider() = default;

boost::asio::awaitable<std::variant<CallResult, ProxyError>> ChutesProvider::call(E2eeCall c) {
  // One index of the body serves the thinking controls, the affinity and every sealing attempt
  // below; it is rebuilt only when the body changes (rare: a suffix, a decided thinking value, a
  // model alias).
  std::string body = std::move(c.body);
  // The chat dialect has indexed (and so validated) the body already; others leave it to us.
  Result<json_text::ObjectMembers> members =
      c.members ? Result<json_text::ObjectMembers>(c.members->moved_to(body)) : json_text::ObjectMembers::index(body);
  if (!members) co_return bad_request("invalid_json", "invalid JSON body: " + members.error().message);
  auto reindex = [&](std::string changed) -> bool {
    body = std::move(changed);
    members = json_text::ObjectMembers::index(body);
    return static_cast<bool>(members);
  };

  // The API would apply Chutes' thinking controls on the normal path, but it cannot see an
  // encrypted body, so they are applied here, before the model name is resolved.
  auto thinking = apply_thinking_controls(c.model, *members, c.enable_thinking, c.path == "/v1/chat/completions");
  if (!thinking) co_return bad_request("invalid_json", "invalid JSON body: " + thinking.error().message);
  c.model = std::move(thinking->model);
  if (thinking->body && !reindex(std::move(*thinking->body)))
    co_return bad_request("invalid_json", "invalid JSON body: " + members.error().message);

  auto resolved = co_await catalog_.resolve(c.model, c.api_key);
  if (auto* err = std::get_if<ProxyError>(&resolved)) co_return std::move(*err);
  const ModelInfo info = std::get<ModelInfo>(std::move(resolved));

  if (info.id != c.model) {
    // The engine knows the canonical name only (the user may have written a chute id or root).
    auto rewritten = members->with_member("model", json_text::quote(info.id));
    if (!rewritten) co_return bad_request("invalid_json", "invalid JSON body: " + rewritten.error().message);
    if (!reindex(std::move(*rewritten)))
      co_return bad_request("invalid_json", "invalid JSON body: " + members.error().message);
  }
  const std::uint64_t affinity = conversation_affinity(info.id, &*members);

  // Recovery, each at most once: a rejected nonce (the reference's single retry), a stale instance
  // key (the instance restarted: rediscover), a vanished instance (drop it; if the next one is gone
  // too, rediscover everything). Every attempt spends a nonce, so the total is bounded at three.
  bool nonce_retried = false, rediscovered = false, dropped_instance = false, resent = false;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto leased = co_await pools_.acquire(c.api_key, info.chute_id, affinity);
    if (auto* err = std::get_if<ProxyError>(&leased)) co_return std::move(*err);
    Lease lease = std::get<Lease>(std::move(leased));

    auto sealed = envelope::seal_request(encapsulations_.take(lease.key), *members, response_keys_.take(),
                                         options_.gzip_level);
    if (!sealed) co_return ProxyError{500, "proxy_error", "encryption_failed", "encryption failed: " + sealed.error().message, 0};

    http::ClientRequest req;
    req.method = "POST";
    req.origin = options_.api_upstream;
    req.target = options_.api_upstream.target("/e2e/invoke");
    req.headers.set("Authorization", "Bearer " + c.api_key);
    req.headers.set("X-Chute-Id", info.chute_id);
    req.headers.set("X-Instance-Id", lease.instance_id);
    req.headers.set("X-E2E-Nonce", lease.nonce);
    req.headers.set("X-E2E-Stream", c.stream ? "true" : "false");
    req.headers.set("X-E2E-Path", c.path);
    req.headers.set("Content-Type", "application/octet-stream");
    req.body.assign(as_text(sealed->blob));  // one memcpy, not a loop over bytes
    req.cancel = c.cancel;

    auto opened = co_await client_.open(std::move(req));
    if (!opened && opened.error().code == Errc::not_answered && !resent && attempt < 2) {
      // A pooled connection the server closed as the request went out: sealed again to a fresh
      // nonce (the old one may or may not have been consumed), never replayed.
      log::debug("reused connection closed unanswered; sending again", {{"instance", lease.instance_id}});
      resent = true;
      continue;
    }
    if (!opened) co_return transport_error("upstream request failed", opened.error());
    auto& upstream = *opened;
    const int status = upstream->status();
    if (status == 200 && c.stream) {
      log::debug("invoke stream", {{"instance", lease.instance_id}, {"model", info.id}});
      co_return CallResult{{}, std::make_unique<ChutesEventStream>(std::move(upstream), std::move(sealed->response_key))};
    }
    auto payload = co_await upstream->read_all();
    if (!payload) co_return transport_error("reading the provider's response failed", payload.error());
    if (status == 200) {
      auto plain = envelope::open_response(sealed->response_key, as_bytes(*payload));
      if (!plain)
        co_return upstream_error(502, "response_decryption_failed", "failed to decrypt response: " + plain.error().message);
      co_return CallResult{std::move(*plain), nullptr};
    }
    const bool last = attempt == 2;
    if (!last && !nonce_retried && is_nonce_rejection(status, *payload)) {
      log::info("nonce rejected; rediscovering", {{"instance", lease.instance_id}});
      nonce_retried = true;
      pools_.invalidate(c.api_key, info.chute_id);
      continue;
    }
    if (!last && !rediscovered && is_stale_key(status, *payload)) {
      log::info("instance key changed; rediscovering", {{"instance", lease.instance_id}});
      rediscovered = true;
      pools_.invalidate(c.api_key, info.chute_id);
      continue;
    }
    if (!last && !rediscovered && is_instance_failure(status, *payload)) {
      log::info("instance unusable; trying another", {{"instance", lease.instance_id}, {"status", status}});
      if (dropped_instance) {
        rediscovered = true;
        pools_.invalidate(c.api_key, info.chute_id);
      } else {
        dropped_instance = true;
        pools_.drop_instance(c.api_key, info.chute_id, lease.instance_id);
      }
      continue;
    }
    co_return map_invoke_error(status, *payload, &sealed->response_key);
  }
  co_return upstream_error(502, "retry_exhausted", "the E2EE request failed again after refreshing nonces and instances");
}

boost::asio::awaitable<http::Response> ChutesProvider::list_models(const http::Request&, std::string api_key) {
  http::ClientRequest req;
  req.method = "GET";
  req.origin = options_.models_upstream;
  req.target = options_.models_upstream.target("/v1/models");
  if (!api_key.empty()) req.headers.set("Authorization", "Bearer " + api_key);
  req.headers.set("Accept", "application/json");
  auto response = co_await client_.send(std::move(req));
  if (!response)
    co_return render_openai_error(transport_error("model list request failed", response.error()));
  http::Response out;
  out.status = response->status;
  out.headers.set("Content-Type", response->headers.get("Content-Type").value_or("application/json"));
  out.body = std::move(response->body);
  co_return out;
}

}  // namespace e2ee::proxy::chutes

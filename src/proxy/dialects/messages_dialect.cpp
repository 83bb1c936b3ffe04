// Anthropic Messages (Claude Code, the Anthropic SDKs) ⇄ chat completions, through
// src/api/anthropic: /v1/messages and /v1/messages/count_tokens.

#include "api/anthropic/messages.hpp"
#include "proxy/dialect.hpp"
#include "proxy/dialects/chat_call.hpp"

namespace e2ee::proxy {
namespace {

http::Response anthropic_error_response(const ProxyError& error) {
  const api::ApiError shaped = api::anthropic::to_anthropic_error(error);
  http::Response r;
  r.status = shaped.status;
  r.headers.set("Content-Type", "application/json");
  if (shaped.retry_after_seconds > 0) r.headers.set("Retry-After", std::to_string(shaped.retry_after_seconds));
  r.body = api::anthropic_error_json(shaped);
  return r;
}

http::Response json_ok(std::string body) {
  http::Response r;
  r.headers.set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

class MessagesShaper final : public StreamShaper {
 public:
  explicit MessagesShaper(const api::anthropic::TranslatedRequest& request) : translator_(request) {}
  api::OutEvents start() override { return translator_.start(); }
  api::OutEvents on_event(std::string_view data) override { return translator_.on_chunk(data); }
  api::OutEvents on_done() override { return translator_.on_done(); }
  api::OutEvents on_error(const ProxyError& error) override { return translator_.on_error(error); }
  // Anthropic streams carry their own keep-alive event; clients skip it wherever it appears.
  std::string keepalive() const override { return format_event(translator_.ping()); }

 private:
  api::anthropic::StreamTranslator translator_;
};

class MessagesDialect final : public Dialect {
 public:
  std::variant<E2eeCall, ProxyError> prepare(http::Request& request, std::string api_key) override {
    api::anthropic::RequestOptions options;
    options.fallback_id = random_token(24);
    auto translated = api::anthropic::to_chat_request(request.body, options);
    if (auto* error = std::get_if<api::ApiError>(&translated)) return std::move(*error);
    translated_ = std::get<api::anthropic::TranslatedRequest>(std::move(translated));
    return chat_completions_call(*translated_, std::move(api_key));
  }

  http::Response render_body(std::string engine_json) override {
    auto message = api::anthropic::to_messages_response(engine_json, *translated_);
    if (auto* error = std::get_if<api::ApiError>(&message)) return render_error(*error);
    return json_ok(std::get<std::string>(std::move(message)));
  }

  std::unique_ptr<StreamShaper> make_shaper() override { return std::make_unique<MessagesShaper>(*translated_); }
  http::Response render_error(const ProxyError& error) const override { return anthropic_error_response(error); }

 private:
  std::optional<api::anthropic::TranslatedRequest> translated_;
};

// Errors that mean "this engine cannot tokenize" rather than "this request may not go there":
// only those fall back to the local estimate. Model resolution, TEE gating, keys and rate limits
// are reported, never papered over with a guess.
bool tokenizer_unavailable(const ProxyError& error) {
  if (error.status != 400 && error.status != 403 && error.status != 404 && error.status != 405 && error.status != 501)
    return false;
  for (const char* code : {"model_not_found", "model_not_confidential", "model_not_verifiable", "missing_model",
                           "invalid_api_key", "missing_api_key", "model_unavailable"})
    if (error.code == code) return false;
  return true;
}

// count_tokens: the body is as sensitive as a prompt, so it is counted inside the TEE by the
// engine's /tokenize, through the same encrypted channel. Only when the engine cannot tokenize is
// a local estimate returned, marked by the X-E2EE-Token-Count: estimate header (docs/translation.md).
class CountTokensDialect final : public Dialect {
 public:
  std::variant<E2eeCall, ProxyError> prepare(http::Request& request, std::string api_key) override {
    auto tokenize = api::anthropic::to_tokenize_request(request.body, options_);
    if (auto* error = std::get_if<api::ApiError>(&tokenize)) return std::move(*error);
    auto translated = api::anthropic::to_chat_request(request.body, options_);
    if (auto* error = std::get_if<api::ApiError>(&translated)) return std::move(*error);
    body_ = std::move(request.body);
    E2eeCall call;
    call.path = "/tokenize";
    call.body = std::get<std::string>(std::move(tokenize));
    call.model = std::get<api::anthropic::TranslatedRequest>(translated).model;
    call.stream = false;
    call.api_key = std::move(api_key);
    return call;
  }

  http::Response render_body(std::string engine_json) override {
    auto counted = api::anthropic::to_count_tokens_response(engine_json);
    if (auto* error = std::get_if<api::ApiError>(&counted)) return render_error(*error);
    auto r = json_ok(std::get<std::string>(std::move(counted)));
    r.headers.set("X-E2EE-Token-Count", "engine");
    return r;
  }

  std::optional<http::Response> recover(const ProxyError& error) override {
    if (!tokenizer_unavailable(error)) return std::nullopt;
    auto estimate = api::anthropic::estimate_count_tokens_response(body_, options_);
    if (std::holds_alternative<api::ApiError>(estimate)) return std::nullopt;
    auto r = json_ok(std::get<std::string>(std::move(estimate)));
    r.headers.set("X-E2EE-Token-Count", "estimate");
    return r;
  }

  std::unique_ptr<StreamShaper> make_shaper() override { return nullptr; }  // never streams
  http::Response render_error(const ProxyError& error) const override { return anthropic_error_response(error); }

 private:
  api::anthropic::RequestOptions options_;
  std::string body_;
};

}  // namespace

std::unique_ptr<Dialect> make_messages_dialect() { return std::make_unique<MessagesDialect>(); }
std::unique_ptr<Dialect> make_count_tokens_dialect() { return std::make_unique<CountTokensDialect>(); }

}  // namespace e2ee::proxy

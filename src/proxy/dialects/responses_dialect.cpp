// OpenAI Responses (Codex) ⇄ chat completions, through src/api/responses.

#include <ctime>

#include "api/responses/request_translator.hpp"
#include "api/responses/response_translator.hpp"
#include "api/responses/stream_translator.hpp"
#include "proxy/dialect.hpp"
#include "proxy/dialects/chat_call.hpp"

namespace e2ee::proxy {
namespace {

class ResponsesShaper final : public StreamShaper {
 public:
  explicit ResponsesShaper(const api::responses::TranslatedRequest& request) : translator_(request) {}
  api::OutEvents start() override { return translator_.start(); }
  api::OutEvents on_event(std::string_view data) override { return translator_.on_chunk(data); }
  api::OutEvents on_done() override { return translator_.on_done(); }
  api::OutEvents on_error(const ProxyError& error) override { return translator_.on_error(error); }

 private:
  api::responses::StreamTranslator translator_;
};

class ResponsesDialect final : public Dialect {
 public:
  std::variant<E2eeCall, ProxyError> prepare(http::Request& request, std::string api_key) override {
    api::responses::RequestOptions options;
    options.id_token = random_token(24);
    options.created_at = static_cast<std::int64_t>(std::time(nullptr));
    auto translated = api::responses::to_chat_request(request.body, options);
    if (auto* error = std::get_if<api::ApiError>(&translated)) return std::move(*error);
    translated_ = std::get<api::responses::TranslatedRequest>(std::move(translated));
    return chat_completions_call(*translated_, std::move(api_key));
  }

  http::Response render_body(std::string engine_json) override {
    auto response = api::responses::to_response(engine_json, *translated_);
    if (auto* error = std::get_if<api::ApiError>(&response)) return render_error(*error);
    http::Response r;
    r.headers.set("Content-Type", "application/json");
    r.body = std::get<std::string>(std::move(response));
    return r;
  }

  std::unique_ptr<StreamShaper> make_shaper() override { return std::make_unique<ResponsesShaper>(*translated_); }

  // Before a stream starts, Responses errors have the OpenAI shape (translation.md §1).
  http::Response render_error(const ProxyError& error) const override { return render_openai_error(error); }

 private:
  std::optional<api::responses::TranslatedRequest> translated_;
};

}  // namespace

std::unique_ptr<Dialect> make_responses_dialect() { return std::make_unique<ResponsesDialect>(); }

}  // namespace e2ee::proxy

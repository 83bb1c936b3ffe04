// OpenAI chat/completions (and every other /v1/* path): the client's JSON goes to the engine
// unchanged, the engine's JSON and events come back unchanged.

#include "common/json_text.hpp"
#include "crypto/random.hpp"
#include "proxy/dialect.hpp"

namespace e2ee::proxy {
namespace {

// Two things the usage-only chunk's text must contain: an empty array, and the key "usage",
// literally or (with a backslash somewhere) spelled with escapes. Nearly every chunk lacks the
// first, and indexing each one instead was ~5 % of the proxy's CPU on streams (perf).
bool may_be_usage_only_chunk(std::string_view data) {
  bool empty_array = false;
  for (auto open = data.find('['); open != std::string_view::npos && !empty_array; open = data.find('[', open + 1)) {
    const auto next = data.find_first_not_of(" \t\n\r", open + 1);
    empty_array = next != std::string_view::npos && data[next] == ']';
  }
  return empty_array && (data.find("usage") != std::string_view::npos || data.find('\\') != std::string_view::npos);
}

// True for {"choices":[], "usage":…}: the usage-only chunk that ends a stream with include_usage.
bool is_usage_only_chunk(std::string_view data) {
  if (!may_be_usage_only_chunk(data)) return false;
  auto members = json_text::ObjectMembers::index(data);
  if (!members || members->value("usage").empty()) return false;
  const std::string_view choices = members->value("choices");
  if (choices.size() < 2 || choices.front() != '[') return false;
  for (char c : choices.substr(1, choices.size() - 2))
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return false;
  return true;
}

class ChatShaper final : public StreamShaper {
 public:
  // The TEE side forces stream_options.include_usage (Chutes bills from it; our gateway lets the
  // client see usage), so the usage-only chunk arrives even when the client did not ask for it;
  // OpenAI sends it only on request, and clients that read choices[0] of every chunk crash on it.
  explicit ChatShaper(bool client_wants_usage) : client_wants_usage_(client_wants_usage) {}

  api::OutEvents on_event(std::string_view data) override {
    if (!client_wants_usage_ && is_usage_only_chunk(data)) return {};
    api::OutEvents out;  // not an initializer list, which would copy the event's text once more
    out.push_back(api::OutEvent{{}, std::string(data)});
    return out;
  }
  api::OutEvents on_done() override { return {api::OutEvent{{}, "[DONE]"}}; }
  // A failed stream ends with an error event and [DONE], never silently (translation.md §1).
  api::OutEvents on_error(const ProxyError& error) override {
    return {api::OutEvent{{}, api::openai_error_json(error)}, api::OutEvent{{}, "[DONE]"}};
  }

 private:
  bool client_wants_usage_;
};

class ChatDialect final : public Dialect {
 public:
  std::variant<E2eeCall, ProxyError> prepare(http::Request& request, std::string api_key) override {
    if (request.body.empty()) return bad_request("missing_body", "missing request body");
    // One validating pass indexes the members read below (a 450 KB context is not rescanned per key).
    auto members = json_text::ObjectMembers::index(request.body);
    if (!members) {
      // Tell "not JSON" from "JSON, but not an object" (the error path only: validate rescans).
      if (auto valid = json_text::validate(request.body); !valid)
        return bad_request("invalid_json", "invalid JSON body: " + valid.error().message);
      return bad_request("invalid_json", "the request body must be a JSON object");
    }
    std::optional<std::string> model;
    if (const auto model_text = members->value("model"); !model_text.empty()) {
      auto value = json_text::unquote(model_text);
      if (value) model = std::move(*value);
    }
    if (!model || model->empty()) return bad_request("missing_model", "missing 'model' field");
    // Chutes decides streaming twice — the API from X-E2E-Stream, the instance from the body with
    // Python truthiness — so anything but a JSON boolean could make the two disagree.
    const std::string_view stream = members->value("stream");
    if (!stream.empty() && stream != "true" && stream != "false" && stream != "null")
      return bad_request("invalid_stream", "'stream' must be true or false");

    const std::string_view stream_options = members->value("stream_options");
    client_wants_usage_ = !stream_options.empty() && stream_options.front() == '{' &&
                          json_text::member_value(stream_options, "include_usage") == "true";

    E2eeCall call;
    call.path = request.path;
    call.stream = stream == "true";
    call.model = std::move(*model);
    call.body = std::move(request.body);
    call.members = std::move(*members);  // views into the bytes call.body now holds
    call.api_key = std::move(api_key);
    return call;
  }

  http::Response render_body(std::string engine_json) override {
    http::Response r;
    r.headers.set("Content-Type", "application/json");
    r.body = std::move(engine_json);
    return r;
  }

  std::unique_ptr<StreamShaper> make_shaper() override { return std::make_unique<ChatShaper>(client_wants_usage_); }

  http::Response render_error(const ProxyError& error) const override { return render_openai_error(error); }

 private:
  bool client_wants_usage_ = false;
};

}  // namespace

std::unique_ptr<Dialect> make_chat_dialect() { return std::make_unique<ChatDialect>(); }

std::string random_token(std::size_t length) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string out;
  out.reserve(length);
  std::uint8_t bytes[32];
  while (out.size() < length) {
    crypto::random_bytes(bytes);
    // 62 symbols from a byte: values >= 248 are skipped so every symbol is equally likely.
    for (std::uint8_t b : bytes)
      if (b < 248 && out.size() < length) out += kAlphabet[b % 62];
  }
  return out;
}

http::Headers sse_headers() {
  http::Headers h;
  h.set("Content-Type", "text/event-stream");
  h.set("Cache-Control", "no-cache");
  h.set("X-Accel-Buffering", "no");
  return h;
}

}  // namespace e2ee::proxy

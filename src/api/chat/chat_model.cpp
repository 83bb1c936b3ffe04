#include "api/chat/chat_model.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <limits>

namespace e2ee::api::chat {

namespace {

namespace json = boost::json;

Error malformed(std::string what) { return make_error(Errc::malformed, "chat completion: " + std::move(what)); }

// A string member, or "" when absent, null or not a string.
std::string str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string());
}

// A non-negative count from an integer or an integral float; 0 otherwise (absent, null, junk).
std::int64_t count(const json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->get_int64() > 0 ? v->get_int64() : 0;
  if (v->is_uint64()) {
    const auto u = v->get_uint64();
    return u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
               ? std::numeric_limits<std::int64_t>::max()
               : static_cast<std::int64_t>(u);
  }
  if (v->is_double()) {
    const double d = v->get_double();
    if (!std::isfinite(d) || d <= 0 || d >= 9.0e18) return 0;
    return static_cast<std::int64_t>(d);
  }
  return 0;
}

std::int64_t count(const json::object& o, std::string_view key) { return count(o.if_contains(key)); }

Usage parse_usage(const json::object& u) {
  Usage usage;
  usage.prompt_tokens = count(u, "prompt_tokens");
  usage.completion_tokens = count(u, "completion_tokens");
  usage.total_tokens = count(u, "total_tokens");
  if (const auto* d = u.if_contains("prompt_tokens_details"); d != nullptr && d->is_object()) {
    usage.cached_tokens = count(d->get_object(), "cached_tokens");
  }
  if (const auto* d = u.if_contains("completion_tokens_details"); d != nullptr && d->is_object()) {
    usage.reasoning_tokens = count(d->get_object(), "reasoning_tokens");
  }
  if (usage.total_tokens == 0) usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  return usage;
}

// Text content: a string, or an array of parts whose text is joined (some engines answer in the
// content-parts shape). Returns false when there is no usable content.
bool read_content(const json::value* v, std::string& out) {
  if (v == nullptr) return false;
  if (v->is_string()) {
    out = std::string(v->get_string());
    return true;
  }
  if (!v->is_array()) return false;
  bool any = false;
  for (const auto& part : v->get_array()) {
    if (part.is_string()) {
      out.append(part.get_string());
      any = true;
    } else if (part.is_object()) {
      if (const auto* t = part.get_object().if_contains("text"); t != nullptr && t->is_string()) {
        out.append(t->get_string());
        any = true;
      }
    }
  }
  return any;
}

Result<std::vector<ToolCall>> parse_tool_calls(const json::value& v, std::string_view where) {
  std::vector<ToolCall> calls;
  if (v.is_null()) return calls;
  if (!v.is_array()) return malformed(std::string(where) + ".tool_calls is not an array");
  int position = 0;
  for (const auto& item : v.get_array()) {
    if (!item.is_object()) return malformed(std::string(where) + ".tool_calls[] is not an object");
    const auto& o = item.get_object();
    ToolCall call;
    call.index = position;
    if (const auto* i = o.if_contains("index"); i != nullptr && (i->is_int64() || i->is_uint64())) {
      const auto n = count(i);
      call.index = n > 1000000 ? 1000000 : static_cast<int>(n);
    }
    call.id = str(o, "id");
    if (const auto* f = o.if_contains("function"); f != nullptr && f->is_object()) {
      const auto& fn = f->get_object();
      call.name = str(fn, "name");
      if (const auto* a = fn.if_contains("arguments"); a != nullptr) {
        if (a->is_string()) {
          call.arguments = std::string(a->get_string());
        } else if (a->is_object()) {
          call.arguments = json::serialize(*a);  // non-standard engines: an object, not text
        }
      }
    }
    calls.push_back(std::move(call));
    ++position;
  }
  return calls;
}

void read_error(const json::object& root, Completion& out) {
  const json::object* e = nullptr;
  if (const auto* v = root.if_contains("error"); v != nullptr) {
    if (v->is_string()) {
      out.error_message = std::string(v->get_string());
      return;
    }
    if (v->is_object()) e = &v->get_object();
  } else if (str(root, "object") == "error") {
    e = &root;  // vLLM's ErrorResponse before it was nested under "error"
  }
  if (e == nullptr) return;
  std::string message = str(*e, "message");
  if (message.empty()) message = "the engine reported an error";
  out.error_message = std::move(message);
  out.error_type = str(*e, "type");
  if (const auto* c = e->if_contains("code"); c != nullptr) {
    if (c->is_string()) {
      out.error_code = std::string(c->get_string());
    } else if (c->is_int64() || c->is_uint64()) {
      const auto n = count(c);
      out.error_code = std::to_string(n);
      if (n >= 400 && n <= 599) out.error_status = static_cast<int>(n);
    }
  }
}

Result<Completion> parse(std::string_view text, bool chunk) {
  json::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return malformed("not valid JSON");
  if (!root.is_object()) return malformed("the top level is not an object");
  const auto& o = root.get_object();

  Completion out;
  out.id = str(o, "id");
  out.model = str(o, "model");
  out.created = count(o, "created");
  read_error(o, out);
  if (const auto* u = o.if_contains("usage"); u != nullptr && u->is_object()) out.usage = parse_usage(u->get_object());

  const json::value* choices = o.if_contains("choices");
  if (choices == nullptr || choices->is_null()) return out;
  if (!choices->is_array()) return malformed("choices is not an array");
  int position = 0;
  for (const auto& c : choices->get_array()) {
    if (!c.is_object()) return malformed("choices[] is not an object");
    const auto& co = c.get_object();
    Choice choice;
    choice.index = position++;
    if (const auto* i = co.if_contains("index"); i != nullptr && (i->is_int64() || i->is_uint64())) {
      const auto n = count(i);
      choice.index = n > 1000000 ? 1000000 : static_cast<int>(n);
    }
    if (const auto* f = co.if_contains("finish_reason"); f != nullptr && f->is_string()) {
      choice.finish_reason = std::string(f->get_string());
    }
    if (const auto* s = co.if_contains("stop_reason"); s != nullptr && s->is_string()) {
      choice.matched_stop = std::string(s->get_string());
    } else if (const auto* m = co.if_contains("matched_stop"); m != nullptr && m->is_string()) {
      choice.matched_stop = std::string(m->get_string());
    }

    const char* field = chunk ? "delta" : "message";
    const json::value* body = co.if_contains(field);
    if (chunk && (body == nullptr || body->is_null())) {
      field = "message";
      body = co.if_contains(field);
    }
    if (body != nullptr && !body->is_null()) {
      if (!body->is_object()) return malformed(std::string("choices[].") + field + " is not an object");
      const auto& m = body->get_object();
      choice.has_content = read_content(m.if_contains("content"), choice.content);
      choice.reasoning = str(m, "reasoning_content");
      if (choice.reasoning.empty()) choice.reasoning = str(m, "reasoning");
      choice.refusal = str(m, "refusal");
      if (const auto* t = m.if_contains("tool_calls"); t != nullptr) {
        auto calls = parse_tool_calls(*t, std::string("choices[].") + field);
        if (!calls) return std::move(calls).error();
        choice.tool_calls = std::move(*calls);
      }
    }
    out.choices.push_back(std::move(choice));
  }
  return out;
}

}  // namespace

Result<Completion> parse_completion(std::string_view json) { return parse(json, false); }

Result<Completion> parse_chunk(std::string_view json) { return parse(json, true); }

namespace {

bool mentions_context_length(std::string_view message, std::string_view code) {
  if (code == "context_length_exceeded" || code == "exceed_context_size_error") return true;
  std::string lower(message);
  for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (std::string_view needle : {"maximum context length", "context length", "context_length", "maximum model length",
                                  "context size", "context window", "prompt is too long"}) {
    if (lower.find(needle) != std::string::npos) return true;
  }
  return false;
}

// Cuts at most `limit` bytes without splitting a UTF-8 sequence.
std::string clip(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return std::string(text);
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return std::string(text.substr(0, n)) + "…";
}

}  // namespace

ApiError engine_error(const Completion& answer, int http_status) {
  int status = answer.error_status;
  if (status < 400 || status > 599) status = http_status >= 400 && http_status <= 599 ? http_status : 502;
  if (status >= 500 && status != 503) status = 502;
  const std::string message = answer.error_message ? clip(*answer.error_message, 1000) : "the engine reported an error";
  std::string code = "engine_error";
  if (mentions_context_length(message, answer.error_code)) {
    code = "context_length_exceeded";
    if (status >= 500) status = 400;
  } else if (!answer.error_code.empty() && answer.error_status == 0) {
    code = answer.error_code;
  }
  std::string type = status == 429 ? "rate_limit_error" : status >= 500 ? "upstream_error" : "invalid_request_error";
  // The engine's own Retry-After does not survive the encrypted hop; SDKs back off on the header,
  // so a rate limit always carries one (the same 5 s the providers' 429s get).
  const int retry_after = status == 429 ? kEngineRetryAfterSeconds : 0;
  return ApiError{status, std::move(type), std::move(code), message, retry_after};
}

ApiError engine_error_from_body(int http_status, std::string_view body) {
  auto parsed = parse_completion(body);
  if (parsed && parsed->error_message) return engine_error(*parsed, http_status);
  Completion none;
  none.error_message = "the engine answered HTTP " + std::to_string(http_status);
  return engine_error(none, http_status);
}

}  // namespace e2ee::api::chat

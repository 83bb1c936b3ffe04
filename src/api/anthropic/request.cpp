// Messages request → chat-completions request. The output is written as text: client values that
// pass through (numbers, schemas, tool inputs, string literals) are copied byte for byte from the
// raw view, everything else is built here.

#include <cstdint>
#include <set>

#include "api/anthropic/detail.hpp"
#include "common/raw_json.hpp"

namespace e2ee::api::anthropic {

namespace {

using e2ee::RawJson;
using e2ee::RawValue;
using detail::put_string;

// Every rejection is a 400 naming the field the way Anthropic's own errors do ("messages.1.content.0").
ApiError invalid(const std::string& path, const std::string& what, std::string code = "invalid_request") {
  return bad_request(std::move(code), path.empty() ? what : path + ": " + what);
}

std::string type_name(const RawValue& v) {
  switch (v.type()) {
    case RawValue::Type::null: return "null";
    case RawValue::Type::boolean: return "a boolean";
    case RawValue::Type::number: return "a number";
    case RawValue::Type::string: return "a string";
    case RawValue::Type::array: return "an array";
    case RawValue::Type::object: return "an object";
  }
  return "a value";
}

// Claude Code's per-request attribution block (see RequestOptions::drop_attribution_block).
bool is_attribution_block(std::string_view text) { return text.rfind("x-anthropic-billing-header:", 0) == 0; }

// FNV-1a: a stable, dependency-free hash for shortened tool names (not a security property).
std::uint32_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

// One content part of a chat user message.
struct Part {
  bool is_text = false;
  std::string text;  // for text parts
  std::string json;  // the part as JSON
};

Part text_part(std::string text) {
  Part p;
  p.is_text = true;
  p.json = "{\"type\":\"text\",\"text\":" + json_text::quote(text) + "}";
  p.text = std::move(text);
  return p;
}

class Translator {
 public:
  explicit Translator(const RequestOptions& options) : options_(options) {}

  std::variant<TranslatedRequest, ApiError> run(std::string_view body);

 private:
  std::optional<ApiError> read_system(const RawValue& system);
  std::optional<ApiError> read_tools(const RawValue& tools);
  std::optional<ApiError> read_tool_choice(const RawValue& choice);
  std::optional<ApiError> read_message(const RawValue& message, std::size_t i, bool last);
  std::optional<ApiError> read_user(const RawValue& content, const std::string& path);
  std::optional<ApiError> read_assistant(const RawValue& content, const std::string& path, bool last);
  std::optional<ApiError> read_system_message(const RawValue& content, const std::string& path);
  // Appends a block that can appear in user content (and, except tool_result, in tool results).
  std::optional<ApiError> read_user_block(const RawValue& block, const std::string& path, std::vector<Part>& parts,
                                          bool in_tool_result = false);
  std::optional<ApiError> read_image(const RawValue& block, const std::string& path, std::vector<Part>& parts);
  std::optional<ApiError> read_document(const RawValue& block, const std::string& path, std::vector<Part>& parts,
                                       bool in_tool_result = false);
  std::optional<ApiError> read_tool_result(const RawValue& block, const std::string& path, std::vector<Part>& images);
  std::optional<ApiError> read_thinking(const RawValue* thinking, const RawValue* output_config);
  std::optional<ApiError> read_sampling(const RawValue& root);

  std::string engine_tool_name(const std::string& client);
  void note(std::string text) { result_.notes.push_back(std::move(text)); }
  std::string user_message(const std::vector<Part>& parts) const;

  const RequestOptions& options_;
  TranslatedRequest result_;

  std::vector<std::string> system_texts_;
  std::vector<std::string> messages_;  // chat messages as JSON, after the system message
  std::set<std::string> open_tool_ids_;  // tool_use ids of the assistant message just before
  std::set<std::string> tool_names_;      // client names of the tools sent
  std::set<std::string> dropped_tools_;   // client names of tools that were not sent
  std::string tools_json_;
  std::string tool_choice_json_;
  bool parallel_off_ = false;
  std::string sampling_json_;
  std::string extras_json_;  // response_format, reasoning_effort, chat_template_kwargs
  bool prefill_ = false;
  std::int64_t image_bytes_ = 0;
  std::int64_t images_ = 0;
};

std::string Translator::engine_tool_name(const std::string& client) {
  std::size_t limit = options_.max_tool_name_length;
  if (limit == 0 || client.size() <= limit) return client;
  limit = std::max<std::size_t>(limit, 16);
  static constexpr char kHex[] = "0123456789abcdef";
  const std::uint32_t h = fnv1a(client);
  std::string suffix = "_";
  for (int shift = 28; shift >= 0; shift -= 4) suffix += kHex[(h >> shift) & 0xF];
  // Cut on a character boundary so the shortened name stays valid UTF-8.
  std::size_t keep = limit - suffix.size();
  while (keep > 0 && (static_cast<unsigned char>(client[keep]) & 0xC0) == 0x80) --keep;
  std::string engine = client.substr(0, keep) + suffix;
  bool known = false;
  for (const auto& n : result_.tool_names) known = known || n.engine == engine;
  if (!known) result_.tool_names.push_back(ToolName{engine, client});
  return engine;
}

std::optional<ApiError> Translator::read_system(const RawValue& system) {
  if (system.is_null()) return std::nullopt;
  if (system.is_string()) {
    auto text = system.str();
    if (!text.empty()) system_texts_.push_back(std::move(text));
    return std::nullopt;
  }
  if (!system.is_array()) return invalid("system", "must be a string or an array of text blocks, not " + type_name(system));
  std::size_t i = 0;
  for (const auto& block : system.elements()) {
    const std::string path = "system." + std::to_string(i++);
    if (!block.is_object() || block.get_string("type") != "text") {
      return invalid(path, "only text blocks are allowed in system");
    }
    auto text = block.get_string("text");
    if (!text) return invalid(path + ".text", "must be a string");
    if (options_.drop_attribution_block && is_attribution_block(*text)) {
      note("system: dropped the client's attribution block");
      continue;
    }
    if (!text->empty()) system_texts_.push_back(std::move(*text));
  }
  return std::nullopt;
}

std::optional<ApiError> Translator::read_tools(const RawValue& tools) {
  if (tools.is_null()) return std::nullopt;
  if (!tools.is_array()) return invalid("tools", "must be an array, not " + type_name(tools));
  std::string out;
  std::size_t i = 0;
  for (const auto& tool : tools.elements()) {
    const std::string path = "tools." + std::to_string(i++);
    if (!tool.is_object()) return invalid(path, "must be an object");
    auto name = tool.get_string("name");
    if (!name || name->empty()) return invalid(path + ".name", "must be a non-empty string");
    if (auto type = tool.get("type"); type && !type->is_null()) {
      if (!type->is_string()) return invalid(path + ".type", "must be a string");
      const std::string t = type->str();
      if (t != "custom") {
        // Server tools (web_search_*, code_execution_*, web_fetch_*, tool_search_*, mcp_toolset) run
        // on Anthropic's side, and Anthropic-schema client tools (bash_*, text_editor_*, computer_*,
        // memory_*) have no schema we could give the engine.
        note("tools: dropped '" + *name + "' of type '" + t + "' (no engine equivalent)");
        dropped_tools_.insert(*name);
        continue;
      }
    }
    if (auto deferred = tool.get("defer_loading"); deferred && deferred->boolean()) {
      if (!options_.include_deferred_tools) {
        note("tools: dropped deferred tool '" + *name + "'");
        dropped_tools_.insert(*name);
        continue;
      }
      note("tools: '" + *name + "' has defer_loading; sent as an ordinary tool");
    }
    std::string parameters = R"({"type":"object","properties":{}})";
    if (auto schema = tool.get("input_schema"); schema && !schema->is_null()) {
      if (!schema->is_object()) return invalid(path + ".input_schema", "must be an object");
      parameters = std::string(schema->raw());
    }
    if (!out.empty()) out += ",";
    out += "{\"type\":\"function\",\"function\":{\"name\":";
    put_string(out, engine_tool_name(*name));
    if (auto description = tool.get("description"); description && description->is_string()) {
      out += ",\"description\":";
      out += description->raw();
    }
    out += ",\"parameters\":";
    out += parameters;
    out += "}}";
    tool_names_.insert(*name);
  }
  if (!out.empty()) tools_json_ = "[" + out + "]";
  return std::nullopt;
}

std::optional<ApiError> Translator::read_tool_choice(const RawValue& choice) {
  if (choice.is_null()) return std::nullopt;
  std::string type;
  if (choice.is_string()) {
    type = choice.str();  // lenient: the OpenAI-style bare string
  } else if (choice.is_object()) {
    auto t = choice.get_string("type");
    if (!t) return invalid("tool_choice.type", "must be one of auto, any, tool, none");
    type = *t;
    if (auto d = choice.get("disable_parallel_tool_use"); d && d->boolean()) parallel_off_ = true;
  } else {
    return invalid("tool_choice", "must be an object");
  }
  if (type == "auto") {
    tool_choice_json_ = "\"auto\"";
  } else if (type == "any" || type == "required") {
    tool_choice_json_ = "\"required\"";
  } else if (type == "none") {
    tool_choice_json_ = "\"none\"";
  } else if (type == "tool" && choice.is_object()) {
    auto name = choice.get_string("name");
    if (!name || name->empty()) return invalid("tool_choice.name", "must be a non-empty string when type is tool");
    if (dropped_tools_.count(*name) != 0) {
      return invalid("tool_choice.name", "tool '" + *name + "' cannot be forced: it is a hosted or deferred tool this proxy does not send to the engine");
    }
    if (tool_names_.count(*name) == 0) return invalid("tool_choice.name", "no tool named '" + *name + "' in tools");
    tool_choice_json_ = "{\"type\":\"function\",\"function\":{\"name\":" + json_text::quote(engine_tool_name(*name)) + "}}";
  } else {
    return invalid("tool_choice.type", "must be one of auto, any, tool, none");
  }
  return std::nullopt;
}

std::optional<ApiError> Translator::read_image(const RawValue& block, const std::string& path, std::vector<Part>& parts) {
  auto source = block.get("source");
  if (!source || !source->is_object()) return invalid(path + ".source", "must be an object");
  const auto type = source->get_string("type").value_or("");
  std::string url;
  if (type == "base64") {
    auto media = source->get_string("media_type");
    auto data = source->get_string("data");
    if (!media || media->empty()) return invalid(path + ".source.media_type", "must be a non-empty string");
    if (!data) return invalid(path + ".source.data", "must be a string");
    url = "data:" + *media + ";base64," + *data;
    image_bytes_ += static_cast<std::int64_t>(url.size());
  } else if (type == "url") {
    auto u = source->get_string("url");
    if (!u || u->empty()) return invalid(path + ".source.url", "must be a non-empty string");
    url = std::move(*u);
  } else if (type == "file") {
    return invalid(path + ".source", "file_id sources (Files API) are not supported; send the image as base64 or url",
                   "unsupported_content");
  } else {
    return invalid(path + ".source.type", "must be base64 or url");
  }
  ++images_;
  Part p;
  p.json = "{\"type\":\"image_url\",\"image_url\":{\"url\":" + json_text::quote(url) + "}}";
  parts.push_back(std::move(p));
  return std::nullopt;
}

std::optional<ApiError> Translator::read_document(const RawValue& block, const std::string& path, std::vector<Part>& parts,
                                                  bool in_tool_result) {
  // Text documents become text; PDFs would need a document part no chat-completions engine
  // shares, so they are refused instead of silently disappearing from the prompt.
  auto source = block.get("source");
  if (!source || !source->is_object()) return invalid(path + ".source", "must be an object");
  const auto type = source->get_string("type").value_or("");
  std::vector<std::string> heading;
  if (auto title = block.get_string("title"); title && !title->empty()) heading.push_back(*title);
  if (auto context = block.get_string("context"); context && !context->empty()) heading.push_back(*context);
  if (type == "text") {
    auto data = source->get_string("data");
    if (!data) return invalid(path + ".source.data", "must be a string");
    heading.push_back(std::move(*data));
    parts.push_back(text_part(join(heading, "\n\n")));
    return std::nullopt;
  }
  if (type == "content") {
    auto content = source->get("content");
    if (!content) return invalid(path + ".source.content", "must be a string or an array of blocks");
    if (!heading.empty()) parts.push_back(text_part(join(heading, "\n\n")));
    if (content->is_string()) {
      parts.push_back(text_part(content->str()));
      return std::nullopt;
    }
    if (!content->is_array()) return invalid(path + ".source.content", "must be a string or an array of blocks");
    std::size_t i = 0;
    for (const auto& inner : content->elements()) {
      const std::string p = path + ".source.content." + std::to_string(i++);
      const auto t = inner.is_object() ? inner.get_string("type").value_or("") : "";
      if (t == "text") {
        auto text = inner.get_string("text");
        if (!text) return invalid(p + ".text", "must be a string");
        parts.push_back(text_part(std::move(*text)));
      } else if (t == "image") {
        if (auto e = read_image(inner, p, parts)) return e;
      } else {
        return invalid(p, "only text and image blocks are allowed in document content");
      }
    }
    return std::nullopt;
  }
  if (type == "base64" || type == "url" || type == "file") {
    if (in_tool_result) {
      // A tool (Claude Code's Read on a PDF) produced it: refusing the request would make every
      // later turn of the session fail too, so the model is told instead.
      note(path + ": PDF/file document in a tool result replaced by a notice");
      parts.push_back(text_part("[document omitted: this model cannot read PDF or file documents]"));
      return std::nullopt;
    }
    return invalid(path, "PDF and file documents are not supported by this proxy's chat-completions engines; "
                         "send the document's text as a text block or a text document (source.type \"text\")",
                   "unsupported_content");
  }
  return invalid(path + ".source.type", "must be text, content, base64, url or file");
}

std::optional<ApiError> Translator::read_user_block(const RawValue& block, const std::string& path, std::vector<Part>& parts,
                                                    bool in_tool_result) {
  const auto type = block.get_string("type").value_or("");
  if (type == "text") {
    auto text = block.get_string("text");
    if (!text) return invalid(path + ".text", "must be a string");
    parts.push_back(text_part(std::move(*text)));
    return std::nullopt;
  }
  if (type == "image") return read_image(block, path, parts);
  if (type == "document") return read_document(block, path, parts, in_tool_result);
  if (type == "search_result") {
    // {source, title, content:[text blocks]}: the model gets the same facts as plain text.
    std::vector<std::string> lines;
    if (auto title = block.get_string("title"); title && !title->empty()) lines.push_back(*title);
    if (auto source = block.get_string("source"); source && !source->empty()) lines.push_back(*source);
    if (auto content = block.get("content"); content && content->is_array()) {
      for (const auto& inner : content->elements()) {
        if (auto text = inner.get_string("text")) lines.push_back(std::move(*text));
      }
    }
    parts.push_back(text_part(join(lines, "\n")));
    return std::nullopt;
  }
  if (type.empty()) return invalid(path + ".type", "must be a string naming the block type");
  return invalid(path + ".type", "unsupported content block type '" + type + "'", "unsupported_content");
}

std::optional<ApiError> Translator::read_tool_result(const RawValue& block, const std::string& path, std::vector<Part>& images) {
  auto id = block.get_string("tool_use_id");
  if (!id || id->empty()) return invalid(path + ".tool_use_id", "must be a non-empty string");
  if (open_tool_ids_.count(*id) == 0) {
    // Chat-completions engines need every tool message to answer a call of the assistant
    // message right before it (OpenAI rejects it, templates misrender it); Anthropic agrees.
    return invalid(path, "tool_result for tool_use_id '" + *id +
                             "' has no matching tool_use block in the immediately preceding assistant message",
                   "orphan_tool_result");
  }
  std::vector<Part> parts;
  if (auto content = block.get("content"); content && !content->is_null()) {
    if (content->is_string()) {
      parts.push_back(text_part(content->str()));
    } else if (content->is_array()) {
      std::size_t i = 0;
      for (const auto& inner : content->elements()) {
        const std::string p = path + ".content." + std::to_string(i++);
        if (!inner.is_object()) return invalid(p, "must be an object");
        if (inner.get_string("type") == "tool_result") return invalid(p + ".type", "tool_result cannot be nested");
        if (auto e = read_user_block(inner, p, parts, true)) return e;
      }
    } else {
      return invalid(path + ".content", "must be a string or an array of blocks");
    }
  }
  std::vector<std::string> texts;
  std::size_t moved = 0;
  for (auto& p : parts) {
    if (p.is_text) {
      texts.push_back(std::move(p.text));
    } else {
      images.push_back(std::move(p));  // tool messages are text-only on chat engines
      ++moved;
    }
  }
  std::string text = join(texts, "\n");
  if (moved > 0) {
    if (!text.empty()) text += "\n";
    text += "(" + std::to_string(moved) +
            (moved == 1 ? " image from this tool result follows" : " images from this tool result follow") +
            " in the next user message)";
  }
  if (auto is_error = block.get("is_error"); is_error && is_error->boolean()) text = text.empty() ? "Error" : "Error: " + text;
  std::string m = "{\"role\":\"tool\",\"tool_call_id\":";
  put_string(m, *id);
  m += ",\"content\":";
  put_string(m, text);
  m += "}";
  messages_.push_back(std::move(m));
  return std::nullopt;
}

std::string Translator::user_message(const std::vector<Part>& parts) const {
  std::string m = "{\"role\":\"user\",\"content\":";
  if (parts.size() == 1 && parts[0].is_text) {
    put_string(m, parts[0].text);
  } else {
    m += "[";
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) m += ",";
      m += parts[i].json;
    }
    m += "]";
  }
  m += "}";
  return m;
}

std::optional<ApiError> Translator::read_user(const RawValue& content, const std::string& path) {
  std::vector<Part> parts;
  std::vector<Part> tool_images;
  if (content.is_string()) {
    parts.push_back(text_part(content.str()));
  } else {
    std::size_t i = 0;
    for (const auto& block : content.elements()) {
      const std::string p = path + ".content." + std::to_string(i++);
      if (!block.is_object()) return invalid(p, "must be an object");
      const auto type = block.get_string("type").value_or("");
      if (type == "tool_result") {
        if (auto e = read_tool_result(block, p, tool_images)) return e;
      } else if (type == "thinking" || type == "redacted_thinking") {
        continue;  // not valid in a user turn; harmless to drop
      } else if (type == "tool_use") {
        return invalid(p + ".type", "tool_use blocks belong in assistant messages");
      } else if (auto e = read_user_block(block, p, parts)) {
        return e;
      }
    }
  }
  open_tool_ids_.clear();
  // Tool messages were appended first; images from tool results lead the user message after them.
  tool_images.insert(tool_images.end(), std::make_move_iterator(parts.begin()), std::make_move_iterator(parts.end()));
  if (!tool_images.empty()) messages_.push_back(user_message(tool_images));
  return std::nullopt;
}

std::optional<ApiError> Translator::read_assistant(const RawValue& content, const std::string& path, bool last) {
  std::vector<std::string> texts;
  std::vector<std::string> thinking;
  std::string calls;
  open_tool_ids_.clear();
  if (content.is_string()) {
    texts.push_back(content.str());
  } else {
    std::size_t i = 0;
    for (const auto& block : content.elements()) {
      const std::string p = path + ".content." + std::to_string(i++);
      if (!block.is_object()) return invalid(p, "must be an object");
      const auto type = block.get_string("type").value_or("");
      if (type == "text") {
        auto text = block.get_string("text");
        if (!text) return invalid(p + ".text", "must be a string");
        texts.push_back(std::move(*text));
      } else if (type == "thinking") {
        // A signature is never forwarded; ours (display "omitted") carries the reasoning back.
        if (auto text = block.get_string("thinking"); text && !text->empty()) {
          thinking.push_back(std::move(*text));
        } else if (auto carried = detail::reasoning_from_signature(block.get_string("signature").value_or(""))) {
          if (!carried->empty()) thinking.push_back(std::move(*carried));
        }
      } else if (type == "redacted_thinking") {
        continue;  // encrypted for Anthropic's models only
      } else if (type == "tool_use") {
        auto id = block.get_string("id");
        auto name = block.get_string("name");
        if (!id || id->empty()) return invalid(p + ".id", "must be a non-empty string");
        if (!name || name->empty()) return invalid(p + ".name", "must be a non-empty string");
        std::string input = "{}";
        if (auto in = block.get("input"); in && !in->is_null()) {
          if (!in->is_object()) return invalid(p + ".input", "must be an object");
          input = std::string(in->raw());
        }
        if (!calls.empty()) calls += ",";
        calls += "{\"id\":" + json_text::quote(*id) + ",\"type\":\"function\",\"function\":{\"name\":" +
                 json_text::quote(engine_tool_name(*name)) + ",\"arguments\":" + json_text::quote(input) + "}}";
        open_tool_ids_.insert(*id);
      } else if (type == "server_tool_use" || type == "mcp_tool_use" || type == "container_upload" ||
                 (type.size() > 12 && type.compare(type.size() - 12, 12, "_tool_result") == 0)) {
        // Results of Anthropic-hosted tools in a history that came from Anthropic's API.
        note(p + ": dropped a '" + type + "' block (hosted tool history)");
      } else if (type.empty()) {
        return invalid(p + ".type", "must be a string naming the block type");
      } else {
        return invalid(p + ".type", "unsupported content block type '" + type + "' in an assistant message",
                       "unsupported_content");
      }
    }
  }
  const std::string text = join(texts, "\n\n");
  if (last && calls.empty() && text.empty()) return std::nullopt;  // nothing to continue
  std::string m = "{\"role\":\"assistant\",\"content\":";
  put_string(m, text);
  if (options_.forward_thinking_history && !thinking.empty()) {
    m += ",\"reasoning_content\":";
    put_string(m, join(thinking, "\n\n"));
  }
  if (!calls.empty()) m += ",\"tool_calls\":[" + calls + "]";
  m += "}";
  messages_.push_back(std::move(m));
  prefill_ = last && calls.empty() && !text.empty() && options_.continue_final_assistant;
  return std::nullopt;
}

std::optional<ApiError> Translator::read_system_message(const RawValue& content, const std::string& path) {
  // Claude Code sends role "system" messages inside `messages`; most open-model templates accept
  // a system message only first, so its text joins the leading one.
  if (content.is_string()) {
    auto text = content.str();
    if (!text.empty()) system_texts_.push_back(std::move(text));
    return std::nullopt;
  }
  std::size_t i = 0;
  for (const auto& block : content.elements()) {
    const std::string p = path + ".content." + std::to_string(i++);
    if (!block.is_object() || block.get_string("type") != "text") {
      return invalid(p, "only text blocks are allowed in a system message");
    }
    auto text = block.get_string("text");
    if (!text) return invalid(p + ".text", "must be a string");
    if (!text->empty()) system_texts_.push_back(std::move(*text));
  }
  return std::nullopt;
}

std::optional<ApiError> Translator::read_message(const RawValue& message, std::size_t i, bool last) {
  const std::string path = "messages." + std::to_string(i);
  if (!message.is_object()) return invalid(path, "must be an object");
  auto role = message.get_string("role");
  if (!role) return invalid(path + ".role", "must be user or assistant");
  auto content = message.get("content");
  if (!content || !(content->is_string() || content->is_array())) {
    return invalid(path + ".content", "must be a string or an array of content blocks");
  }
  if (*role == "user") return read_user(*content, path);
  if (*role == "assistant") return read_assistant(*content, path, last);
  if (*role == "system") return read_system_message(*content, path);
  return invalid(path + ".role", "must be user or assistant, not '" + *role + "'");
}

std::optional<ApiError> Translator::read_thinking(const RawValue* thinking_field, const RawValue* output_config) {
  std::optional<bool> enabled;
  const RawValue* thinking = thinking_field != nullptr && !thinking_field->is_null() ? thinking_field : nullptr;
  if (thinking != nullptr && thinking->is_object()) {
    const auto type = thinking->get_string("type").value_or("");
    if (type == "enabled" || type == "adaptive") {
      enabled = true;
    } else if (type == "disabled") {
      enabled = false;
    } else {
      note("thinking: ignored unknown type");
    }
    if (enabled && *enabled && thinking->get_string("display") == "omitted") result_.omit_thinking = true;
  } else if (thinking != nullptr) {
    return invalid("thinking", "must be an object");
  }
  std::optional<std::string> effort;
  if (output_config != nullptr && output_config->is_object()) {
    if (auto e = output_config->get_string("effort")) {
      if (*e == "low" || *e == "medium" || *e == "high") {
        effort = *e;
      } else if (*e == "max" || *e == "xhigh") {
        effort = "high";  // the engines' scale ends at high
      } else {
        note("output_config.effort: ignored unknown value");
      }
    }
  }
  const auto mode = options_.thinking;
  if (enabled && (mode == ThinkingControl::template_kwargs_and_effort || mode == ThinkingControl::template_kwargs)) {
    const char* b = *enabled ? "true" : "false";
    extras_json_ += std::string(",\"chat_template_kwargs\":{\"enable_thinking\":") + b + ",\"thinking\":" + b + "}";
  }
  if (effort && enabled.value_or(true) &&
      (mode == ThinkingControl::template_kwargs_and_effort || mode == ThinkingControl::reasoning_effort)) {
    extras_json_ += ",\"reasoning_effort\":" + json_text::quote(*effort);
  }
  return std::nullopt;
}

std::optional<ApiError> Translator::read_sampling(const RawValue& root) {
  if (auto v = root.get("max_tokens"); v && !v->is_null()) {
    if (!v->is_integer() || v->raw().front() == '-' || v->raw() == "0") {
      return invalid("max_tokens", "must be a positive integer");
    }
    sampling_json_ += ",\"max_tokens\":" + std::string(v->raw());
  } else if (options_.default_max_tokens > 0) {
    sampling_json_ += ",\"max_tokens\":" + std::to_string(options_.default_max_tokens);
  }
  for (const char* name : {"temperature", "top_p"}) {
    if (auto v = root.get(name); v && !v->is_null()) {
      if (!v->is_number()) return invalid(name, "must be a number");
      sampling_json_ += std::string(",\"") + name + "\":" + std::string(v->raw());
    }
  }
  if (auto v = root.get("top_k"); v && !v->is_null()) {
    if (!v->is_integer()) return invalid("top_k", "must be an integer");
    sampling_json_ += ",\"top_k\":" + std::string(v->raw());
  }
  if (auto v = root.get("stop_sequences"); v && !v->is_null()) {
    if (!v->is_array()) return invalid("stop_sequences", "must be an array of strings");
    std::string stop;
    for (const auto& s : v->elements()) {
      if (!s.is_string()) return invalid("stop_sequences", "must be an array of strings");
      if (!stop.empty()) stop += ",";
      stop += s.raw();
      result_.stop_sequences.push_back(s.str());
    }
    if (!stop.empty()) sampling_json_ += ",\"stop\":[" + stop + "]";
  }
  return std::nullopt;
}

std::variant<TranslatedRequest, ApiError> Translator::run(std::string_view body) {
  auto parsed = RawJson::parse(body);
  if (!parsed) return invalid("", "request body is not valid JSON (" + parsed.error().message + ")", "invalid_json");
  const RawValue root = parsed->root();
  if (!root.is_object()) return invalid("", "request body must be a JSON object");
  result_.fallback_id = options_.fallback_id;

  auto model = root.get("model");
  if (!model || !model->is_string() || model->str().empty()) return invalid("model", "must be a non-empty string");
  result_.model = model->str();

  auto messages = root.get("messages");
  if (!messages || !messages->is_array()) return invalid("messages", "must be an array of messages");
  if (messages->size() == 0) return invalid("messages", "at least one message is required");

  if (auto stream = root.get("stream"); stream && !stream->is_null()) {
    if (!stream->is_bool()) return invalid("stream", "must be a boolean");
    result_.stream = stream->boolean();
  }
  if (auto system = root.get("system")) {
    if (auto e = read_system(*system)) return *e;
  }
  if (auto tools = root.get("tools")) {
    if (auto e = read_tools(*tools)) return *e;
  }
  if (auto choice = root.get("tool_choice")) {
    if (auto e = read_tool_choice(*choice)) return *e;
  }
  const auto all = messages->elements();
  // A trailing system message does not make an earlier assistant message stop being the last turn.
  std::size_t last_turn = all.size();
  for (std::size_t i = all.size(); i > 0; --i) {
    if (!(all[i - 1].is_object() && all[i - 1].get_string("role") == "system")) {
      last_turn = i - 1;
      break;
    }
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (auto e = read_message(all[i], i, i == last_turn)) return *e;
  }
  if (messages_.empty()) return invalid("messages", "no user or assistant content to send");

  if (auto e = read_sampling(root)) return *e;
  const auto output_config = root.get("output_config");
  const auto thinking = root.get("thinking");
  if (auto e = read_thinking(thinking ? &*thinking : nullptr, output_config ? &*output_config : nullptr)) return *e;
  // Structured output: output_config.format (current) or output_format (beta).
  std::optional<RawValue> format;
  if (output_config && output_config->is_object()) format = output_config->get("format");
  if (!format || format->is_null()) format = root.get("output_format");
  if (format && format->is_object()) {
    auto schema = format->get("schema");
    if (format->get_string("type") == "json_schema" && schema && schema->is_object()) {
      extras_json_ += ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"output\",\"schema\":" +
                      std::string(schema->raw()) + "}}";
    } else {
      note("output format: ignored (only json_schema with a schema object is supported)");
    }
  }
  for (const char* ignored : {"metadata", "context_management", "service_tier", "container", "mcp_servers"}) {
    if (root.get(ignored)) note(std::string(ignored) + ": not forwarded");
  }

  // Assemble.
  std::string out = "{\"model\":";
  out += model->raw();
  out += ",\"messages\":[";
  bool first = true;
  if (!system_texts_.empty()) {
    out += "{\"role\":\"system\",\"content\":";
    put_string(out, join(system_texts_, "\n\n"));
    out += "}";
    first = false;
  }
  for (const auto& m : messages_) {
    if (!first) out += ",";
    out += m;
    first = false;
  }
  out += "]";
  out += sampling_json_;
  if (result_.stream) out += ",\"stream\":true,\"stream_options\":{\"include_usage\":true}";
  if (!tools_json_.empty()) {
    out += ",\"tools\":" + tools_json_;
    if (!tool_choice_json_.empty()) out += ",\"tool_choice\":" + tool_choice_json_;
    if (parallel_off_) out += ",\"parallel_tool_calls\":false";
  } else if (!tool_choice_json_.empty()) {
    note("tool_choice: dropped (no tools to choose from)");
  }
  out += extras_json_;
  if (prefill_) out += ",\"continue_final_message\":true,\"add_generation_prompt\":false";
  out += "}";

  const auto text_bytes = static_cast<std::int64_t>(out.size()) - image_bytes_;
  result_.estimated_input_tokens = (text_bytes + 3) / 4 + 1600 * images_;
  result_.chat_json = std::move(out);
  return std::move(result_);
}

}  // namespace

std::variant<TranslatedRequest, ApiError> to_chat_request(std::string_view messages_body, const RequestOptions& options) {
  Translator t(options);
  return t.run(messages_body);
}

}  // namespace e2ee::api::anthropic

#include "api/responses/request_translator.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/encoding.hpp"
#include "common/json_text.hpp"

namespace e2ee::api::responses {

namespace json = boost::json;

namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers

const json::value* member(const json::object& object, std::string_view key) {
  auto it = object.find(key);
  // A member set to null means "not given": the SDKs and hand-written clients send both.
  if (it == object.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

std::string str(const json::string& s) { return std::string(s.data(), s.size()); }

ApiError error(std::string code, std::string message) { return bad_request(std::move(code), std::move(message)); }

std::string type_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "value";
}

ApiError wrong_type(const std::string& path, std::string_view expected, const json::value& got) {
  return error("invalid_type", "'" + path + "' must be " + std::string(expected) + ", got " + type_name(got));
}

bool is_integer(const json::value& v) { return v.is_int64() || v.is_uint64(); }
bool is_number(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

// 32-bit FNV-1a as 8 hex digits: a stable, dependency-free suffix that keeps shortened tool names
// unique and reproducible (the same client name always maps to the same engine name).
std::string fnv1a_hex(std::string_view text) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : text) {
    h ^= c;
    h *= 16777619u;
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = digits[h & 0xF];
    h >>= 4;
  }
  return out;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool valid_utf8_text(std::string_view s) {
  // Strict UTF-8 (no overlongs, surrogates or > U+10FFFF) and no NUL: what "a text file" means here.
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // truncated sequence
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Tool types OpenAI runs on its side (or that only its models produce); a chat engine cannot,
// so they are dropped from `tools` with a note. Anything not listed and not function / custom /
// namespace is a 400, so a new tool kind is noticed instead of vanishing.
constexpr std::array<std::string_view, 15> kHostedToolTypes = {
    "web_search",      "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
    "file_search",     "local_shell",        "shell",                         "code_interpreter",
    "computer_use_preview", "computer_use",  "computer",                      "image_generation",
    "mcp",             "apply_patch",        "tool_search"};

// History items produced by those hosted tools (and OpenAI-encrypted compaction summaries). They
// are dropped together with their outputs, so no orphaned tool message is left behind.
constexpr std::array<std::string_view, 20> kHostedItemTypes = {
    "web_search_call",   "file_search_call",        "image_generation_call", "code_interpreter_call",
    "local_shell_call",  "local_shell_call_output", "shell_call",            "shell_call_output",
    "apply_patch_call",  "apply_patch_call_output", "computer_call",         "computer_call_output",
    "mcp_call",          "mcp_list_tools",          "mcp_approval_request",  "mcp_approval_response",
    "tool_search_call",  "tool_search_output",      "compaction",            "compaction_summary"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Text-like MIME types and file extensions that input_file may carry inline.
bool text_mime(std::string_view mime) {
  static constexpr std::array<std::string_view, 12> kTextApps = {
      "application/json", "application/xml",        "application/x-yaml", "application/yaml",
      "application/toml", "application/javascript", "application/x-sh",   "application/x-python",
      "application/sql",  "application/x-ndjson",   "application/csv",    "application/markdown"};
  return mime.substr(0, 5) == "text/" || contains(kTextApps, mime);
}

bool text_extension(std::string_view filename) {
  static constexpr std::array<std::string_view, 40> kExt = {
      "txt", "md",   "markdown", "csv", "tsv",  "json", "jsonl", "yaml", "yml",  "xml",
      "html", "htm", "py",       "js",  "ts",   "tsx",  "jsx",   "c",    "cc",   "cpp",
      "h",   "hpp",  "rs",       "go",  "java", "kt",   "rb",    "sh",   "toml", "ini",
      "cfg", "log",  "sql",      "css", "scss", "php",  "swift", "lua",  "diff", "patch"};
  auto dot = filename.rfind('.');
  if (dot == std::string_view::npos) return false;
  return contains(kExt, lower(filename.substr(dot + 1)));
}

// ---------------------------------------------------------------------------------------------

class Builder {
 public:
  Builder(std::string_view raw, const json::object& body, const RequestOptions& options)
      : raw_(raw), body_(body), options_(options) {}

  std::variant<TranslatedRequest, ApiError> run();

 private:
  // Each step returns false after recording the error in error_.
  bool fail(ApiError e) {
    error_ = std::move(e);
    return false;
  }

  bool check_unsupported_state();
  bool convert_tools();
  bool add_function_tool(const json::object& tool, const std::string& ns, const std::string& ns_description,
                         const std::string& path);
  bool add_custom_tool(const json::object& tool, const std::string& ns, const std::string& ns_description,
                       const std::string& path);
  bool claim_chat_name(const std::string& ns, const std::string& name, bool custom, const std::string& path,
                       std::string& chat_name);
  bool convert_tool_choice();
  bool convert_input();
  bool convert_item(const json::value& item, const std::string& path);
  bool convert_message(const json::object& item, const std::string& path);
  bool convert_call(const json::object& item, bool custom, const std::string& path);
  bool convert_call_output(const json::object& item, const std::string& path);
  bool convert_reasoning(const json::object& item, const std::string& path);
  bool user_content(const json::value& content, const std::string& path, json::value& out);
  bool text_content(const json::value& content, const std::string& role, const std::string& path,
                    const char* joiner, std::string& out);
  bool image_part(const json::object& part, const std::string& path, json::object& out);
  bool file_part(const json::object& part, const std::string& path, std::string& out);
  bool convert_parameters();
  void flush_assistant();
  json::array assemble_messages();

  std::string_view raw_;
  const json::object& body_;
  const RequestOptions& options_;
  std::optional<ApiError> error_;
  TranslatedRequest result_;

  // tools
  json::array chat_tools_;
  std::map<std::pair<std::string, std::string>, std::string> chat_name_of_;  // (ns, name) → chat name
  std::set<std::string> taken_names_;
  json::value tool_choice_;  // null = not set

  // messages
  struct Msg {
    json::object obj;
    std::vector<std::string> call_ids;  // assistant: its tool_calls, in order
    std::string answers;                // tool message: the call it answers
    json::array images;                 // tool message: image parts the chat tool message cannot hold
  };
  std::vector<std::string> system_texts_;
  std::vector<Msg> msgs_;
  std::map<std::string, std::size_t> tool_msg_of_call_;  // call_id → index in msgs_
  std::set<std::string> seen_call_ids_;
  std::set<std::string> flushed_call_ids_;

  // the assistant turn being collected (text, reasoning and tool calls that belong together)
  bool asst_has_text_ = false;
  std::string asst_text_;
  std::string asst_reasoning_;
  json::array asst_calls_;
  std::vector<std::string> asst_call_ids_;
  int dropped_reasoning_ = 0;
  int dropped_hosted_items_ = 0;
};

std::variant<TranslatedRequest, ApiError> Builder::run() {
  auto id_token = options_.id_token.empty() ? std::string("local") : options_.id_token;
  result_.id_token = id_token;
  result_.response_id = "resp_" + id_token;
  result_.created_at = options_.created_at;
  result_.reasoning_output = options_.reasoning_output;
  result_.split_think_tags = options_.split_think_tags;

  const json::value* model = member(body_, "model");
  if (!model) return error("missing_required_parameter", "'model' is required");
  if (!model->is_string() || model->as_string().empty())
    return wrong_type("model", "a non-empty string", *model);
  result_.model = str(model->as_string());

  if (const auto* stream = member(body_, "stream")) {
    if (!stream->is_bool()) return wrong_type("stream", "a boolean", *stream);
    result_.stream = stream->as_bool();
  }

  if (!check_unsupported_state() || !convert_tools() || !convert_tool_choice() || !convert_input() ||
      !convert_parameters())
    return *error_;

  json::object chat;
  chat["model"] = result_.model;
  chat["messages"] = assemble_messages();
  if (!chat_tools_.empty()) {
    chat["tools"] = chat_tools_;
    if (!tool_choice_.is_null()) chat["tool_choice"] = tool_choice_;
    if (const auto* p = member(body_, "parallel_tool_calls")) chat["parallel_tool_calls"] = p->as_bool();
  }
  if (result_.max_output_tokens) chat["max_tokens"] = *result_.max_output_tokens;

  // reasoning.effort: vLLM's reasoning_effort accepts only low/medium/high (older releases reject
  // other values with a 400), so minimal → low and xhigh → high; "none" sends no effort and turns
  // the thinking switch off instead.
  std::optional<std::string> effort;
  if (const auto* reasoning = member(body_, "reasoning")) {
    if (const auto* e = member(reasoning->as_object(), "effort")) effort = str(e->as_string());
  }
  if (effort) {
    if (*effort == "minimal" || *effort == "low") chat["reasoning_effort"] = "low";
    else if (*effort == "medium") chat["reasoning_effort"] = "medium";
    else if (*effort == "high" || *effort == "xhigh") chat["reasoning_effort"] = "high";
  }
  bool client_kwargs = member(body_, "chat_template_kwargs") != nullptr;
  if (effort && options_.effort_sets_thinking_switch && !client_kwargs) {
    bool on = *effort != "none";
    chat["chat_template_kwargs"] = json::object{{"thinking", on}, {"enable_thinking", on}};
  }
  if (const auto* text = member(body_, "text")) {
    if (const auto* format = member(text->as_object(), "format")) {
      const auto& f = format->as_object();
      auto type = str(f.at("type").as_string());
      if (type == "json_object") {
        chat["response_format"] = json::object{{"type", "json_object"}};
      } else if (type == "json_schema") {
        json::object schema;
        const auto* name = member(f, "name");
        schema["name"] = name ? name->as_string() : json::string("response");
        if (const auto* d = member(f, "description")) schema["description"] = *d;
        schema["schema"] = f.at("schema");
        if (const auto* s = member(f, "strict")) schema["strict"] = *s;
        chat["response_format"] = json::object{{"type", "json_schema"}, {"json_schema", std::move(schema)}};
      }
    }
  }
  chat["stream"] = result_.stream;
  if (result_.stream) chat["stream_options"] = json::object{{"include_usage", true}};

  std::string text = json::serialize(chat);

  // Sampling parameters are copied as the client spelled them (a 64-bit seed or 0.7 survive
  // byte for byte; Boost.JSON would re-spell 0.7 as 7E-1 and round integers above 2^64).
  static constexpr std::array<std::string_view, 11> kVerbatim = {
      "temperature", "top_p", "top_k", "min_p", "seed", "stop", "frequency_penalty", "presence_penalty",
      "repetition_penalty", "chat_template_kwargs", "logit_bias"};
  for (auto key : kVerbatim) {
    if (!member(body_, key)) continue;
    auto span = json_text::find_member(raw_, key);
    if (!span || !*span) continue;  // cannot happen: the body parsed and has the key
    auto value = raw_.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
    auto spliced = json_text::set_member(text, key, value);
    if (!spliced) return error("invalid_value", "'" + std::string(key) + "' could not be forwarded");
    text = std::move(*spliced);
  }

  // Boost.JSON turns numbers beyond double range (1e400) into infinities it then prints as
  // "Infinity"; refuse rather than send the engine invalid JSON.
  if (!json_text::validate(text)) return error("invalid_value", "a number in the request is out of range");
  result_.chat_json = std::move(text);
  return std::move(result_);
}

// previous_response_id, conversation, prompt templates and background mode all need state kept
// on the server, and this proxy keeps none (which is also why `store` is never honoured).
bool Builder::check_unsupported_state() {
  if (member(body_, "previous_response_id"))
    return fail(error("unsupported_parameter",
                      "'previous_response_id' is not supported: e2ee-proxy keeps no conversation state; send the "
                      "whole conversation in 'input' (as Codex does with store:false)"));
  if (member(body_, "conversation"))
    return fail(error("unsupported_parameter",
                      "'conversation' is not supported: e2ee-proxy keeps no conversation state; send the whole "
                      "conversation in 'input'"));
  if (member(body_, "prompt"))
    return fail(error("unsupported_parameter",
                      "'prompt' (stored prompt templates) is not supported: send 'instructions' and 'input'"));
  if (const auto* bg = member(body_, "background")) {
    if (!bg->is_bool()) return fail(wrong_type("background", "a boolean", *bg));
    if (bg->as_bool())
      return fail(error("unsupported_parameter", "'background': true is not supported: e2ee-proxy keeps no state "
                                                 "to poll; use stream:true for long generations"));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Tools

// The engine name for a client tool: the client's name when it is a valid chat function name
// (^[A-Za-z0-9_-]{1,64}$) and free, else a sanitised, shortened name with a hash of the full name.
// Namespace members are flattened as "<namespace>__<name>" first. The mapping is kept in
// TranslatedRequest::tools so answers are translated back to the client's names.
bool Builder::claim_chat_name(const std::string& ns, const std::string& name, bool custom, const std::string& path,
                              std::string& chat_name) {
  if (chat_name_of_.count({ns, name}))
    return fail(error("invalid_value", "'" + path + "': duplicate tool name '" + name + "'" +
                                           (ns.empty() ? "" : " in namespace '" + ns + "'")));
  std::string full = ns.empty() ? name : ns + "__" + name;
  std::string clean;
  for (char c : full) clean += is_name_char(c) ? c : '_';
  std::string candidate = clean;
  if (candidate != full || candidate.size() > 64 || taken_names_.count(candidate)) {
    std::string salt = full;
    do {
      candidate = clean.substr(0, 55) + "_" + fnv1a_hex(salt);
      salt += "#";
    } while (taken_names_.count(candidate));
  }
  taken_names_.insert(candidate);
  chat_name_of_[{ns, name}] = candidate;
  result_.tools[candidate] = ToolRef{name, ns, custom};
  chat_name = candidate;
  return true;
}

bool Builder::add_function_tool(const json::object& tool, const std::string& ns, const std::string& ns_description,
                                const std::string& path) {
  const auto* name = member(tool, "name");
  if (!name || !name->is_string() || name->as_string().empty())
    return fail(error("missing_required_parameter", "'" + path + ".name' is required"));
  json::object function;
  std::string chat_name;
  if (!claim_chat_name(ns, str(name->as_string()), false, path, chat_name)) return false;
  function["name"] = chat_name;
  std::string description;
  if (const auto* d = member(tool, "description")) {
    if (!d->is_string()) return fail(wrong_type(path + ".description", "a string", *d));
    description = str(d->as_string());
  }
  // The namespace's own description would otherwise be lost with the container.
  if (!ns_description.empty()) description = description.empty() ? ns_description : ns_description + "\n\n" + description;
  if (!description.empty()) function["description"] = description;
  if (const auto* p = member(tool, "parameters")) {
    if (!p->is_object()) return fail(wrong_type(path + ".parameters", "an object", *p));
    function["parameters"] = *p;
  } else {
    function["parameters"] = json::object{{"type", "object"}, {"properties", json::object{}}};
  }
  if (const auto* s = member(tool, "strict")) {
    if (!s->is_bool()) return fail(wrong_type(path + ".strict", "a boolean", *s));
    function["strict"] = s->as_bool();
  }
  chat_tools_.push_back(json::object{{"type", "function"}, {"function", std::move(function)}});
  return true;
}

// A freeform tool (Codex's apply_patch) becomes a function with one string parameter, `input`;
// its grammar, if any, is put in that parameter's description so the model knows the format.
bool Builder::add_custom_tool(const json::object& tool, const std::string& ns, const std::string& ns_description,
                              const std::string& path) {
  const auto* name = member(tool, "name");
  if (!name || !name->is_string() || name->as_string().empty())
    return fail(error("missing_required_parameter", "'" + path + ".name' is required"));
  std::string chat_name;
  if (!claim_chat_name(ns, str(name->as_string()), true, path, chat_name)) return false;
  std::string description;
  if (const auto* d = member(tool, "description")) {
    if (!d->is_string()) return fail(wrong_type(path + ".description", "a string", *d));
    description = str(d->as_string());
  }
  if (!ns_description.empty()) description = description.empty() ? ns_description : ns_description + "\n\n" + description;
  std::string input_description = "The complete raw input for this tool, as plain text (not JSON-encoded).";
  if (const auto* format = member(tool, "format")) {
    if (!format->is_object()) return fail(wrong_type(path + ".format", "an object", *format));
    const auto& f = format->as_object();
    const auto* type = member(f, "type");
    std::string t = type && type->is_string() ? str(type->as_string()) : "";
    if (t == "grammar") {
      const auto* syntax = member(f, "syntax");
      const auto* definition = member(f, "definition");
      if (!definition || !definition->is_string())
        return fail(error("missing_required_parameter", "'" + path + ".format.definition' is required"));
      std::string s = syntax && syntax->is_string() ? str(syntax->as_string()) : "lark";
      input_description += " It must match this " + s + " grammar:\n" + str(definition->as_string());
    } else if (t != "text") {
      return fail(error("unsupported_value", "'" + path + ".format.type' must be 'text' or 'grammar'"));
    }
  }
  json::object function;
  function["name"] = chat_name;
  if (!description.empty()) function["description"] = description;
  function["parameters"] = json::object{
      {"type", "object"},
      {"properties", json::object{{"input", json::object{{"type", "string"}, {"description", input_description}}}}},
      {"required", json::array{"input"}},
      {"additionalProperties", false}};
  chat_tools_.push_back(json::object{{"type", "function"}, {"function", std::move(function)}});
  return true;
}

bool Builder::convert_tools() {
  const auto* tools = member(body_, "tools");
  if (!tools) return true;
  if (!tools->is_array()) return fail(wrong_type("tools", "an array", *tools));
  std::size_t i = 0;
  for (const auto& t : tools->as_array()) {
    std::string path = "tools[" + std::to_string(i++) + "]";
    if (!t.is_object()) return fail(wrong_type(path, "an object", t));
    const auto& tool = t.as_object();
    const auto* type = member(tool, "type");
    if (!type || !type->is_string()) return fail(error("missing_required_parameter", "'" + path + ".type' is required"));
    std::string kind = str(type->as_string());
    if (kind == "function") {
      if (!add_function_tool(tool, "", "", path)) return false;
    } else if (kind == "custom") {
      if (!add_custom_tool(tool, "", "", path)) return false;
    } else if (kind == "namespace") {
      const auto* name = member(tool, "name");
      if (!name || !name->is_string() || name->as_string().empty())
        return fail(error("missing_required_parameter", "'" + path + ".name' is required"));
      std::string ns = str(name->as_string());
      std::string ns_description;
      if (const auto* d = member(tool, "description"); d && d->is_string()) ns_description = str(d->as_string());
      const auto* nested = member(tool, "tools");
      if (!nested || !nested->is_array()) return fail(error("missing_required_parameter", "'" + path + ".tools' is required"));
      std::size_t j = 0;
      for (const auto& n : nested->as_array()) {
        std::string npath = path + ".tools[" + std::to_string(j++) + "]";
        if (!n.is_object()) return fail(wrong_type(npath, "an object", n));
        const auto* ntype = member(n.as_object(), "type");
        std::string nkind = ntype && ntype->is_string() ? str(ntype->as_string()) : "";
        if (nkind == "function") {
          if (!add_function_tool(n.as_object(), ns, ns_description, npath)) return false;
        } else if (nkind == "custom") {
          if (!add_custom_tool(n.as_object(), ns, ns_description, npath)) return false;
        } else {
          return fail(error("unsupported_value", "'" + npath + ".type' must be 'function' or 'custom' inside a namespace"));
        }
      }
    } else if (contains(kHostedToolTypes, kind)) {
      result_.notes.push_back("dropped hosted tool " + kind);
    } else {
      return fail(error("unsupported_value", "'" + path + ".type' '" + kind +
                                                 "' is not supported (function, custom and namespace tools are)"));
    }
  }
  return true;
}

// Flat Responses tool_choice → chat tool_choice, with names mapped to the engine's names.
bool Builder::convert_tool_choice() {
  const auto* choice = member(body_, "tool_choice");
  if (!choice) return true;
  if (choice->is_string()) {
    auto mode = str(choice->as_string());
    if (mode != "auto" && mode != "required" && mode != "none")
      return fail(error("invalid_value", "'tool_choice' must be 'auto', 'required', 'none' or an object"));
    if (mode == "required" && chat_tools_.empty())
      return fail(error("invalid_value", "'tool_choice' is 'required' but there is no function or custom tool the "
                                         "engine can call (hosted tools are dropped)"));
    tool_choice_ = choice->as_string();
    return true;
  }
  if (!choice->is_object()) return fail(wrong_type("tool_choice", "a string or an object", *choice));
  const auto& c = choice->as_object();
  const auto* type = member(c, "type");
  std::string kind = type && type->is_string() ? str(type->as_string()) : "";
  auto lookup = [&](const json::object& ref, const std::string& path, std::string& chat_name) {
    const auto* name = member(ref, "name");
    if (!name || !name->is_string()) return fail(error("missing_required_parameter", "'" + path + ".name' is required"));
    std::string ns;
    if (const auto* n = member(ref, "namespace"); n && n->is_string()) ns = str(n->as_string());
    auto it = chat_name_of_.find({ns, str(name->as_string())});
    if (it == chat_name_of_.end())
      return fail(error("invalid_value", "'" + path + ".name' names a tool that is not in 'tools'"));
    chat_name = it->second;
    return true;
  };
  if (kind == "function" || kind == "custom") {
    std::string chat_name;
    if (!lookup(c, "tool_choice", chat_name)) return false;
    tool_choice_ = json::object{{"type", "function"}, {"function", json::object{{"name", chat_name}}}};
    return true;
  }
  if (kind == "allowed_tools") {
    // Restrict the engine's tool list to the allowed ones; mode becomes the chat tool_choice.
    const auto* mode = member(c, "mode");
    std::string m = mode && mode->is_string() ? str(mode->as_string()) : "auto";
    if (m != "auto" && m != "required")
      return fail(error("invalid_value", "'tool_choice.mode' must be 'auto' or 'required'"));
    const auto* allowed = member(c, "tools");
    if (!allowed || !allowed->is_array()) return fail(error("missing_required_parameter", "'tool_choice.tools' is required"));
    std::set<std::string> keep;
    std::size_t i = 0;
    for (const auto& a : allowed->as_array()) {
      std::string path = "tool_choice.tools[" + std::to_string(i++) + "]";
      if (!a.is_object()) return fail(wrong_type(path, "an object", a));
      const auto* at = member(a.as_object(), "type");
      std::string akind = at && at->is_string() ? str(at->as_string()) : "";
      if (akind != "function" && akind != "custom") continue;  // hosted tools were dropped anyway
      std::string chat_name;
      if (!lookup(a.as_object(), path, chat_name)) return false;
      keep.insert(chat_name);
    }
    json::array filtered;
    for (auto& t : chat_tools_)
      if (keep.count(str(t.as_object().at("function").as_object().at("name").as_string()))) filtered.push_back(t);
    chat_tools_ = std::move(filtered);
    if (m == "required" && chat_tools_.empty())
      return fail(error("invalid_value", "'tool_choice' requires a tool but allows none the engine can call"));
    tool_choice_ = json::string(m);
    return true;
  }
  if (contains(kHostedToolTypes, kind) || kind == "mcp")
    return fail(error("unsupported_value", "'tool_choice' forces hosted tool '" + kind +
                                               "', which this proxy drops (the engine cannot run it)"));
  return fail(error("invalid_value", "'tool_choice.type' must be 'function', 'custom' or 'allowed_tools'"));
}

// ---------------------------------------------------------------------------------------------
// Input

bool Builder::convert_input() {
  if (const auto* instructions = member(body_, "instructions")) {
    if (!instructions->is_string()) return fail(wrong_type("instructions", "a string", *instructions));
    if (!instructions->as_string().empty()) system_texts_.push_back(str(instructions->as_string()));
  }
  const auto* input = member(body_, "input");
  if (!input) {
    if (system_texts_.empty()) return fail(error("missing_required_parameter", "'input' is required"));
    return true;
  }
  if (input->is_string()) {
    msgs_.push_back(Msg{json::object{{"role", "user"}, {"content", input->as_string()}}, {}, {}, {}});
    return true;
  }
  if (!input->is_array()) return fail(wrong_type("input", "a string or an array of items", *input));
  std::size_t i = 0;
  for (const auto& item : input->as_array())
    if (!convert_item(item, "input[" + std::to_string(i++) + "]")) return false;
  flush_assistant();
  if (dropped_reasoning_ > 0) result_.notes.push_back("dropped reasoning items: " + std::to_string(dropped_reasoning_));
  if (dropped_hosted_items_ > 0)
    result_.notes.push_back("dropped hosted-tool history items: " + std::to_string(dropped_hosted_items_));
  if (msgs_.empty() && system_texts_.empty()) return fail(error("invalid_value", "'input' has no messages"));
  return true;
}

bool Builder::convert_item(const json::value& value, const std::string& path) {
  if (!value.is_object()) return fail(wrong_type(path, "an object", value));
  const auto& item = value.as_object();
  const auto* type = member(item, "type");
  if (!type) {
    // The untyped {role, content} shorthand (EasyInputMessage) is a message.
    if (member(item, "role")) return convert_message(item, path);
    return fail(error("missing_required_parameter", "'" + path + ".type' is required"));
  }
  if (!type->is_string()) return fail(wrong_type(path + ".type", "a string", *type));
  std::string kind = str(type->as_string());
  if (kind == "message") return convert_message(item, path);
  if (kind == "function_call") return convert_call(item, false, path);
  if (kind == "custom_tool_call") return convert_call(item, true, path);
  if (kind == "function_call_output" || kind == "custom_tool_call_output") return convert_call_output(item, path);
  if (kind == "reasoning") return convert_reasoning(item, path);
  if (contains(kHostedItemTypes, kind)) {
    ++dropped_hosted_items_;
    return true;
  }
  if (kind == "item_reference")
    return fail(error("unsupported_value", "'" + path + "': item_reference needs stored items, and e2ee-proxy "
                                                         "stores none; send the item itself"));
  return fail(error("unsupported_value", "'" + path + ".type' '" + kind + "' is not supported"));
}

void Builder::flush_assistant() {
  if (!asst_has_text_ && asst_calls_.empty()) {
    // Reasoning with nothing after it (no text, no call) has no chat message to ride on.
    if (!asst_reasoning_.empty()) ++dropped_reasoning_;
    asst_reasoning_.clear();
    return;
  }
  json::object msg;
  msg["role"] = "assistant";
  // "" rather than null next to tool_calls: some chat templates call string filters on content.
  msg["content"] = asst_text_;
  if (!asst_calls_.empty()) msg["tool_calls"] = std::move(asst_calls_);
  if (options_.forward_reasoning_history && !asst_reasoning_.empty()) msg["reasoning_content"] = asst_reasoning_;
  for (const auto& id : asst_call_ids_) flushed_call_ids_.insert(id);
  msgs_.push_back(Msg{std::move(msg), std::move(asst_call_ids_), {}, {}});
  asst_has_text_ = false;
  asst_text_.clear();
  asst_reasoning_.clear();
  asst_calls_ = json::array{};
  asst_call_ids_.clear();
}

bool Builder::convert_message(const json::object& item, const std::string& path) {
  const auto* role_value = member(item, "role");
  if (!role_value) return fail(error("missing_required_parameter", "'" + path + ".role' is required"));
  if (!role_value->is_string()) return fail(wrong_type(path + ".role", "a string", *role_value));
  std::string role = str(role_value->as_string());
  const auto* content = member(item, "content");
  if (!content) return fail(error("missing_required_parameter", "'" + path + ".content' is required"));

  if (role == "system" || role == "developer") {
    // Merged into the one leading system message: many open-model chat templates reject a
    // system message anywhere but first.
    std::string text;
    if (!text_content(*content, role, path + ".content", "\n", text)) return false;
    if (!text.empty()) system_texts_.push_back(std::move(text));
    return true;
  }
  if (role == "assistant") {
    std::string text;
    if (!text_content(*content, role, path + ".content", "\n", text)) return false;
    if (text.empty()) return true;
    if (asst_has_text_) asst_text_ += "\n\n";
    asst_text_ += text;
    asst_has_text_ = true;
    return true;
  }
  if (role == "user") {
    flush_assistant();
    json::value converted;
    if (!user_content(*content, path + ".content", converted)) return false;
    msgs_.push_back(Msg{json::object{{"role", "user"}, {"content", std::move(converted)}}, {}, {}, {}});
    return true;
  }
  return fail(error("invalid_value", "'" + path + ".role' must be 'user', 'assistant', 'system' or 'developer'"));
}

bool Builder::text_content(const json::value& content, const std::string& role, const std::string& path,
                           const char* joiner, std::string& out) {
  if (content.is_string()) {
    out = str(content.as_string());
    return true;
  }
  if (!content.is_array()) return fail(wrong_type(path, "a string or an array of content parts", content));
  std::size_t i = 0;
  bool first = true;
  for (const auto& p : content.as_array()) {
    std::string ppath = path + "[" + std::to_string(i++) + "]";
    if (!p.is_object()) return fail(wrong_type(ppath, "an object", p));
    const auto& part = p.as_object();
    const auto* type = member(part, "type");
    std::string kind = type && type->is_string() ? str(type->as_string()) : "";
    const char* field = "text";
    if (kind == "refusal" && role == "assistant") field = "refusal";
    else if (kind != "input_text" && kind != "output_text" && kind != "text") {
      if (kind == "input_image" || kind == "input_file")
        return fail(error("unsupported_value", "'" + ppath + "': " + kind + " is only supported in user messages"));
      return fail(error("unsupported_value", "'" + ppath + ".type' '" + kind + "' is not supported in " + role +
                                                 " messages"));
    }
    const auto* text = member(part, field);
    if (!text || !text->is_string())
      return fail(error("missing_required_parameter", "'" + ppath + "." + field + "' is required"));
    if (!first) out += joiner;
    out += str(text->as_string());
    first = false;
  }
  return true;
}

bool Builder::user_content(const json::value& content, const std::string& path, json::value& out) {
  if (content.is_string()) {
    out = content;
    return true;
  }
  if (!content.is_array()) return fail(wrong_type(path, "a string or an array of content parts", content));
  json::array parts;
  std::size_t i = 0;
  for (const auto& p : content.as_array()) {
    std::string ppath = path + "[" + std::to_string(i++) + "]";
    if (!p.is_object()) return fail(wrong_type(ppath, "an object", p));
    const auto& part = p.as_object();
    const auto* type = member(part, "type");
    std::string kind = type && type->is_string() ? str(type->as_string()) : "";
    if (kind == "input_text" || kind == "output_text" || kind == "text") {
      const auto* text = member(part, "text");
      if (!text || !text->is_string())
        return fail(error("missing_required_parameter", "'" + ppath + ".text' is required"));
      parts.push_back(json::object{{"type", "text"}, {"text", *text}});
    } else if (kind == "input_image") {
      json::object image;
      if (!image_part(part, ppath, image)) return false;
      parts.push_back(std::move(image));
    } else if (kind == "input_file") {
      std::string text;
      if (!file_part(part, ppath, text)) return false;
      parts.push_back(json::object{{"type", "text"}, {"text", text}});
    } else if (kind == "input_audio") {
      return fail(error("unsupported_value", "'" + ppath + "': input_audio is not supported by chat engines here"));
    } else {
      return fail(error("unsupported_value", "'" + ppath + ".type' '" + kind + "' is not supported"));
    }
  }
  // One text part is sent as a plain string: every chat template accepts that form.
  if (parts.size() == 1 && parts[0].as_object().at("type") == "text") {
    out = parts[0].as_object().at("text");
  } else {
    out = std::move(parts);
  }
  return true;
}

bool Builder::image_part(const json::object& part, const std::string& path, json::object& out) {
  const auto* url = member(part, "image_url");
  if (!url) {
    if (member(part, "file_id"))
      return fail(error("unsupported_value", "'" + path + ".file_id' needs OpenAI's Files API; send 'image_url' "
                                                           "(an https URL or a data: URL) instead"));
    return fail(error("missing_required_parameter", "'" + path + ".image_url' is required"));
  }
  if (!url->is_string()) return fail(wrong_type(path + ".image_url", "a string", *url));
  json::object image_url{{"url", *url}};
  if (const auto* detail = member(part, "detail")) {
    if (!detail->is_string()) return fail(wrong_type(path + ".detail", "a string", *detail));
    image_url["detail"] = *detail;
  }
  out = json::object{{"type", "image_url"}, {"image_url", std::move(image_url)}};
  return true;
}

// input_file: chat engines take no documents, so a text file (by MIME type or file extension,
// and only if it decodes to UTF-8 text) is inlined as a text part
// `<file name="…">\n…\n</file>`; anything else (PDF, images as files, file_id, file_url) is a 400
// asking the client to extract the text itself. The proxy never fetches URLs.
bool Builder::file_part(const json::object& part, const std::string& path, std::string& out) {
  if (member(part, "file_id"))
    return fail(error("unsupported_value", "'" + path + ".file_id' needs OpenAI's Files API; send 'file_data' "
                                                         "with the file's content"));
  if (member(part, "file_url"))
    return fail(error("unsupported_value", "'" + path + ".file_url' is not fetched by e2ee-proxy; send "
                                                          "'file_data' with the file's content"));
  const auto* data = member(part, "file_data");
  if (!data) return fail(error("missing_required_parameter", "'" + path + ".file_data' is required"));
  if (!data->is_string()) return fail(wrong_type(path + ".file_data", "a string", *data));
  std::string filename = "file";
  if (const auto* f = member(part, "filename"); f && f->is_string() && !f->as_string().empty())
    filename = str(f->as_string());
  std::string_view payload(data->as_string().data(), data->as_string().size());
  std::string mime;
  if (payload.substr(0, 5) == "data:") {
    auto comma = payload.find(',');
    if (comma == std::string_view::npos)
      return fail(error("invalid_value", "'" + path + ".file_data' is not a valid data: URL"));
    auto header = payload.substr(5, comma - 5);
    if (header.size() < 7 || header.substr(header.size() - 7) != ";base64")
      return fail(error("invalid_value", "'" + path + ".file_data' must be base64 (data:<type>;base64,…)"));
    mime = lower(header.substr(0, std::min(header.find(';'), header.size())));
    payload = payload.substr(comma + 1);
  }
  bool texty = text_mime(mime) || ((mime.empty() || mime == "application/octet-stream") && text_extension(filename));
  if (!texty)
    return fail(error("unsupported_value",
                      "'" + path + "': only text files can be sent to a chat engine (got " +
                          (mime.empty() ? std::string("an unknown type") : mime) +
                          "); extract the text client-side and send it as input_text"));
  auto bytes = base64_decode(payload);
  if (!bytes) return fail(error("invalid_value", "'" + path + ".file_data' is not valid base64"));
  std::string text = to_string(*bytes);
  if (!valid_utf8_text(text))
    return fail(error("unsupported_value", "'" + path + "': the file is not UTF-8 text; extract the text "
                                                          "client-side and send it as input_text"));
  std::string safe_name;
  for (char c : filename) safe_name += (c == '"' || c == '<' || c == '>' || c == '\n') ? '_' : c;
  out = "<file name=\"" + safe_name + "\">\n" + text + "\n</file>";
  return true;
}

bool Builder::convert_call(const json::object& item, bool custom, const std::string& path) {
  const auto* call_id = member(item, "call_id");
  if (!call_id || !call_id->is_string() || call_id->as_string().empty())
    return fail(error("missing_required_parameter", "'" + path + ".call_id' is required"));
  const auto* name = member(item, "name");
  if (!name || !name->is_string()) return fail(error("missing_required_parameter", "'" + path + ".name' is required"));
  std::string id = str(call_id->as_string());
  if (seen_call_ids_.count(id))
    return fail(error("invalid_value", "'" + path + ".call_id' '" + id + "' is used by an earlier call"));
  seen_call_ids_.insert(id);

  std::string ns;
  if (const auto* n = member(item, "namespace"); n && n->is_string()) ns = str(n->as_string());
  std::string chat_name = str(name->as_string());
  if (auto it = chat_name_of_.find({ns, chat_name}); it != chat_name_of_.end()) chat_name = it->second;
  else if (!ns.empty()) chat_name = ns + "__" + chat_name;  // a tool no longer offered: keep it readable

  std::string arguments;
  if (custom) {
    const auto* input = member(item, "input");
    if (!input || !input->is_string())
      return fail(error("missing_required_parameter", "'" + path + ".input' is required"));
    arguments = json::serialize(json::object{{"input", *input}});
  } else {
    const auto* args = member(item, "arguments");
    if (args && args->is_string()) arguments = str(args->as_string());
    else if (args && args->is_object()) arguments = json::serialize(*args);  // lenient: an object instead of its text
    else if (args) return fail(wrong_type(path + ".arguments", "a string", *args));
    if (arguments.empty()) arguments = "{}";
  }
  asst_calls_.push_back(json::object{
      {"id", id}, {"type", "function"}, {"function", json::object{{"name", chat_name}, {"arguments", arguments}}}});
  asst_call_ids_.push_back(id);
  return true;
}

// function_call_output / custom_tool_call_output → a tool message. Its call must appear earlier in
// `input` (else 400: an orphaned result would make the engine's template fail or, worse, attach
// the output to nothing). Outputs are later moved right behind their assistant message.
bool Builder::convert_call_output(const json::object& item, const std::string& path) {
  const auto* call_id = member(item, "call_id");
  if (!call_id || !call_id->is_string() || call_id->as_string().empty())
    return fail(error("missing_required_parameter", "'" + path + ".call_id' is required"));
  std::string id = str(call_id->as_string());
  flush_assistant();
  if (!flushed_call_ids_.count(id))
    return fail(error("invalid_value", "'" + path + "': no function_call or custom_tool_call with call_id '" + id +
                                           "' precedes this output in 'input'"));
  if (tool_msg_of_call_.count(id))
    return fail(error("invalid_value", "'" + path + "': call_id '" + id + "' already has an output"));
  const auto* output = member(item, "output");
  if (!output) return fail(error("missing_required_parameter", "'" + path + ".output' is required"));
  std::string text;
  json::array images;
  if (output->is_string()) {
    text = str(output->as_string());
  } else if (output->is_array()) {
    // Content items (Codex's view_image returns input_image): text joins into the tool message,
    // images go into a user message placed right after the tool messages, since chat tool
    // messages carry text only.
    bool first = true;
    std::size_t i = 0;
    for (const auto& p : output->as_array()) {
      std::string ppath = path + ".output[" + std::to_string(i++) + "]";
      if (!p.is_object()) return fail(wrong_type(ppath, "an object", p));
      const auto& part = p.as_object();
      const auto* type = member(part, "type");
      std::string kind = type && type->is_string() ? str(type->as_string()) : "";
      if (kind == "input_text" || kind == "output_text" || kind == "text") {
        const auto* t = member(part, "text");
        if (!t || !t->is_string()) return fail(error("missing_required_parameter", "'" + ppath + ".text' is required"));
        if (!first) text += "\n";
        text += str(t->as_string());
        first = false;
      } else if (kind == "input_image") {
        json::object image;
        if (!image_part(part, ppath, image)) return false;
        images.push_back(std::move(image));
      } else if (kind == "input_file") {
        std::string file;
        if (!file_part(part, ppath, file)) return false;
        if (!first) text += "\n";
        text += file;
        first = false;
      } else {
        return fail(error("unsupported_value", "'" + ppath + ".type' '" + kind + "' is not supported"));
      }
    }
  } else if (output->is_object()) {
    text = json::serialize(*output);  // lenient: structured output as its JSON text
  } else {
    return fail(wrong_type(path + ".output", "a string or an array of content items", *output));
  }
  tool_msg_of_call_[id] = msgs_.size();
  msgs_.push_back(Msg{json::object{{"role", "tool"}, {"tool_call_id", id}, {"content", text}}, {}, id, std::move(images)});
  return true;
}

// reasoning items: encrypted_content is OpenAI's and unreadable here, so it is always dropped;
// plain text (content reasoning_text, else summary_text) rides on the next assistant message
// as reasoning_content when forward_reasoning_history is on.
bool Builder::convert_reasoning(const json::object& item, const std::string& path) {
  std::string text;
  auto collect = [&](const char* key, const char* part_type) -> bool {
    const auto* list = member(item, key);
    if (!list) return true;
    if (!list->is_array()) return fail(wrong_type(path + "." + key, "an array", *list));
    for (const auto& p : list->as_array()) {
      if (!p.is_object()) continue;
      const auto* type = member(p.as_object(), "type");
      const auto* t = member(p.as_object(), "text");
      if (!type || !type->is_string() || !t || !t->is_string()) continue;
      if (type->as_string() != part_type && !(std::string_view(part_type) == "reasoning_text" && type->as_string() == "text"))
        continue;
      if (!text.empty()) text += "\n\n";
      text += str(t->as_string());
    }
    return true;
  };
  if (!collect("content", "reasoning_text")) return false;
  if (text.empty() && !collect("summary", "summary_text")) return false;
  if (text.empty() || !options_.forward_reasoning_history) {
    ++dropped_reasoning_;
    return true;
  }
  if (!asst_reasoning_.empty()) asst_reasoning_ += "\n\n";
  asst_reasoning_ += text;
  return true;
}

// Chat order: [system] then the conversation, where every assistant message with tool_calls is
// followed immediately by the tool messages answering them (in call order) and then, if any of
// those outputs held images, one user message carrying them.
json::array Builder::assemble_messages() {
  json::array out;
  if (!system_texts_.empty()) {
    std::string merged;
    for (std::size_t i = 0; i < system_texts_.size(); ++i) {
      if (i) merged += "\n\n";
      merged += system_texts_[i];
    }
    out.push_back(json::object{{"role", "system"}, {"content", merged}});
  }
  for (auto& m : msgs_) {
    if (!m.answers.empty()) continue;  // placed behind its assistant message below
    out.push_back(m.obj);
    if (m.call_ids.empty()) continue;
    json::array images;
    for (const auto& id : m.call_ids) {
      auto it = tool_msg_of_call_.find(id);
      if (it == tool_msg_of_call_.end()) continue;
      auto& tool = msgs_[it->second];
      out.push_back(tool.obj);
      if (!tool.images.empty()) {
        images.push_back(json::object{{"type", "text"}, {"text", "Images returned by tool call " + id + ":"}});
        for (auto& img : tool.images) images.push_back(img);
      }
    }
    if (!images.empty()) out.push_back(json::object{{"role", "user"}, {"content", std::move(images)}});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parameters

bool Builder::convert_parameters() {
  if (const auto* m = member(body_, "max_output_tokens")) {
    if (!is_integer(*m) || (m->is_int64() && m->as_int64() < 1))
      return fail(error("invalid_value", "'max_output_tokens' must be a positive integer"));
    result_.max_output_tokens = m->is_int64() ? m->as_int64() : static_cast<std::int64_t>(INT64_MAX);
  }
  if (const auto* p = member(body_, "parallel_tool_calls")) {
    if (!p->is_bool()) return fail(wrong_type("parallel_tool_calls", "a boolean", *p));
    result_.parallel_tool_calls = p->as_bool();
  }
  if (const auto* store = member(body_, "store")) {
    // Accepted either way; nothing is ever persisted, so store:true is not honoured.
    if (!store->is_bool()) return fail(wrong_type("store", "a boolean", *store));
    result_.notes.push_back(store->as_bool() ? "store:true ignored (nothing is persisted)" : "dropped field store");
  }
  if (const auto* reasoning = member(body_, "reasoning")) {
    if (!reasoning->is_object()) return fail(wrong_type("reasoning", "an object", *reasoning));
    if (const auto* e = member(reasoning->as_object(), "effort")) {
      if (!e->is_string()) return fail(wrong_type("reasoning.effort", "a string", *e));
      static constexpr std::array<std::string_view, 6> kEfforts = {"none", "minimal", "low", "medium", "high", "xhigh"};
      if (!contains(kEfforts, std::string_view(e->as_string().data(), e->as_string().size())))
        return fail(error("invalid_value", "'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh"));
    }
    if (member(reasoning->as_object(), "summary") || member(reasoning->as_object(), "generate_summary"))
      result_.notes.push_back("dropped field reasoning.summary");
  }
  if (const auto* text = member(body_, "text")) {
    if (!text->is_object()) return fail(wrong_type("text", "an object", *text));
    if (const auto* format = member(text->as_object(), "format")) {
      if (!format->is_object()) return fail(wrong_type("text.format", "an object", *format));
      const auto* type = member(format->as_object(), "type");
      if (!type || !type->is_string()) return fail(error("missing_required_parameter", "'text.format.type' is required"));
      auto t = str(type->as_string());
      if (t == "json_schema") {
        const auto* schema = member(format->as_object(), "schema");
        if (!schema || !schema->is_object())
          return fail(error("missing_required_parameter", "'text.format.schema' is required"));
        if (const auto* name = member(format->as_object(), "name"); name && !name->is_string())
          return fail(wrong_type("text.format.name", "a string", *name));
      } else if (t != "text" && t != "json_object") {
        return fail(error("invalid_value", "'text.format.type' must be 'text', 'json_object' or 'json_schema'"));
      }
    }
    if (member(text->as_object(), "verbosity")) result_.notes.push_back("dropped field text.verbosity");
  }
  // Sampling parameters forwarded verbatim: type-checked here so the engine never sees nonsense.
  for (auto key : {"temperature", "top_p", "min_p", "frequency_penalty", "presence_penalty", "repetition_penalty"}) {
    if (const auto* v = member(body_, key); v && !is_number(*v)) return fail(wrong_type(key, "a number", *v));
  }
  for (auto key : {"top_k", "seed"}) {
    if (const auto* v = member(body_, key); v && !is_integer(*v)) return fail(wrong_type(key, "an integer", *v));
  }
  if (const auto* stop = member(body_, "stop")) {
    bool ok = stop->is_string();
    if (stop->is_array()) {
      ok = true;
      for (const auto& s : stop->as_array()) ok = ok && s.is_string();
    }
    if (!ok) return fail(wrong_type("stop", "a string or an array of strings", *stop));
  }
  if (const auto* kwargs = member(body_, "chat_template_kwargs"); kwargs && !kwargs->is_object())
    return fail(wrong_type("chat_template_kwargs", "an object", *kwargs));
  if (const auto* bias = member(body_, "logit_bias"); bias && !bias->is_object())
    return fail(wrong_type("logit_bias", "an object", *bias));
  if (const auto* metadata = member(body_, "metadata")) {
    if (!metadata->is_object()) return fail(wrong_type("metadata", "an object", *metadata));
    result_.metadata_json = json::serialize(*metadata);  // echoed to the client, never sent upstream
    // As for chat_json below: a number beyond double range (1e400, 0e400) prints as Infinity/NaN.
    if (!json_text::validate(result_.metadata_json))
      return fail(error("invalid_value", "metadata: a number in it is out of range"));
  }
  if (const auto* key = member(body_, "prompt_cache_key")) {
    if (!key->is_string()) return fail(wrong_type("prompt_cache_key", "a string", *key));
    result_.prompt_cache_key = str(key->as_string());
  }

  // Everything else is dropped with a note: identifiers (user, safety_identifier,
  // prompt_cache_key, client_metadata, metadata) must not reach the engine, and the rest (include,
  // truncation, service_tier, top_logprobs, max_tool_calls, stream_options, unknown fields) has no
  // chat equivalent. Unknown fields are dropped rather than forwarded: they may identify the user.
  static constexpr std::array<std::string_view, 26> kTranslated = {
      "model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "stream", "store",
      "max_output_tokens", "reasoning", "text", "temperature", "top_p", "top_k", "min_p", "seed", "stop",
      "frequency_penalty", "presence_penalty", "repetition_penalty", "chat_template_kwargs", "logit_bias",
      "previous_response_id", "conversation", "prompt", "background"};
  for (const auto& kv : body_) {
    std::string_view key(kv.key().data(), kv.key().size());
    if (contains(kTranslated, key) || kv.value().is_null()) continue;
    result_.notes.push_back("dropped field " + std::string(key));
  }
  return true;
}

}  // namespace

std::variant<TranslatedRequest, ApiError> to_chat_request(std::string_view responses_body,
                                                          const RequestOptions& options) {
  if (auto valid = json_text::validate(responses_body); !valid)
    return bad_request("invalid_json", "the request body is not valid JSON: " + valid.error().message);
  // Same depth limit as the validation above (Boost.JSON's default of 32 would reject deep but
  // legitimate tool schemas with a misleading "not valid JSON").
  json::parse_options parse_options;
  parse_options.max_depth = 512;
  boost::system::error_code ec;
  json::value body = json::parse(responses_body, ec, json::storage_ptr(), parse_options);
  if (ec) return bad_request("invalid_json", "the request body is not valid JSON");
  if (!body.is_object()) return bad_request("invalid_json", "the request body must be a JSON object");
  Builder builder(responses_body, body.as_object(), options);
  return builder.run();
}

}  // namespace e2ee::api::responses

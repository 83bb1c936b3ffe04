// Venice AI's E2EE (venice-protocol.md): attestation at /api/v1/tee/attestation, secp256k1 keys in
// X-Venice-TEE-* headers, message content encrypted per message, streaming only.

#include <algorithm>

#include "common/encoding.hpp"
#include "common/json_text.hpp"
#include "common/log.hpp"
#include "common/raw_json.hpp"
#include "proxy/field/flavor.hpp"

namespace e2ee::proxy::field {
namespace {

ProxyError invalid_body(std::string message) { return bad_request("invalid_request", std::move(message)); }

// null, false, "" and Venice's "off": the feature is not asked for, so dropping the member changes nothing.
bool switched_off(const RawValue& v) {
  if (v.is_null()) return true;
  if (v.is_bool()) return !v.boolean();
  if (v.is_string()) {
    const std::string s = v.str();
    return s.empty() || s == "off" || s == "false";
  }
  return false;
}

// A text-only content array as one string, or nullopt when a part is not text.
std::optional<std::string> flatten_text_parts(const RawValue& parts) {
  std::string out;
  bool first = true;
  for (const RawValue& part : parts.elements()) {
    std::string text;
    if (part.is_string()) {
      text = part.str();
    } else if (part.is_object()) {
      const auto type = part.get_string("type").value_or("");
      // Responses-style part names appear in histories too; a refusal part has no prompt text.
      if (type == "refusal") continue;
      if (type != "text" && type != "input_text" && type != "output_text") return std::nullopt;
      auto t = part.get("text");
      if (!t || !t->is_string()) return std::nullopt;
      text = t->str();
    } else {
      return std::nullopt;
    }
    // vLLM joins text parts with a newline when a chat template wants one string.
    if (!first) out += '\n';
    out += text;
    first = false;
  }
  return out;
}

void add_once(std::vector<std::string>& list, std::string item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(std::move(item));
}

class VeniceFlavor final : public Flavor {
 public:
  explicit VeniceFlavor(const FieldOptions& options) : allow_missing_quote_(options.allow_missing_quote) {}

  ProviderKind kind() const noexcept override { return ProviderKind::venice; }
  Algo algo() const noexcept override { return Algo::ecdsa; }

  std::string attestation_target(std::string_view model, const AttestationNonce& nonce) const override {
    return "/api/v1/tee/attestation?model=" + url_encode(model) + "&nonce=" + nonce.hex();
  }
  Result<VerifiedKey> verify(std::string_view report, std::string_view model, const AttestationNonce& nonce) const override {
    return verify_venice_report(report, model, nonce, allow_missing_quote_);
  }
  std::string chat_path() const override { return "/api/v1/chat/completions"; }
  std::string models_path() const override { return "/api/v1/models"; }

  std::variant<PreparedBody, ProxyError> prepare(std::string_view body, bool client_stream) const override {
    return prepare_venice_body(body, client_stream);
  }

  RequestPlan plan(const Session& session) const override {
    RequestPlan p;
    p.policy.scheme = protocol::field::Scheme::ecdsa;
    p.policy.all_fields = false;       // Venice decrypts message content only
    p.policy.reasoning_field = true;   // no source says whether reasoning is encrypted: an envelope is required
    p.policy.arrays_as_json = false;   // arrays were flattened to strings in prepare()
    const Bytes model_raw = session.model.key.public_raw();
    p.headers = {
        {"X-Venice-TEE-Client-Pub-Key", hex_encode(session.client.public_uncompressed())},
        {"X-Venice-TEE-Model-Pub-Key", "04" + hex_encode(model_raw)},
        {"X-Venice-TEE-Signing-Algo", "ecdsa"},
    };
    return p;
  }

 private:
  bool allow_missing_quote_;
};

}  // namespace

std::variant<PreparedBody, ProxyError> prepare_venice_body(std::string_view body, bool client_stream) {
  auto doc = RawJson::parse(body);
  if (!doc) return bad_request("invalid_json", "invalid JSON body: " + doc.error().message);
  const RawValue root = doc->root();
  if (!root.is_object()) return invalid_body("the request body must be a JSON object");

  std::vector<std::string> refused;   // what the user asked for that E2EE cannot carry
  std::vector<std::string> stripped;  // top-level members dropped without changing the answer's meaning

  for (const char* key : {"tools", "functions"}) {
    if (auto v = root.get(key)) {
      if (v->is_null() || (v->is_array() && v->size() == 0)) stripped.push_back(key);
      else add_once(refused, "tools (function calling: Venice's E2EE gateway drops tool definitions)");
    }
  }
  if (auto v = root.get("response_format")) {
    if (v->is_null() || (v->is_object() && v->get_string("type").value_or("") == "text")) stripped.push_back("response_format");
    else refused.push_back("response_format (structured output)");
  }
  // Venice encrypts delta.content only: the tokens of logprobs would come back in plaintext.
  if (asks_for_logprobs(body)) refused.push_back("logprobs / top_logprobs (the answer's tokens would come back in plaintext)");
  if (auto v = root.get("web_search_options")) {
    if (v->is_null()) stripped.push_back("web_search_options");
    else refused.push_back("web_search_options (web search)");
  }
  for (const char* key : {"tool_choice", "parallel_tool_calls", "function_call", "reasoning_effort", "reasoning",
                          "prompt_cache_key", "prompt_cache_retention"})
    if (root.get(key)) stripped.push_back(key);

  std::string venice_parameters = "{}";
  if (auto v = root.get("venice_parameters"); v && !v->is_null()) {
    if (!v->is_object()) return invalid_body("venice_parameters must be an object");
    venice_parameters = std::string(v->raw());
    std::vector<std::string> drop;
    const std::pair<const char*, const char*> features[] = {
        {"enable_web_search", "venice_parameters.enable_web_search (web search)"},
        {"enable_x_search", "venice_parameters.enable_x_search (X search)"},
        {"enable_web_scraping", "venice_parameters.enable_web_scraping (fetching URLs from the prompt)"},
        {"character_slug", "venice_parameters.character_slug (a Venice character)"},
    };
    for (const auto& [key, label] : features) {
      if (auto f = v->get(key)) {
        if (switched_off(*f)) drop.push_back(key);
        else refused.push_back(label);
      }
    }
    // Forced below; the client's own values are replaced.
    for (const char* key : {"include_search_results_in_stream", "enable_web_citations", "enable_e2ee", "include_venice_system_prompt"})
      if (v->get(key)) drop.push_back(key);
    for (const auto& key : drop) {
      auto edited = json_text::remove_member(venice_parameters, key);
      if (!edited) return invalid_body("venice_parameters: " + edited.error().message);
      venice_parameters = std::move(*edited);
    }
  }
  // enable_e2ee switches Venice's gateway to E2EE; its system prompt would be added server-side in
  // plaintext, so it is off (as Venice's CLI does).
  for (const auto& [key, value] : {std::pair{"enable_e2ee", "true"}, std::pair{"include_venice_system_prompt", "false"}}) {
    auto edited = json_text::set_member(venice_parameters, key, value);
    if (!edited) return invalid_body("venice_parameters: " + edited.error().message);
    venice_parameters = std::move(*edited);
  }

  const auto messages = root.get("messages");
  if (!messages || !messages->is_array()) return invalid_body("'messages' must be an array");
  std::string new_messages = "[";
  bool messages_changed = false;
  bool first = true;
  for (const RawValue& m : messages->elements()) {
    std::string text(m.raw());
    if (m.is_object()) {
      auto calls = m.get("tool_calls");
      auto legacy_call = m.get("function_call");
      if ((calls && !calls->is_null() && !(calls->is_array() && calls->size() == 0)) || (legacy_call && !legacy_call->is_null()))
        add_once(refused, "tool calls in the conversation (their names and arguments would travel in plaintext)");
      if (auto content = m.get("content"); content && content->is_array()) {
        if (auto flat = flatten_text_parts(*content)) {
          auto edited = json_text::set_member(text, "content", json_text::quote(*flat));
          if (!edited) return invalid_body("messages: " + edited.error().message);
          text = std::move(*edited);
          messages_changed = true;
        } else {
          add_once(refused, "non-text message content (images, audio and files: Venice's E2EE takes text only)");
        }
      }
    }
    if (!first) new_messages += ',';
    new_messages += text;
    first = false;
  }
  new_messages += ']';

  if (!refused.empty()) {
    std::string list;
    for (const auto& r : refused) list += (list.empty() ? "" : "; ") + r;
    return ProxyError{400, "invalid_request_error", "e2ee_unsupported_parameter",
                      "Venice's end-to-end encrypted mode cannot carry: " + list +
                          ". The proxy refuses rather than send them in plaintext or drop them silently; remove them "
                          "from the request.",
                      0};
  }

  std::string out(body);
  auto apply = [&out](Result<std::string> edited) -> bool {
    if (!edited) return false;
    out = std::move(*edited);
    return true;
  };
  for (const auto& key : stripped)
    if (!apply(json_text::remove_member(out, key))) return invalid_body("the request body could not be edited");
  if (!apply(json_text::set_member(out, "venice_parameters", venice_parameters)) || !apply(json_text::set_member(out, "stream", "true")) ||
      (messages_changed && !apply(json_text::set_member(out, "messages", new_messages))))
    return invalid_body("the request body could not be edited");
  // A non-stream client gets one completion assembled from the stream: ask for the usage chunk.
  if (!client_stream && !apply(json_text::set_member(out, "stream_options", R"({"include_usage":true})")))
    return invalid_body("the request body could not be edited");
  if (!stripped.empty()) {
    std::string names;
    for (const auto& s : stripped) names += (names.empty() ? "" : ",") + s;
    log::debug("venice: parameters not sent", {{"parameters", names}});
  }
  return PreparedBody{std::move(out), true};
}

std::unique_ptr<Flavor> make_venice_flavor(const FieldOptions& options) { return std::make_unique<VeniceFlavor>(options); }

}  // namespace e2ee::proxy::field

#include "proxy/chutes/thinking.hpp"

#include <array>

#include "common/json_text.hpp"

namespace e2ee::proxy::chutes {
namespace {

constexpr std::string_view kSuffix = ":THINKING";

struct ModelDefault {
  std::string_view prefix;
  bool thinking;
};
// What Chutes' router applies on the normal path (spec §14); prefixes match variants (-TEE, -FP8).
constexpr std::array<ModelDefault, 4> kDefaults{{
    {"deepseek-ai/DeepSeek-V3.2-Speciale", true},
    {"zai-org/GLM-4.7", true},
    {"moonshotai/Kimi-K2.5", true},
    {"XiaomiMiMo/MiMo-V2-Flash", false},
}};

std::optional<bool> bool_member(std::string_view object, std::string_view key) {
  const auto text = json_text::member_value(object, key);
  if (text == "true") return true;
  if (text == "false") return false;
  return std::nullopt;
}

}  // namespace

std::optional<bool> parse_thinking_header(std::optional<std::string_view> value) {
  if (!value) return std::nullopt;
  std::string lower;
  for (char c : *value) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  while (!lower.empty() && lower.back() == ' ') lower.pop_back();
  while (!lower.empty() && lower.front() == ' ') lower.erase(lower.begin());
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

Result<ThinkingOutcome> apply_thinking_controls(std::string_view model, const json_text::ObjectMembers& body,
                                                std::optional<bool> header, bool chat) {
  ThinkingOutcome out{std::string(model), std::nullopt};
  bool suffix = false;
  // Only a trailing suffix counts: "a:THINKING-b" is a name, not a request.
  if (model.size() > kSuffix.size() && model.substr(model.size() - kSuffix.size()) == kSuffix) {
    suffix = true;
    out.model = std::string(model.substr(0, model.size() - kSuffix.size()));
    auto renamed = body.with_member("model", json_text::quote(out.model));
    if (!renamed) return std::move(renamed).error();
    out.body = std::move(*renamed);
  }
  if (!chat) return out;

  // Renaming the model changed no other member, so the index still answers for this one.
  const std::string_view kwargs = body.value("chat_template_kwargs");
  const bool kwargs_object = !kwargs.empty() && kwargs.front() == '{';
  std::optional<bool> decided;
  if (kwargs_object) {
    // An explicit value in the body wins; either key name counts.
    decided = bool_member(kwargs, "enable_thinking");
    if (!decided) decided = bool_member(kwargs, "thinking");
  }
  if (!decided) decided = header;
  if (!decided && suffix) decided = true;
  if (!decided) {
    for (const auto& d : kDefaults)
      if (out.model.substr(0, d.prefix.size()) == d.prefix) decided = d.thinking;
  }
  if (!decided) return out;

  std::string merged = kwargs_object ? std::string(kwargs) : std::string("{}");
  const char* value = *decided ? "true" : "false";
  for (const char* key : {"thinking", "enable_thinking"}) {
    auto set = json_text::set_member(merged, key, value);
    if (!set) return std::move(set).error();
    merged = std::move(*set);
  }
  auto with_kwargs = out.body ? json_text::set_member(*out.body, "chat_template_kwargs", merged)
                              : body.with_member("chat_template_kwargs", merged);
  if (!with_kwargs) return std::move(with_kwargs).error();
  out.body = std::move(*with_kwargs);
  return out;
}

}  // namespace e2ee::proxy::chutes

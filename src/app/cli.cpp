#include "app/cli.hpp"

#include <cstdlib>

namespace e2ee::app {

bool truthy(std::string_view t) {
  std::string lower;
  for (char c : t) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "true" || lower == "1" || lower == "yes";
}

CommandLine::CommandLine(std::string program, std::string summary, std::vector<OptionSpec> specs)
    : program_(std::move(program)), summary_(std::move(summary)), specs_(std::move(specs)) {}

const OptionSpec* CommandLine::find(std::string_view name) const {
  for (const auto& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

std::optional<std::string> CommandLine::parse(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); eq != std::string_view::npos && arg.substr(0, 2) == "--") {
      name = arg.substr(0, eq);
      inline_value = std::string(arg.substr(eq + 1));
    }
    const OptionSpec* spec = find(name);
    if (spec == nullptr) return "unknown option '" + std::string(name) + "' (see --help)";
    if (spec->value_name.empty()) {
      if (inline_value && !truthy(*inline_value)) continue;
      given_[spec->name].push_back("true");
      continue;
    }
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= argc) return "option " + spec->name + " needs a value (" + spec->value_name + ")";
      value = argv[++i];
    }
    auto& slot = given_[spec->name];
    if (!spec->repeatable) slot.clear();
    slot.push_back(std::move(value));
  }
  return std::nullopt;
}

std::vector<std::string> CommandLine::values(std::string_view name) const {
  if (auto it = given_.find(name); it != given_.end()) return it->second;
  if (const OptionSpec* spec = find(name); spec != nullptr && !spec->env.empty())
    if (const char* env = std::getenv(spec->env.c_str()); env != nullptr && *env != '\0') return {env};
  return {};
}

std::optional<std::string> CommandLine::value(std::string_view name) const {
  auto all = values(name);
  if (all.empty()) return std::nullopt;
  return all.back();
}

bool CommandLine::has(std::string_view name) const {
  const OptionSpec* spec = find(name);
  if (spec != nullptr && spec->value_name.empty()) {
    if (auto it = given_.find(name); it != given_.end()) return true;  // the flag itself
    // A switch from the environment is on only for exactly "true", as the reference proxy reads
    // ALLOW_NON_CONFIDENTIAL and TLS_SELF_SIGNED: "TRUE", "1" or "yes" leave it off.
    auto v = value(name);
    return v && *v == "true";
  }
  return !values(name).empty();
}

std::string CommandLine::help() const {
  std::string out = "usage: " + program_ + " [options]\n\n" + summary_ + "\n\nOptions:\n";
  for (const auto& s : specs_) {
    std::string head = "  " + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    if (head.size() < 30) head.resize(30, ' ');
    else head += "\n" + std::string(30, ' ');
    std::string tail = s.help;
    if (!s.default_text.empty()) tail += " (default: " + s.default_text + ")";
    if (!s.env.empty()) tail += " [env " + s.env + "]";
    if (s.repeatable) tail += " [repeatable]";
    // Wrap the description at ~100 columns, indented under itself.
    std::string line = head;
    std::size_t col = line.size() - (line.rfind('\n') == std::string::npos ? 0 : line.rfind('\n') + 1);
    std::size_t pos = 0;
    while (pos < tail.size()) {
      auto next = tail.find(' ', pos);
      if (next == std::string::npos) next = tail.size();
      const std::string word = tail.substr(pos, next - pos);
      if (col + word.size() + 1 > 100 && col > 30) {
        line += "\n" + std::string(30, ' ');
        col = 30;
      }
      if (col > 30) {
        line += ' ';
        ++col;
      }
      line += word;
      col += word.size();
      pos = next + 1;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace e2ee::app

#pragma once
// A small declarative command-line parser shared by both executables: every option is declared
// once with its help text and optional environment variable, so --help cannot drift from what is
// accepted. Flags win over environment variables, which win over defaults.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2ee::app {

struct OptionSpec {
  std::string name;         // "--listen"
  std::string value_name;   // "URL"; empty for a boolean switch
  std::string help;
  std::string env;          // environment variable consulted when the flag is absent ("" = none)
  bool repeatable = false;
  std::string default_text; // shown in --help
};

class CommandLine {
 public:
  CommandLine(std::string program, std::string summary, std::vector<OptionSpec> specs);

  // Parses argv. On error returns a one-line reason.
  std::optional<std::string> parse(int argc, const char* const* argv);

  bool has(std::string_view name) const;          // flag given, or its env var set (switches: env exactly "true")
  std::optional<std::string> value(std::string_view name) const;  // last value (flag, else env)
  std::vector<std::string> values(std::string_view name) const;   // all values (flags, else env)
  std::string help() const;

 private:
  const OptionSpec* find(std::string_view name) const;
  std::string program_;
  std::string summary_;
  std::vector<OptionSpec> specs_;
  std::map<std::string, std::vector<std::string>, std::less<>> given_;
};

// Interprets "true"/"1"/"yes" (any case) as true, as ALLOW_NON_CONFIDENTIAL and TLS_SELF_SIGNED do.
bool truthy(std::string_view text);

}  // namespace e2ee::app

#pragma once
// Structured logging to stderr: one line per event, as text or JSON.
//
// Logs carry metadata only — method, path, status, sizes, durations, model names, instance ids,
// error kinds. Never a prompt, a completion, a key, a nonce's secret or a decrypted byte, at any
// level: callers pass fields explicitly and there is no "log the body" helper on purpose. The
// integration tests grep every log line of both processes for a marker placed in the prompt.

#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

namespace e2ee::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };
enum class Format { text, json };

void configure(Level level, Format format);
bool enabled(Level level) noexcept;
bool parse_level(std::string_view text, Level& out);
bool parse_format(std::string_view text, Format& out);

struct Field {
  std::string_view key;
  std::string value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <typename Number, typename = std::enable_if_t<std::is_arithmetic_v<Number>>>
  Field(std::string_view k, Number v) : key(k), value(std::to_string(v)) {}
};

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::error, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::warn, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::info, m, f); }
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::debug)) write(Level::debug, m, f);
}
inline void trace(std::string_view m, std::initializer_list<Field> f = {}) {
  if (enabled(Level::trace)) write(Level::trace, m, f);
}

}  // namespace e2ee::log

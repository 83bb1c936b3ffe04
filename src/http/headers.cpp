#include "http/headers.hpp"

#include <algorithm>

#include "http/wire.hpp"

namespace e2ee::http {

namespace {

// Room for a typical head at the first field: growing one field at a time (1, 2, 4, 8) moved every
// name and value up to three times and cost three reallocations per map where one reservation does.
constexpr std::size_t kTypicalFields = 8;

char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
  for (const auto& [field_name, value] : fields_) {
    if (iequals(field_name, name)) return std::string_view(value);
  }
  return std::nullopt;
}

void Headers::set(std::string_view name, std::string_view value) {
  // Keep the position of the first occurrence so that replacing a value does not reorder the head.
  auto first = std::find_if(fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.first, name); });
  if (first == fields_.end()) {
    add(name, value);
    return;
  }
  first->second.assign(value);
  fields_.erase(std::remove_if(std::next(first), fields_.end(), [&](const Field& f) { return iequals(f.first, name); }),
                fields_.end());
}

void Headers::add(std::string_view name, std::string_view value) {
  if (fields_.capacity() == 0) fields_.reserve(kTypicalFields);
  fields_.emplace_back(std::string(name), std::string(value));
}

void Headers::remove(std::string_view name) {
  fields_.erase(std::remove_if(fields_.begin(), fields_.end(), [&](const Field& f) { return iequals(f.first, name); }),
                fields_.end());
}

namespace wire {

bool is_token(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool alnum = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
    if (alnum) continue;
    switch (c) {
      case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
      case '^': case '_': case '`': case '|': case '~':
        continue;
      default:
        return false;
    }
  }
  return true;
}

bool is_field_value(std::string_view text) noexcept {
  return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool append_fields(std::string& out, const Headers& headers, std::initializer_list<std::string_view> skip) {
  for (const auto& [name, value] : headers.fields()) {
    // Captured by a named reference: clang before 16 cannot capture a structured binding (fuzz preset).
    const std::string& field_name = name;
    if (std::any_of(skip.begin(), skip.end(), [&](std::string_view s) { return iequals(s, field_name); })) continue;
    if (!is_token(name) || !is_field_value(value)) return false;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  return true;
}

bool list_contains(std::string_view list, std::string_view token) noexcept {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace wire

}  // namespace e2ee::http

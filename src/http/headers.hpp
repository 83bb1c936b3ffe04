#pragma once
// HTTP header fields: an ordered list (order is kept on the wire) with case-insensitive lookup.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace e2ee::http {

bool iequals(std::string_view a, std::string_view b) noexcept;

class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  // First value of `name`, if present.
  std::optional<std::string_view> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  // Replaces every field called `name` with one field.
  void set(std::string_view name, std::string_view value);
  // Appends a field even if one with that name exists.
  void add(std::string_view name, std::string_view value);
  void remove(std::string_view name);

  const std::vector<Field>& fields() const noexcept { return fields_; }
  bool empty() const noexcept { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

}  // namespace e2ee::http

#pragma once
// A read-only view of a client's JSON body that keeps every value's exact bytes.
//
// Translators must pass numbers, tool schemas and tool inputs through exactly as the client wrote
// them: Boost.JSON 1.81 turns every non-integer number into a double and prints it back in its own
// spelling ("0.7" becomes "7E-1", integers past 2^64 lose digits), and re-serialising reorders
// nothing but re-spells everything. The model sees tool arguments as text, and prefix caching
// needs identical bytes turn after turn, so the translators copy raw spans instead.
//
// The text is validated strictly first (common/json_text.hpp: RFC 8259, UTF-8, depth), then
// indexed once; lookups walk the index. Errors never quote the text.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace e2ee {

struct RawMember;

class RawValue {
 public:
  enum class Type : std::uint8_t { null, boolean, number, string, array, object };

  Type type() const noexcept;
  bool is_null() const noexcept { return type() == Type::null; }
  bool is_bool() const noexcept { return type() == Type::boolean; }
  bool is_number() const noexcept { return type() == Type::number; }
  bool is_string() const noexcept { return type() == Type::string; }
  bool is_array() const noexcept { return type() == Type::array; }
  bool is_object() const noexcept { return type() == Type::object; }
  // A number written without fraction or exponent ("12", "-3"), as JSON integers are.
  bool is_integer() const noexcept;

  std::string_view raw() const noexcept;  // the exact bytes of this value in the source text
  std::string str() const;                // a string's decoded UTF-8; "" for other types
  bool boolean() const noexcept;          // true only for the literal `true`
  std::size_t size() const noexcept;      // elements of an array, members of an object, else 0

  // Member of an object by its (unescaped) key; the last duplicate wins, as in most parsers.
  // nullopt for other types or when absent.
  std::optional<RawValue> get(std::string_view key) const;
  // Shorthand: the member's decoded string when it is a string, else nullopt.
  std::optional<std::string> get_string(std::string_view key) const;

  std::vector<RawValue> elements() const;  // an array's elements in order; empty for other types
  std::vector<RawMember> members() const;  // an object's members in order (duplicates included)

 private:
  friend class RawJson;
  struct Doc;
  RawValue(const Doc* doc, std::uint32_t node) : doc_(doc), node_(node) {}
  const Doc* doc_;
  std::uint32_t node_;
};

struct RawMember {
  std::string key;  // unescaped
  RawValue value;
};

class RawJson {
 public:
  // Copies the text. Errc::invalid_argument for bad JSON, Errc::limit_exceeded when nested deeper
  // than max_depth or larger than 4 GiB. Messages name a byte offset, never content.
  static Result<RawJson> parse(std::string_view text, std::size_t max_depth = 256);

  RawValue root() const noexcept { return RawValue(doc_.get(), 0); }
  std::string_view text() const noexcept;

 private:
  explicit RawJson(std::unique_ptr<RawValue::Doc> doc);
  std::shared_ptr<const RawValue::Doc> doc_;  // stable address: values keep a pointer to it
};

}  // namespace e2ee

#pragma once
// Byte-faithful edits of JSON text. The proxy must forward a client's JSON as the client wrote it
// (key order, number spelling such as 64-bit seeds and long decimals, empty arrays, escapes) and
// change only the members it has to. So instead of parse-and-reserialise, these functions
// validate the text with a strict RFC 8259 scanner and splice bytes at member boundaries.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace e2ee::json_text {

// Strict RFC 8259 validation of a complete document (UTF-8 checked, nesting depth limited).
// Whitespace may surround the value; nothing else may. Rejected beyond the grammar: invalid UTF-8
// (overlong forms, UTF-8-encoded surrogates, code points above U+10FFFF), a byte-order mark, and
// \u escapes of unpaired surrogates (orjson, which parses these bodies on a Chutes instance, also
// rejects them, so accepting them here would only move the failure somewhere opaque).
// Errors: Errc::invalid_argument for bad JSON, Errc::limit_exceeded when nesting exceeds
// max_depth (the top-level array or object is depth 1). Messages name a byte offset, never content.
Status validate(std::string_view text, std::size_t max_depth = 512);

// Where a member of the top-level object sits in the text.
struct MemberSpan {
  std::size_t member_begin;  // first byte of the key's opening quote
  std::size_t member_end;    // one past the last byte of the value
  std::size_t value_begin;
  std::size_t value_end;
};

// Finds `key` (compared after unescaping) among the members of the top-level object. The text
// must be valid JSON whose top level is an object; otherwise an error. Duplicate keys: the last
// one wins, as in most parsers; it is the one returned.
Result<std::optional<MemberSpan>> find_member(std::string_view object_text, std::string_view key);

// The raw JSON text of `key`'s value in the top-level object; empty when the key is absent or the
// text is not a valid JSON object (callers that must tell those apart use find_member).
std::string_view member_value(std::string_view object_text, std::string_view key);

// The members of a top-level object, indexed in one validating pass, for callers that read several
// keys of the same text: each find_member call scans (and validates) the whole document again,
// which for a 450 KB agent context is milliseconds per key. Views into `object_text`, which must
// outlive the index and stay unchanged.
class ObjectMembers {
 public:
  // Errors as find_member's: invalid JSON, or valid JSON whose top level is not an object.
  static Result<ObjectMembers> index(std::string_view object_text);
  // The member named `key` (compared after unescaping; the last duplicate wins), or nullopt.
  std::optional<MemberSpan> find(std::string_view key) const;
  // The raw JSON text of `key`'s value, or empty when absent.
  std::string_view value(std::string_view key) const;
  // The same index for the same bytes at another address: the indexed std::string was moved
  // (a short string's bytes move with the object). The caller guarantees the bytes are the same.
  ObjectMembers moved_to(std::string_view same_text) const;
  // set_member and remove_member on the indexed text, without scanning it again.
  Result<std::string> with_member(std::string_view key, std::string_view value_json) const;
  std::string without_member(std::string_view key) const;

 private:
  struct Entry {
    std::size_t key_begin;  // the key literal's body, without quotes, still escaped
    std::size_t key_end;
    MemberSpan span;
  };
  std::string_view text_;
  std::vector<Entry> entries_;
  std::size_t close_brace_ = 0;      // offset of the object's '}'
  std::size_t last_member_end_ = 0;  // one past the last member's value (when there are members)
};

// Sets `key` to `value_json` (already valid JSON text) in the top-level object: replaces the
// value in place if the key exists (every duplicate), else appends the member before the closing
// brace. All other bytes are unchanged. value_json is validated too (Errc::invalid_argument).
// An appended member is written compactly (`,"key":value`) right after the last member's value,
// so the whitespace before '}' stays in place and remove_member restores the input exactly.
Result<std::string> set_member(std::string_view object_text, std::string_view key, std::string_view value_json);

// Removes every `key` member from the top-level object, fixing commas; other bytes unchanged.
Result<std::string> remove_member(std::string_view object_text, std::string_view key);

// JSON string literal for `text` (quotes included), escaping as RFC 8259 requires: '"', '\\' and
// control characters; everything else is copied. `text` should be UTF-8; an invalid sequence is
// replaced by U+FFFD so that the result is always valid JSON.
std::string quote(std::string_view text);

// Decodes one JSON string literal (quotes included, nothing around them, as a MemberSpan's value
// when it is a string) to UTF-8. Errc::invalid_argument when `literal` is not exactly that.
Result<std::string> unquote(std::string_view literal);

}  // namespace e2ee::json_text

#pragma once
// Byte-faithful edits of JSON text. The proxy must forward a client's JSON as the client wrote it
// (key order, number spelling such as 64-bit seeds and long decimals, empty arrays, escapes) and
// change only the members it has to. So instead of parse-and-reserialise, these functions
// validate the text with a strict RFC 8259 scanner and splice bytes at member boundaries.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

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

#pragma once
// HTTP/1.1 wire-format helpers shared by the server and the client (internal to src/http/).
// Both sides write message heads themselves and use Beast only for parsing, so that what goes on
// the wire is validated in one place and every head leaves in a single buffer.

#include <initializer_list>
#include <string>
#include <string_view>

#include "http/headers.hpp"

namespace e2ee::http::wire {

// RFC 9110 section 5.6.2: token = 1*tchar.
bool is_token(std::string_view text) noexcept;
// A field value we are willing to put on the wire: no CR, LF or NUL (they would split the message).
bool is_field_value(std::string_view text) noexcept;

// Appends "Name: value\r\n" for every field whose name is not in `skip` (case-insensitive).
// Returns false, leaving `out` partly written, if a field is not valid on the wire.
bool append_fields(std::string& out, const Headers& headers, std::initializer_list<std::string_view> skip);

// Does the comma-separated header value contain `token` (case-insensitive)? For Connection,
// Expect and Transfer-Encoding lists.
bool list_contains(std::string_view list, std::string_view token) noexcept;

}  // namespace e2ee::http::wire

#pragma once
// Hex and base64 codecs. Both run without data-dependent branches or table lookups, so they are
// safe on secret bytes (key files, shared secrets in test output) as well as on public ones; the
// *_public variants trade that for speed on ciphertext.

#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.hpp"

namespace e2ee {

// Lower-case hex.
std::string hex_encode(ByteView bytes);
// Accepts upper and lower case; rejects odd lengths and any non-hex character (no "0x" prefix:
// callers that accept one strip it first).
std::optional<Bytes> hex_decode(std::string_view text);

// RFC 4648 section 4 alphabet with '=' padding (what Python's base64.b64encode produces).
std::string base64_encode(ByteView bytes);
// Strict RFC 4648 section 4 decoding: padding may be present or absent, but no whitespace,
// no characters outside the alphabet, no data after padding.
std::optional<Bytes> base64_decode(std::string_view text);
// The same two codecs for bytes that are public (ciphertext, public keys, as the E2EE protocols
// put them on the wire): table lookups, several times faster, but which table entries are read
// depends on the data, so never use them on anything secret. Same output and same strictness as
// base64_encode/base64_decode (the tables are computed from their mappings).
std::string base64_encode_public(ByteView bytes);
std::optional<Bytes> base64_decode_public(std::string_view text);
// RFC 4648 section 5 (URL- and filename-safe) alphabet, padding optional.
std::string base64url_encode(ByteView bytes, bool pad = false);
std::optional<Bytes> base64url_decode(std::string_view text);

}  // namespace e2ee

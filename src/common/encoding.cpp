#include "common/encoding.hpp"

#include <array>
#include <cstdint>

namespace e2ee {
namespace {

// All helpers below map between a 4/6-bit value and its character with arithmetic on masks
// instead of lookup tables or branches, so the running time does not depend on the data.

// Returns 0xFF..FF when a < b (both < 2^31), else 0.
constexpr std::uint32_t lt_mask(std::uint32_t a, std::uint32_t b) { return 0u - ((a - b) >> 31); }
// Returns 0xFF..FF when lo <= c <= hi.
constexpr std::uint32_t range_mask(std::uint32_t c, std::uint32_t lo, std::uint32_t hi) {
  return ~lt_mask(c, lo) & ~lt_mask(hi, c);
}

char hex_digit(std::uint32_t n) {  // n < 16
  // '0' + n for n < 10, 'a' + (n - 10) otherwise.
  return static_cast<char>(n + '0' + (~lt_mask(n, 10) & ('a' - '0' - 10)));
}

// Returns the nibble value, or a value >= 256 (bit 8 set) for a non-hex character.
std::uint32_t hex_value(std::uint32_t c) {
  const std::uint32_t digit = range_mask(c, '0', '9');
  const std::uint32_t lower = range_mask(c, 'a', 'f');
  const std::uint32_t upper = range_mask(c, 'A', 'F');
  const std::uint32_t value = (digit & (c - '0')) | (lower & (c - 'a' + 10)) | (upper & (c - 'A' + 10));
  const std::uint32_t valid = digit | lower | upper;
  return value | (~valid & 0x100u);
}

// The two alphabets differ only in the characters for 62 and 63.
struct Alphabet {
  char c62;
  char c63;
};
constexpr Alphabet kStandard{'+', '/'};
constexpr Alphabet kUrlSafe{'-', '_'};

// Inlined: called per character of every sealed body; a call per character was ~5 % of the
// gateway's CPU per Chutes request (callgrind, docs/performance.md history).
[[gnu::always_inline]] constexpr char b64_char(std::uint32_t n, Alphabet a) {  // n < 64
  std::uint32_t c = n + 'A';
  c += lt_mask(25, n) & ('a' - 'A' - 26);          // 26..51 -> 'a'..'z'
  c += lt_mask(51, n) & ('0' - 'a' - 26u + 0u);     // 52..61 -> '0'..'9'
  c = (c & ~range_mask(n, 62, 62)) | (range_mask(n, 62, 62) & static_cast<std::uint32_t>(a.c62));
  c = (c & ~range_mask(n, 63, 63)) | (range_mask(n, 63, 63) & static_cast<std::uint32_t>(a.c63));
  return static_cast<char>(c);
}

// Returns the 6-bit value, or a value with bit 8 set for a character outside the alphabet.
[[gnu::always_inline]] constexpr std::uint32_t b64_value(std::uint32_t c, Alphabet a) {
  const std::uint32_t upper = range_mask(c, 'A', 'Z');
  const std::uint32_t lower = range_mask(c, 'a', 'z');
  const std::uint32_t digit = range_mask(c, '0', '9');
  const std::uint32_t m62 = range_mask(c, static_cast<std::uint8_t>(a.c62), static_cast<std::uint8_t>(a.c62));
  const std::uint32_t m63 = range_mask(c, static_cast<std::uint8_t>(a.c63), static_cast<std::uint8_t>(a.c63));
  const std::uint32_t value = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
                              (m62 & 62u) | (m63 & 63u);
  return value | (~(upper | lower | digit | m62 | m63) & 0x100u);
}

// The framing of both codecs, shared by the constant-time and the table-driven variants:
// `char_of(n)` maps a 6-bit value to its character, `value_of(c)` a character to its value or
// to a value with bit 8 set when it is outside the alphabet.
template <class CharOf>
std::string b64_encode_with(ByteView in, bool pad, CharOf char_of) {
  const std::size_t full = in.size() / 3;
  const std::size_t rest = in.size() - full * 3;
  const std::size_t tail = rest == 0 ? 0 : (pad ? 4 : rest + 1);
  std::string out(full * 4 + tail, '\0');
  char* o = out.data();
  const std::uint8_t* p = in.data();
  for (std::size_t q = 0; q < full; ++q, p += 3, o += 4) {
    const std::uint32_t v = (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | p[2];
    o[0] = char_of(v >> 18);
    o[1] = char_of((v >> 12) & 63);
    o[2] = char_of((v >> 6) & 63);
    o[3] = char_of(v & 63);
  }
  if (rest != 0) {
    const std::uint32_t v = (std::uint32_t{p[0]} << 16) | (rest == 2 ? std::uint32_t{p[1]} << 8 : 0u);
    o[0] = char_of(v >> 18);
    o[1] = char_of((v >> 12) & 63);
    if (rest == 2) o[2] = char_of((v >> 6) & 63);
    if (pad) {
      if (rest == 1) o[2] = '=';
      o[3] = '=';
    }
  }
  return out;
}

template <class ValueOf>
std::optional<Bytes> b64_decode_with(std::string_view text, ValueOf value_of) {
  // Padding is structural (public), so branching on it is fine.
  if (text.size() % 4 == 0 && !text.empty()) {
    if (text.back() == '=') text.remove_suffix(1);
    if (!text.empty() && text.back() == '=') text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) return std::nullopt;
  const std::size_t full = text.size() / 4;
  const std::size_t rest = text.size() % 4;  // 0, 2 or 3 characters: 0, 1 or 2 more bytes
  Bytes out(full * 3 + (rest == 0 ? 0 : rest - 1));
  std::uint8_t* o = out.data();
  const auto* c = reinterpret_cast<const std::uint8_t*>(text.data());
  std::uint32_t bad = 0;
  for (std::size_t q = 0; q < full; ++q, c += 4, o += 3) {
    const std::uint32_t v0 = value_of(c[0]);
    const std::uint32_t v1 = value_of(c[1]);
    const std::uint32_t v2 = value_of(c[2]);
    const std::uint32_t v3 = value_of(c[3]);
    bad |= v0 | v1 | v2 | v3;
    const std::uint32_t v = (v0 << 18) | (v1 << 12) | (v2 << 6) | v3;
    o[0] = static_cast<std::uint8_t>(v >> 16);
    o[1] = static_cast<std::uint8_t>(v >> 8);
    o[2] = static_cast<std::uint8_t>(v);
  }
  if (rest >= 2) {
    const std::uint32_t v0 = value_of(c[0]);
    const std::uint32_t v1 = value_of(c[1]);
    const std::uint32_t v2 = rest == 3 ? value_of(c[2]) : 0;
    bad |= v0 | v1 | v2;
    const std::uint32_t v = (v0 << 18) | (v1 << 12) | (v2 << 6);
    o[0] = static_cast<std::uint8_t>(v >> 16);
    if (rest == 3) o[1] = static_cast<std::uint8_t>(v >> 8);
  }
  if (bad & 0x100u) return std::nullopt;
  return out;
}

std::string b64_encode(ByteView in, Alphabet a, bool pad) {
  return b64_encode_with(in, pad, [a](std::uint32_t n) { return b64_char(n, a); });
}
std::optional<Bytes> b64_decode(std::string_view text, Alphabet a) {
  return b64_decode_with(text, [a](std::uint32_t c) { return b64_value(c, a); });
}

// The tables of the public-data variants, computed from the constant-time mappings above so
// that the two cannot disagree.
constexpr std::array<char, 64> kStandardChars = [] {
  std::array<char, 64> t{};
  for (std::uint32_t n = 0; n < 64; ++n) t[n] = b64_char(n, kStandard);
  return t;
}();
constexpr std::array<std::uint16_t, 256> kStandardValues = [] {
  std::array<std::uint16_t, 256> t{};
  for (std::uint32_t c = 0; c < 256; ++c) t[c] = static_cast<std::uint16_t>(b64_value(c, kStandard));
  return t;
}();
static_assert(kStandardChars[0] == 'A' && kStandardChars[63] == '/' && kStandardValues['+'] == 62 &&
              kStandardValues['='] >= 0x100 && kStandardValues[0xff] >= 0x100);

}  // namespace

std::string hex_encode(ByteView bytes) {
  std::string out;
  out.resize(bytes.size() * 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = hex_digit(bytes[i] >> 4);
    out[2 * i + 1] = hex_digit(bytes[i] & 15);
  }
  return out;
}

std::optional<Bytes> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  Bytes out(text.size() / 2);
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint32_t hi = hex_value(static_cast<std::uint8_t>(text[2 * i]));
    const std::uint32_t lo = hex_value(static_cast<std::uint8_t>(text[2 * i + 1]));
    bad |= hi | lo;
    out[i] = static_cast<std::uint8_t>((hi << 4) | (lo & 15));
  }
  if (bad & 0x100u) return std::nullopt;
  return out;
}

std::string base64_encode(ByteView bytes) { return b64_encode(bytes, kStandard, true); }
std::optional<Bytes> base64_decode(std::string_view text) { return b64_decode(text, kStandard); }
std::string base64url_encode(ByteView bytes, bool pad) { return b64_encode(bytes, kUrlSafe, pad); }
std::optional<Bytes> base64url_decode(std::string_view text) { return b64_decode(text, kUrlSafe); }

std::string base64_encode_public(ByteView bytes) {
  return b64_encode_with(bytes, true, [](std::uint32_t n) { return kStandardChars[n]; });
}
std::optional<Bytes> base64_decode_public(std::string_view text) {
  return b64_decode_with(text, [](std::uint32_t c) -> std::uint32_t { return kStandardValues[c]; });
}

}  // namespace e2ee

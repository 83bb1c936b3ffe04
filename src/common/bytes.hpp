#pragma once
// Byte-string vocabulary shared by every layer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace e2ee {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using MutableByteView = std::span<std::uint8_t>;

// Views text as bytes and bytes as text without copying (both are octet sequences here).
inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_text(ByteView b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
// Both copy through pointers of the element type, which the library turns into one memcpy; a
// range of char into uint8_t (or back) is copied a byte at a time instead.
inline Bytes to_bytes(std::string_view s) {
  const ByteView b = as_bytes(s);
  return Bytes(b.data(), b.data() + b.size());
}
inline std::string to_string(ByteView b) { return std::string(as_text(b)); }

inline void append(Bytes& out, ByteView more) { out.insert(out.end(), more.begin(), more.end()); }

}  // namespace e2ee

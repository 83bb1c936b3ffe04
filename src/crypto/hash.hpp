#pragma once
// Hash functions. SHA-2 and SHA-3/SHAKE come from OpenSSL; Keccak-256 (the pre-standard padding
// that Ethereum uses, which OpenSSL 3.0 does not offer) is our own.

#include <array>
#include <cstdint>

#include "common/bytes.hpp"

namespace e2ee::crypto {

using Digest32 = std::array<std::uint8_t, 32>;
using Digest64 = std::array<std::uint8_t, 64>;

Digest32 sha256(ByteView data);
Digest64 sha512(ByteView data);
Digest32 sha3_256(ByteView data);
Digest64 sha3_512(ByteView data);
// Extendable output: writes out.size() bytes.
void shake128(ByteView data, MutableByteView out);
void shake256(ByteView data, MutableByteView out);

// Keccak-256 with the original 0x01 padding (Ethereum), not SHA3-256.
Digest32 keccak256(ByteView data);

}  // namespace e2ee::crypto

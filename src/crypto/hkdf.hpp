#pragma once
// HKDF-SHA256, RFC 5869.

#include <cstddef>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto {

// Extract-then-expand. An empty `salt` means HashLen zero bytes (RFC 5869 section 2.2).
// Fails when `length` > 255 * 32.
Result<SecretBytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);

// The common case of a 32-byte key.
Result<SecretArray<32>> hkdf_sha256_32(ByteView ikm, ByteView salt, ByteView info);

}  // namespace e2ee::crypto

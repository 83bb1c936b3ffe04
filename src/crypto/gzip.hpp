#pragma once
// gzip (RFC 1952): compression by libdeflate, decompression by zlib's streaming inflate.
// Decompression is bounded: peers control the input, and a few KiB of gzip can expand to gigabytes.

#include <cstddef>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace e2ee::crypto {

// Compresses `data` into a single gzip member at `level` (1 fastest … 9 smallest).
Result<Bytes> gzip_compress(ByteView data, int level = 6);

// Decompresses one or more concatenated gzip members (as Python's gzip.decompress accepts).
// Fails with Errc::limit_exceeded as soon as the output would exceed `max_output` bytes, and with
// Errc::malformed on a bad header, a CRC/length mismatch, truncation or trailing garbage.
Result<Bytes> gzip_decompress(ByteView data, std::size_t max_output);

}  // namespace e2ee::crypto

// Bounded gzip decompression (src/crypto/gzip.cpp): peers control the input of every
// gzip_decompress call (request blobs at the gateway, response blobs at the proxy).
//
// Input: bytes taken as a gzip stream; the output limit is chosen per input (0 … 64 KiB).
// Checks: the output never exceeds the limit; an error is limit_exceeded or malformed, nothing
// else; a result is exact (the same input succeeds at limit = its size and fails with
// limit_exceeded one byte below; a larger limit gives the same bytes); a limit_exceeded input
// never decompresses to that limit or less; and the input's bytes survive gzip_compress →
// gzip_decompress unchanged at every level (the per-thread zlib streams are reused throughout).

#include <array>

#include "crypto/gzip.hpp"
#include "fuzz_support.hpp"

namespace {

using e2ee::ByteView;
using e2ee::Errc;
using e2ee::crypto::gzip_compress;
using e2ee::crypto::gzip_decompress;

constexpr std::array<std::size_t, 7> kLimits{0, 1, 15, 100, 1000, 4096, 65536};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView input(data, size);
  e2ee::fuzz::Rng rng(e2ee::fuzz::text_of(data, size));
  const std::size_t limit = kLimits[rng.below(kLimits.size())];

  const auto out = gzip_decompress(input, limit);
  if (out) {
    FUZZ_CHECK(out->size() <= limit);
    const auto exact = gzip_decompress(input, out->size());
    FUZZ_CHECK(exact && *exact == *out);
    if (!out->empty()) {
      const auto below = gzip_decompress(input, out->size() - 1);
      FUZZ_CHECK(!below && below.error().code == Errc::limit_exceeded);
    }
    const auto larger = gzip_decompress(input, limit * 2 + 1);
    FUZZ_CHECK(larger && *larger == *out);
  } else {
    const Errc code = out.error().code;
    FUZZ_CHECK_MSG(code == Errc::limit_exceeded || code == Errc::malformed, out.error().message);
    if (code == Errc::limit_exceeded) {
      const auto larger = gzip_decompress(input, limit * 4 + 64);
      FUZZ_CHECK(!larger || larger->size() > limit);
    }
  }

  const int level = static_cast<int>(rng.below(10));
  const auto packed = gzip_compress(input, level);
  FUZZ_CHECK(packed.has_value());
  const auto unpacked = gzip_decompress(*packed, size);
  FUZZ_CHECK(unpacked && unpacked->size() == size && std::equal(unpacked->begin(), unpacked->end(), data));
  return 0;
}

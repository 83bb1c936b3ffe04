#include "crypto/gzip.hpp"

#include <libdeflate.h>

#define ZLIB_CONST  // next_in becomes a pointer to const: input is never written
#include <zlib.h>

#include <algorithm>
#include <array>
#include <optional>
#include <climits>
#include <string>

namespace e2ee::crypto {
namespace {

// Inflate accepts the gzip wrapper only (32 KiB window; +16 selects gzip): a zlib-wrapped or raw
// deflate stream is refused instead of auto-detected, because the protocol says gzip.
constexpr int kGzipWindowBits = 15 + 16;

// zlib counts in uInt (32 bits); larger spans are fed in pieces.
constexpr std::size_t kMaxPiece = std::size_t{1} << 30;
static_assert(kMaxPiece <= UINT_MAX);

// First output allocation when decompressing is a guess of 4x the input (JSON usually
// compresses 5-10x), at least 16 KiB; the buffer then doubles. Every step is capped at the limit.
constexpr std::size_t kMinInitialOutput = 16 * 1024;
constexpr std::size_t kExpansionGuess = 4;

Error zlib_error(Errc code, const char* what, const z_stream& zs) {
  std::string message = std::string("gzip: ") + what;
  if (zs.msg != nullptr) message += std::string(" (") + zs.msg + ")";  // zlib's text names no data
  return make_error(code, std::move(message));
}

// Compression is libdeflate's (whole-buffer, which is all we compress): on this machine it
// compresses the 450 KiB agent prompt at level 1 in 3.1 ms to 33.1 % where zlib took 5.7 ms to
// 36.0 %, and a 1 KB request in 15 us instead of 22 (docs/performance.md, history). Its output
// is ordinary gzip, which every peer's zlib reads.
//
// One compressor per level and thread, allocated on first use and kept: allocating one per
// request made glibc grow the heap, fault the pages in and trim them again every time, which
// once cost about 10 % of the proxy's CPU per request (docs/performance.md, history). A
// compressor keeps no input between calls that a later call could reference.
struct CompressorCache {
  std::array<libdeflate_compressor*, 10> by_level{};  // levels 0..9
  ~CompressorCache() {
    for (auto* c : by_level) libdeflate_free_compressor(c);
  }
};

thread_local CompressorCache t_compressors;

libdeflate_compressor* compressor_for(int level) {
  auto*& c = t_compressors.by_level[static_cast<std::size_t>(level)];
  if (c == nullptr) c = libdeflate_alloc_compressor(level);
  return c;
}

// Decompression stays with zlib's streaming inflate, which enforces the limit as it goes. A
// one-shot libdeflate path sized by the trailer was twice as fast on a 450 KiB body, but libdeflate
// accepts deflate data that zlib refuses (an invalid code-length repeat, the reserved fixed-Huffman
// codes): the same input then succeeded or failed depending on the limit, which the gzip fuzzer
// found (fuzz/regressions/gzip_decompress).
//
// Inflate streams are kept per thread and reset between uses, like the compressors.
struct InflaterCache {
  z_stream zs{};
  bool live = false;
  ~InflaterCache() {
    if (live) inflateEnd(&zs);
  }
};

thread_local InflaterCache t_inflater;

z_stream* inflater(std::optional<Error>& error) {
  z_stream& zs = t_inflater.zs;
  if (t_inflater.live) {
    // A call that stopped early (limit reached, bad data) left input behind: it is not ours.
    zs.next_in = nullptr;
    zs.avail_in = 0;
    zs.next_out = nullptr;
    zs.avail_out = 0;
    if (inflateReset(&zs) == Z_OK) return &zs;
    inflateEnd(&zs);
    t_inflater.live = false;
  }
  zs = z_stream{};
  if (inflateInit2(&zs, kGzipWindowBits) != Z_OK) {
    error = zlib_error(Errc::internal, "inflateInit2 failed", zs);
    return nullptr;
  }
  t_inflater.live = true;
  return &zs;
}

// Grows `out` to the next size without ever reserving more than `limit` bytes: reserve()
// allocates exactly what it is asked for, where resize() alone may round capacity up to twice
// the old size.
void grow(Bytes& out, std::size_t input_size, std::size_t limit) {
  const std::size_t first =
      input_size > limit / kExpansionGuess ? limit : std::max(input_size * kExpansionGuess, kMinInitialOutput);
  const std::size_t doubled = out.size() > limit / 2 ? limit : out.size() * 2;
  const std::size_t next = std::min(limit, out.empty() ? first : doubled);
  out.reserve(next);
  out.resize(next);
}

}  // namespace

Result<Bytes> gzip_compress(ByteView data, int level) {
  if (level < 0 || level > 9) return make_error(Errc::invalid_argument, "gzip level must be 0 to 9");
  libdeflate_compressor* const compressor = compressor_for(level);
  if (compressor == nullptr) return make_error(Errc::internal, "gzip: out of memory for the compressor");
  // The bound covers the gzip header and trailer and incompressible input, so the call cannot
  // run out of room; 0 would mean it did.
  Bytes out(libdeflate_gzip_compress_bound(compressor, data.size()));
  const std::size_t n = libdeflate_gzip_compress(compressor, data.data(), data.size(), out.data(), out.size());
  if (n == 0) return make_error(Errc::internal, "gzip: compression did not fit its bound");
  out.resize(n);
  return out;
}

// Multi-member input is accepted like Python's gzip.decompress, with one deliberate difference:
// Python strips zero bytes after a member (tape-block padding); here anything after a member
// that is not the start of another member is trailing garbage. No sender in these protocols
// pads (Python's gzip.compress, Node's zlib.gzipSync and this file's gzip_compress do not), and
// a framing bug that leaves zero bytes behind should surface rather than be absorbed.
Result<Bytes> gzip_decompress(ByteView data, std::size_t max_output) {
  if (data.empty()) return make_error(Errc::malformed, "gzip: empty input");
  std::optional<Error> init_error;
  z_stream* const stream = inflater(init_error);
  if (stream == nullptr) return std::move(*init_error);
  // Any state this call leaves the stream in (an error, a member half read) is undone by the
  // inflateReset of the next call.
  z_stream& zs = *stream;

  Bytes out;
  std::size_t produced = 0;
  std::size_t in_off = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_off < data.size()) {
      const std::size_t n = std::min(kMaxPiece, data.size() - in_off);
      zs.next_in = data.data() + in_off;
      zs.avail_in = static_cast<uInt>(n);
      in_off += n;
    }
    if (produced == out.size() && out.size() < max_output) grow(out, data.size(), max_output);

    // At the limit, inflate gets a single scratch byte: if it writes it, the output would
    // exceed the limit, and we stop without ever holding more than max_output bytes.
    std::uint8_t probe = 0;
    const bool probing = produced == out.size();
    const std::size_t room = probing ? 1 : std::min(kMaxPiece, out.size() - produced);
    zs.next_out = probing ? &probe : out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const uInt avail_in_before = zs.avail_in;

    const int rc = inflate(&zs, Z_NO_FLUSH);
    const std::size_t got = room - zs.avail_out;
    if (probing && got != 0) {
      return make_error(Errc::limit_exceeded,
                        "gzip: decompressed size exceeds the limit of " + std::to_string(max_output) + " bytes");
    }
    produced += got;
    const bool input_left = zs.avail_in != 0 || in_off < data.size();

    switch (rc) {
      case Z_STREAM_END: {
        // zlib has checked this member's CRC-32 and ISIZE trailer.
        if (!input_left) {
          out.resize(produced);
          return out;
        }
        const auto offset = static_cast<std::size_t>(zs.next_in - data.data());
        if (data.size() - offset < 2 || data[offset] != 0x1f || data[offset + 1] != 0x8b) {
          return make_error(Errc::malformed, "gzip: trailing data after the last member");
        }
        if (inflateReset(&zs) != Z_OK) return zlib_error(Errc::internal, "inflateReset failed", zs);
        break;
      }
      case Z_OK:
      case Z_BUF_ERROR:
        // inflate stops when input runs out or output space does; with space left and no
        // input left, the stream ended early.
        if (zs.avail_out != 0 && !input_left) return make_error(Errc::malformed, "gzip: truncated input");
        if (zs.avail_out != 0 && got == 0 && zs.avail_in == avail_in_before) {
          return zlib_error(Errc::internal, "inflate made no progress", zs);
        }
        break;
      case Z_DATA_ERROR:  // bad header, bad deflate data, CRC-32 or length mismatch
      case Z_NEED_DICT:   // only zlib streams ask for a dictionary; not valid gzip
        return zlib_error(Errc::malformed, "invalid gzip data", zs);
      case Z_MEM_ERROR:
        return zlib_error(Errc::internal, "out of memory", zs);
      default:
        return zlib_error(Errc::internal, "inflate failed", zs);
    }
  }
}

}  // namespace e2ee::crypto

#include "crypto/gzip.hpp"

#define ZLIB_CONST  // next_in becomes a pointer to const: input is never written
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <string>

namespace e2ee::crypto {
namespace {

// 32 KiB window; +16 selects the gzip wrapper only. For inflate that also means a zlib-wrapped
// or raw deflate stream is refused instead of auto-detected: the protocol says gzip.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kMemLevel = 8;  // zlib's default

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

struct Deflater {
  z_stream zs{};
  bool live = false;
  ~Deflater() {
    if (live) deflateEnd(&zs);
  }
};

struct Inflater {
  z_stream zs{};
  bool live = false;
  ~Inflater() {
    if (live) inflateEnd(&zs);
  }
};

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
  Deflater d;
  if (deflateInit2(&d.zs, level, Z_DEFLATED, kGzipWindowBits, kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
    return zlib_error(Errc::internal, "deflateInit2 failed", d.zs);
  }
  d.live = true;

  // deflateBound covers the gzip header and trailer, so one allocation normally suffices.
  Bytes out(deflateBound(&d.zs, static_cast<uLong>(data.size())));
  std::size_t in_off = 0;
  std::size_t out_off = 0;
  for (;;) {
    if (d.zs.avail_in == 0 && in_off < data.size()) {
      const std::size_t n = std::min(kMaxPiece, data.size() - in_off);
      d.zs.next_in = data.data() + in_off;
      d.zs.avail_in = static_cast<uInt>(n);
      in_off += n;
    }
    if (out_off == out.size()) out.resize(out.size() + std::max<std::size_t>(out.size() / 2, 64));
    const std::size_t room = std::min(kMaxPiece, out.size() - out_off);
    d.zs.next_out = out.data() + out_off;
    d.zs.avail_out = static_cast<uInt>(room);
    // Z_FINISH once every input byte has been handed to zlib, and from then on until it ends.
    const int rc = deflate(&d.zs, in_off == data.size() ? Z_FINISH : Z_NO_FLUSH);
    out_off += room - d.zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) return zlib_error(Errc::internal, "deflate failed", d.zs);
  }
  out.resize(out_off);
  return out;
}

// Multi-member input is accepted like Python's gzip.decompress, with one deliberate difference:
// Python strips zero bytes after a member (tape-block padding); here anything after a member
// that is not the start of another member is trailing garbage. No sender in these protocols
// pads (Python's gzip.compress, Node's zlib.gzipSync and this file's gzip_compress do not), and
// a framing bug that leaves zero bytes behind should surface rather than be absorbed.
Result<Bytes> gzip_decompress(ByteView data, std::size_t max_output) {
  if (data.empty()) return make_error(Errc::malformed, "gzip: empty input");
  Inflater inf;
  if (inflateInit2(&inf.zs, kGzipWindowBits) != Z_OK) return zlib_error(Errc::internal, "inflateInit2 failed", inf.zs);
  inf.live = true;
  z_stream& zs = inf.zs;

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

#include "crypto/gzip.hpp"

#define ZLIB_CONST  // next_in becomes a pointer to const: input is never written
#include <zlib.h>

#include <algorithm>
#include <array>
#include <optional>
#include <climits>
#include <string>

namespace e2ee::crypto {
namespace {

// 32 KiB window; +16 selects the gzip wrapper only. For inflate that also means a zlib-wrapped
// or raw deflate stream is refused instead of auto-detected: the protocol says gzip.
constexpr int kGzipWindowBits = 15 + 16;
constexpr int kMemLevel = 8;  // zlib's default

// Small inputs (a 1 KB chat request, a non-stream answer) are compressed with a 4 KiB window and
// memLevel 4: ~24 KiB of deflate state touched and cleared per request instead of ~268 KiB, which
// otherwise passes through L1/L2 between the ML-KEM and HTTP work of every Chutes request. The
// output is the same or within a few bytes (a window larger than the input finds no further
// matches). Its throughput effect was within this machine's noise (docs/performance.md). Inflate
// reads the window size from the stream.
constexpr std::size_t kSmallInputMax = 4096;
constexpr int kSmallWindowBits = 12 + 16;
constexpr int kSmallMemLevel = 4;

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

// zlib streams are kept per thread and reset between uses rather than created and destroyed per
// call. A deflate stream holds ~256 KiB (window, hash chains, pending buffer): allocating it for
// each request and freeing it afterwards made glibc grow the heap, fault the pages in and trim
// them again every time, which cost more than compressing a 1 KB request (bench/run-proxy:
// about 10 % of the proxy's CPU per request; docs/performance.md, history). deflateReset and
// inflateReset return a stream to its initial state; deflateReset also clears the hash table,
// so nothing of an earlier input can be referenced. (The earlier code did not wipe the state it
// freed either: old plaintext stays in memory in both cases until it is overwritten.)
struct DeflaterCache {
  // Per level (deflateReset keeps the level), then per size tier: [0] small inputs, [1] the rest.
  std::array<z_stream, 20> streams{};
  std::array<bool, 20> live{};
  ~DeflaterCache() {
    for (std::size_t i = 0; i < streams.size(); ++i)
      if (live[i]) deflateEnd(&streams[i]);
  }
};

struct InflaterCache {
  z_stream zs{};
  bool live = false;
  ~InflaterCache() {
    if (live) inflateEnd(&zs);
  }
};

thread_local DeflaterCache t_deflaters;
thread_local InflaterCache t_inflater;

std::size_t deflater_index(int level, std::size_t input_size) {
  return static_cast<std::size_t>(level) * 2 + (input_size <= kSmallInputMax ? 0 : 1);
}

// A deflate stream for `level` sized for `input_size`, fresh or reset; nullptr (and `error` set)
// when zlib fails.
z_stream* deflater_for(int level, std::size_t input_size, std::optional<Error>& error) {
  const std::size_t i = deflater_index(level, input_size);
  const bool small = input_size <= kSmallInputMax;
  z_stream& zs = t_deflaters.streams[i];
  if (t_deflaters.live[i]) {
    // The reset leaves the caller-owned buffer fields alone; a stale avail_in would be read as input.
    zs.next_in = nullptr;
    zs.avail_in = 0;
    zs.next_out = nullptr;
    zs.avail_out = 0;
    if (deflateReset(&zs) == Z_OK) return &zs;
    deflateEnd(&zs);
    t_deflaters.live[i] = false;
  }
  zs = z_stream{};
  if (deflateInit2(&zs, level, Z_DEFLATED, small ? kSmallWindowBits : kGzipWindowBits,
                   small ? kSmallMemLevel : kMemLevel, Z_DEFAULT_STRATEGY) != Z_OK) {
    error = zlib_error(Errc::internal, "deflateInit2 failed", zs);
    return nullptr;
  }
  t_deflaters.live[i] = true;
  return &zs;
}

// After a failure mid-stream: drop the stream rather than trust its state.
void discard_deflater(int level, std::size_t input_size) {
  const std::size_t i = deflater_index(level, input_size);
  if (t_deflaters.live[i]) deflateEnd(&t_deflaters.streams[i]);
  t_deflaters.live[i] = false;
}

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
  std::optional<Error> init_error;
  z_stream* const stream = deflater_for(level, data.size(), init_error);
  if (stream == nullptr) return std::move(*init_error);
  z_stream& zs = *stream;

  // deflateBound covers the gzip header and trailer, so one allocation normally suffices.
  Bytes out(deflateBound(&zs, static_cast<uLong>(data.size())));
  std::size_t in_off = 0;
  std::size_t out_off = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_off < data.size()) {
      const std::size_t n = std::min(kMaxPiece, data.size() - in_off);
      zs.next_in = data.data() + in_off;
      zs.avail_in = static_cast<uInt>(n);
      in_off += n;
    }
    if (out_off == out.size()) out.resize(out.size() + std::max<std::size_t>(out.size() / 2, 64));
    const std::size_t room = std::min(kMaxPiece, out.size() - out_off);
    zs.next_out = out.data() + out_off;
    zs.avail_out = static_cast<uInt>(room);
    // Z_FINISH once every input byte has been handed to zlib, and from then on until it ends.
    const int rc = deflate(&zs, in_off == data.size() ? Z_FINISH : Z_NO_FLUSH);
    out_off += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      Error error = zlib_error(Errc::internal, "deflate failed", zs);
      discard_deflater(level, data.size());
      return error;
    }
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

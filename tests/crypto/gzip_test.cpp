#include "crypto/gzip.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/encoding.hpp"

namespace e2ee::crypto {
namespace {

Bytes unhex(std::string_view text) {
  auto bytes = hex_decode(text);
  if (!bytes) ADD_FAILURE() << "bad hex in test source: " << text.substr(0, 16);
  return bytes.value_or(Bytes{});
}

Bytes concat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (const auto p : parts) append(out, p);
  return out;
}

::testing::AssertionResult fails_with(const Result<Bytes>& r, Errc code) {
  if (r.has_value()) {
    return ::testing::AssertionFailure() << "succeeded with " << r->size() << " bytes; expected " << to_string(code);
  }
  if (r.error().code != code) {
    return ::testing::AssertionFailure() << "failed with " << to_string(r.error().code) << " (" << r.error().message
                                         << "); expected " << to_string(code);
  }
  return ::testing::AssertionSuccess();
}

// Produced once with GNU gzip 1.12 (Debian 12), not by this code:
//   printf 'hello\n' | gzip -n          -> kHello
//   printf 'world\n' | gzip -n -9       -> kWorld
//   gzip -c fox.txt (mtime 2024-01-02T03:04:05Z, content below) -> kFox; its header carries
//   FNAME "fox.txt" and an MTIME, fields zlib must skip.
const Bytes kHello = unhex("1f8b0800000000000003cb48cdc9c9e7020020303a3606000000");
const Bytes kWorld = unhex("1f8b08000000000002032bcf2fca49e10200a86138dd06000000");
const Bytes kFox = unhex(
    "1f8b0808257d93650003666f782e747874000bc94855282ccd4cce56482aca2fcf5348cbaf50c82acd2d2856c82f4b2d5228014ae724"
    "56552aa4e4a773010038c1936d2c000000");
const std::string kFoxText = "The quick brown fox jumps over the lazy dog\n";

constexpr std::size_t kNoLimit = std::size_t{1} << 40;

// ~450 KB of chat-completion-like JSON with enough variety not to be trivially repetitive.
std::string json_like_text(std::size_t target) {
  std::string s = "{\"messages\":[";
  for (unsigned i = 0; s.size() < target; ++i) {
    s += "{\"role\":\"" + std::string(i % 3 == 0 ? "user" : "assistant") + "\",\"content\":\"Message " +
         std::to_string(i) + ": the value of " + std::to_string(i * 2654435761u % 1000003u) +
         " is not a prime factor of " + std::to_string(i * 40503u) + ".\"},";
  }
  s.back() = ']';
  s += "}";
  return s;
}

std::uint32_t le32(ByteView b) {
  return static_cast<std::uint32_t>(b[0]) | static_cast<std::uint32_t>(b[1]) << 8 |
         static_cast<std::uint32_t>(b[2]) << 16 | static_cast<std::uint32_t>(b[3]) << 24;
}

// RFC 1952 framing of our output: magic, method, no flags, and a trailer holding CRC-32 and
// the length mod 2^32 (CRC from zlib's crc32(), not from the code under test).
void expect_gzip_member_of(const Bytes& member, ByteView original) {
  ASSERT_GE(member.size(), 18u);
  EXPECT_EQ(member[0], 0x1f);
  EXPECT_EQ(member[1], 0x8b);
  EXPECT_EQ(member[2], 8) << "compression method deflate";
  EXPECT_EQ(member[3], 0) << "no optional header fields";
  const auto trailer = ByteView(member).last(8);
  const auto crc = crc32(0L, original.data(), static_cast<uInt>(original.size()));
  EXPECT_EQ(le32(trailer.first(4)), static_cast<std::uint32_t>(crc));
  EXPECT_EQ(le32(trailer.last(4)), static_cast<std::uint32_t>(original.size()));
}

TEST(GzipKnownBlobs, DecompressesOutputOfGnuGzip) {
  const auto hello = gzip_decompress(kHello, kNoLimit);
  ASSERT_TRUE(hello) << hello.error().message;
  EXPECT_EQ(to_string(*hello), "hello\n");
  const auto world = gzip_decompress(kWorld, kNoLimit);
  ASSERT_TRUE(world) << world.error().message;
  EXPECT_EQ(to_string(*world), "world\n");
  const auto fox = gzip_decompress(kFox, kNoLimit);
  ASSERT_TRUE(fox) << fox.error().message;
  EXPECT_EQ(to_string(*fox), kFoxText);
}

TEST(GzipRoundTrip, EmptyAndSmall) {
  for (const std::string& text : {std::string(), std::string("a"), std::string("hello\n"), kFoxText}) {
    for (const int level : {0, 1, 6, 9}) {
      SCOPED_TRACE("size " + std::to_string(text.size()) + " level " + std::to_string(level));
      const auto packed = gzip_compress(as_bytes(text), level);
      ASSERT_TRUE(packed) << packed.error().message;
      expect_gzip_member_of(*packed, as_bytes(text));
      const auto unpacked = gzip_decompress(*packed, text.size());
      ASSERT_TRUE(unpacked) << unpacked.error().message;
      EXPECT_EQ(to_string(*unpacked), text);
    }
  }
}

// Inputs up to 4 KiB use a smaller deflate state than larger ones (per thread, reused): sizes on
// both sides of the boundary, interleaved so each call follows one of the other tier, round-trip
// and compress about as well as a full 32 KiB window does.
TEST(GzipRoundTrip, BothSizeTiersInterleaved) {
  const std::string big = json_like_text(64 * 1024);
  for (int round = 0; round < 3; ++round) {
    for (const std::size_t size : {std::size_t{4095}, std::size_t{4096}, std::size_t{4097}, std::size_t{1024},
                                   std::size_t{64 * 1024}, std::size_t{300}}) {
      const std::string text = big.substr(round * 7, size);
      SCOPED_TRACE("size " + std::to_string(size) + " round " + std::to_string(round));
      const auto packed = gzip_compress(as_bytes(text), 1);
      ASSERT_TRUE(packed) << packed.error().message;
      expect_gzip_member_of(*packed, as_bytes(text));
      const auto unpacked = gzip_decompress(*packed, text.size());
      ASSERT_TRUE(unpacked) << unpacked.error().message;
      EXPECT_TRUE(to_string(*unpacked) == text);
      if (size >= 1024 && size <= 4096) {
        EXPECT_LT(packed->size(), text.size() / 2) << "repetitive JSON still compresses";
      }
    }
  }
}

TEST(GzipRoundTrip, LargeJsonAtLevels1And6) {
  const std::string text = json_like_text(450 * 1024);
  ASSERT_GE(text.size(), 450u * 1024u);
  for (const int level : {1, 6}) {
    SCOPED_TRACE("level " + std::to_string(level));
    const auto packed = gzip_compress(as_bytes(text), level);
    ASSERT_TRUE(packed) << packed.error().message;
    EXPECT_LT(packed->size(), text.size() / 3) << "JSON this repetitive compresses well";
    expect_gzip_member_of(*packed, as_bytes(text));
    const auto unpacked = gzip_decompress(*packed, kNoLimit);
    ASSERT_TRUE(unpacked) << unpacked.error().message;
    EXPECT_TRUE(to_string(*unpacked) == text);
  }
}

TEST(GzipCompress, RejectsBadLevels) {
  for (const int level : {-2, -1, 10, 100}) {
    const auto packed = gzip_compress(as_bytes("x"), level);
    ASSERT_FALSE(packed) << level;
    EXPECT_EQ(packed.error().code, Errc::invalid_argument);
  }
}

TEST(GzipMultiMember, ConcatenatedMembersDecompressToTheConcatenation) {
  const auto two = gzip_decompress(concat({kHello, kWorld}), kNoLimit);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(to_string(*two), "hello\nworld\n");

  const auto empty_member = gzip_compress({}, 6);
  ASSERT_TRUE(empty_member);
  const auto three = gzip_decompress(concat({kFox, *empty_member, kHello}), kNoLimit);
  ASSERT_TRUE(three) << three.error().message;
  EXPECT_EQ(to_string(*three), kFoxText + "hello\n");
}

TEST(GzipMultiMember, LimitCountsAllMembers) {
  const Bytes both = concat({kHello, kWorld});
  EXPECT_TRUE(gzip_decompress(both, 12));
  EXPECT_TRUE(fails_with(gzip_decompress(both, 11), Errc::limit_exceeded));
  EXPECT_TRUE(fails_with(gzip_decompress(both, 6), Errc::limit_exceeded));
}

TEST(GzipMalformed, TrailingGarbageIsRejected) {
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, as_bytes("x")}), kNoLimit), Errc::malformed));
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, as_bytes("garbage after the member")}), kNoLimit),
                         Errc::malformed));
  // Half a magic number, and a magic number with nothing after it.
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes{0x1f}}), kNoLimit), Errc::malformed));
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes{0x1f, 0x8b}}), kNoLimit), Errc::malformed));
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes{0x1f, 0x8c, 0x08, 0x00}}), kNoLimit), Errc::malformed));
}

// Python's gzip.decompress skips zero bytes after a member; we deliberately do not (gzip.cpp).
TEST(GzipMalformed, TrailingZeroPaddingIsRejected) {
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes{0x00}}), kNoLimit), Errc::malformed));
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes(512, 0x00)}), kNoLimit), Errc::malformed));
  EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, Bytes(4, 0x00), kWorld}), kNoLimit), Errc::malformed));
}

TEST(GzipMalformed, EveryTruncationIsRejected) {
  const std::string text = json_like_text(20 * 1024);
  const auto packed = gzip_compress(as_bytes(text), 6);
  ASSERT_TRUE(packed);
  for (const Bytes* blob : {&kHello, &kFox, &*packed}) {
    for (std::size_t n = 0; n < blob->size(); ++n) {
      EXPECT_TRUE(fails_with(gzip_decompress(ByteView(*blob).first(n), kNoLimit), Errc::malformed))
          << "truncated to " << n << " of " << blob->size();
    }
  }
  // A complete member followed by a truncated one.
  for (std::size_t n = 1; n < kWorld.size(); ++n) {
    EXPECT_TRUE(fails_with(gzip_decompress(concat({kHello, ByteView(kWorld).first(n)}), kNoLimit), Errc::malformed))
        << "second member truncated to " << n;
  }
}

TEST(GzipMalformed, CorruptTrailerIsRejected) {
  // The last 8 bytes are CRC-32 then ISIZE (RFC 1952 section 2.3).
  for (std::size_t i = kHello.size() - 8; i < kHello.size(); ++i) {
    for (const std::uint8_t bit : {0x01, 0x80}) {
      Bytes bad = kHello;
      bad[i] ^= bit;
      EXPECT_TRUE(fails_with(gzip_decompress(bad, kNoLimit), Errc::malformed)) << "trailer byte " << i;
    }
  }
}

TEST(GzipMalformed, CorruptHeaderIsRejected) {
  for (const std::size_t i : {0u, 1u, 2u}) {  // magic, magic, method
    Bytes bad = kHello;
    bad[i] ^= 0x01;
    EXPECT_TRUE(fails_with(gzip_decompress(bad, kNoLimit), Errc::malformed)) << "header byte " << i;
  }
  Bytes reserved_flag = kHello;
  reserved_flag[3] = 0xe0;  // FLG bits 5-7 are reserved and must be zero
  EXPECT_TRUE(fails_with(gzip_decompress(reserved_flag, kNoLimit), Errc::malformed));
}

// FLG.FHCRC adds a CRC-16 of the header (RFC 1952 section 2.3.1), and it is checked.
TEST(GzipMalformed, AWrongHeaderCrcIsRejected) {
  Bytes with_crc(kHello.begin(), kHello.begin() + 10);
  with_crc[3] |= 0x02;
  const auto crc = static_cast<std::uint16_t>(crc32(0, with_crc.data(), static_cast<uInt>(with_crc.size())) & 0xffff);
  with_crc.push_back(static_cast<std::uint8_t>(crc));
  with_crc.push_back(static_cast<std::uint8_t>(crc >> 8));
  with_crc.insert(with_crc.end(), kHello.begin() + 10, kHello.end());
  const auto good = gzip_decompress(with_crc, kNoLimit);
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(std::string(good->begin(), good->end()), "hello\n");
  Bytes bad = with_crc;
  bad[10] ^= 0x01;
  EXPECT_TRUE(fails_with(gzip_decompress(bad, kNoLimit), Errc::malformed));
}

TEST(GzipMalformed, EmptyInputIsRejected) {
  EXPECT_TRUE(fails_with(gzip_decompress({}, kNoLimit), Errc::malformed));
}

TEST(GzipMalformed, ZlibAndRawDeflateAreNotGzip) {
  const std::string text = "this is zlib-wrapped, not gzip";
  Bytes zlib_wrapped(compressBound(static_cast<uLong>(text.size())));
  uLongf len = static_cast<uLongf>(zlib_wrapped.size());
  ASSERT_EQ(compress2(zlib_wrapped.data(), &len, reinterpret_cast<const Bytef*>(text.data()),
                      static_cast<uLong>(text.size()), 6),
            Z_OK);
  zlib_wrapped.resize(len);
  ASSERT_EQ(zlib_wrapped[0], 0x78);  // a zlib header, which auto-detection would accept
  EXPECT_TRUE(fails_with(gzip_decompress(zlib_wrapped, kNoLimit), Errc::malformed));

  // kHello without its 10-byte header and 8-byte trailer is a raw deflate stream.
  const ByteView raw = ByteView(kHello).subspan(10, kHello.size() - 18);
  EXPECT_TRUE(fails_with(gzip_decompress(raw, kNoLimit), Errc::malformed));
}

TEST(GzipLimit, ExactlyAtTheLimitIsAcceptedOneBelowIsNot) {
  EXPECT_TRUE(gzip_decompress(kHello, 6));
  EXPECT_TRUE(fails_with(gzip_decompress(kHello, 5), Errc::limit_exceeded));
  EXPECT_TRUE(fails_with(gzip_decompress(kHello, 0), Errc::limit_exceeded));

  const auto empty = gzip_compress({}, 6);
  ASSERT_TRUE(empty);
  const auto nothing = gzip_decompress(*empty, 0);
  ASSERT_TRUE(nothing) << nothing.error().message;
  EXPECT_TRUE(nothing->empty());

  // Sizes around the output buffer's first allocation (16 KiB for small inputs) and later steps.
  for (const std::size_t size : {std::size_t{16 * 1024}, std::size_t{16 * 1024 + 1}, std::size_t{100000}}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string text = json_like_text(size).substr(0, size);
    const auto packed = gzip_compress(as_bytes(text), 6);
    ASSERT_TRUE(packed);
    const auto exact = gzip_decompress(*packed, size);
    ASSERT_TRUE(exact) << exact.error().message;
    EXPECT_EQ(exact->size(), size);
    EXPECT_TRUE(fails_with(gzip_decompress(*packed, size - 1), Errc::limit_exceeded));
  }
}

long max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// 1 GiB of zeros deflates to about 1 MiB. Built by streaming deflate over one zero buffer, so
// the test itself never holds more than that megabyte plus the buffer.
Bytes gzip_bomb(std::size_t expanded) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_RLE), Z_OK);
  const Bytes zeros(1 << 20, 0);
  Bytes out;
  Bytes chunk(1 << 16);
  std::size_t fed = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.avail_in == 0 && fed < expanded) {
      zs.next_in = const_cast<Bytef*>(zeros.data());  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(std::min(zeros.size(), expanded - fed));
      fed += zs.avail_in;
    }
    zs.next_out = chunk.data();
    zs.avail_out = static_cast<uInt>(chunk.size());
    rc = deflate(&zs, fed == expanded && zs.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
    EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) << rc;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(chunk.size() - zs.avail_out));
  }
  deflateEnd(&zs);
  return out;
}

// A lie in the trailer's size field costs nothing: nothing is sized from it, so a tiny member
// claiming 2 GiB is refused as malformed without reserving anything near that, and a claim a
// little off either way is reported as the mismatch it is.
TEST(GzipMalformed, ALyingSizeTrailerCostsNothing) {
  const long rss_before = max_rss_kib();
  for (const std::uint32_t claim : {0x7fffffffu, 5u, 7u, 0u}) {  // "hello\n" is 6 bytes
    Bytes bad = kHello;
    for (int i = 0; i < 4; ++i) bad[bad.size() - 4 + i] = static_cast<std::uint8_t>(claim >> (8 * i));
    EXPECT_TRUE(fails_with(gzip_decompress(bad, std::size_t{4} << 30), Errc::malformed)) << "claim " << claim;
  }
  EXPECT_LT(max_rss_kib() - rss_before, 64 * 1024);
}

TEST(GzipLimit, DecompressionBombIsRefusedWithoutBigAllocations) {
  const Bytes bomb = gzip_bomb(std::size_t{1} << 30);
  ASSERT_LT(bomb.size(), 2u << 20);  // ~1000:1
  const long rss_before = max_rss_kib();

  constexpr std::size_t kLimit = 8u << 20;  // 8 MiB
  EXPECT_TRUE(fails_with(gzip_decompress(bomb, kLimit), Errc::limit_exceeded));

  // Peak resident memory grows by the capped output (plus one doubling step), nowhere near
  // the 1 GiB the input would expand to.
  const long growth_kib = max_rss_kib() - rss_before;
  EXPECT_LT(growth_kib, 64 * 1024) << "peak RSS grew by " << growth_kib << " KiB";
}

// Sanity check of the bomb itself, with a smaller expansion that is allowed to complete.
TEST(GzipLimit, BombConstructionDecodesToZeros) {
  const Bytes bomb = gzip_bomb(std::size_t{3} << 20);
  const auto out = gzip_decompress(bomb, std::size_t{3} << 20);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->size(), std::size_t{3} << 20);
  EXPECT_EQ(std::count(out->begin(), out->end(), 0), static_cast<std::ptrdiff_t>(out->size()));
}

}  // namespace
}  // namespace e2ee::crypto

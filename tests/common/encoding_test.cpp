#include "common/encoding.hpp"

#include <gtest/gtest.h>

#include <random>

namespace e2ee {
namespace {

TEST(Hex, RoundTripsEveryByteValue) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  const std::string text = hex_encode(all);
  EXPECT_EQ(text.substr(0, 8), "00010203");
  EXPECT_EQ(text.substr(text.size() - 4), "feff");
  EXPECT_EQ(hex_decode(text), all);
}

TEST(Hex, AcceptsUpperCase) { EXPECT_EQ(hex_decode("DEADbeef"), (Bytes{0xde, 0xad, 0xbe, 0xef})); }

TEST(Hex, RejectsOddLengthAndNonHex) {
  EXPECT_FALSE(hex_decode("abc"));
  EXPECT_FALSE(hex_decode("0x00"));
  EXPECT_FALSE(hex_decode("zz"));
  EXPECT_FALSE(hex_decode("0g"));
  EXPECT_FALSE(hex_decode("g0"));
  EXPECT_FALSE(hex_decode("@0"));  // one below 'A'
  EXPECT_FALSE(hex_decode("`0"));  // one below 'a'
  EXPECT_FALSE(hex_decode("/0"));  // one below '0'
  EXPECT_FALSE(hex_decode(":0"));  // one above '9'
  EXPECT_TRUE(hex_decode("")->empty());
}

// RFC 4648 section 10 test vectors.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), encoded);
    EXPECT_EQ(base64_decode(encoded), to_bytes(plain)) << encoded;
  }
}

TEST(Base64, UsesBothAlphabetsForValues62And63) {
  const Bytes bytes{0xfb, 0xff, 0xbf};  // 111110 111111 111110 111111
  EXPECT_EQ(base64_encode(bytes), "+/+/");
  EXPECT_EQ(base64url_encode(bytes), "-_-_");
  EXPECT_EQ(base64_decode("+/+/"), bytes);
  EXPECT_EQ(base64url_decode("-_-_"), bytes);
  EXPECT_FALSE(base64_decode("-_-_"));
  EXPECT_FALSE(base64url_decode("+/+/"));
}

TEST(Base64, AcceptsMissingPadding) { EXPECT_EQ(base64_decode("Zm8"), to_bytes("fo")); }

TEST(Base64, UnpaddedUrlEncodingHasExactLength) {
  EXPECT_EQ(base64url_encode(as_bytes(std::string_view("f"))), "Zg");
  EXPECT_EQ(base64url_encode(as_bytes(std::string_view("fo"))), "Zm8");
  EXPECT_EQ(base64url_encode(as_bytes(std::string_view("foo"))), "Zm9v");
  EXPECT_EQ(base64url_encode(as_bytes(std::string_view("f")), true), "Zg==");
}

TEST(Base64, RejectsMalformedInput) {
  EXPECT_FALSE(base64_decode("Zm9v\n"));
  EXPECT_FALSE(base64_decode("Zm 9v"));
  EXPECT_FALSE(base64_decode("Z"));
  EXPECT_FALSE(base64_decode("Zm=v"));
  EXPECT_FALSE(base64_decode("===="));
  EXPECT_FALSE(base64_decode("Zg==Zg=="));
  EXPECT_FALSE(base64_decode("Zm9v!A=="));
}

TEST(Base64, RoundTripsRandomData) {
  std::mt19937 rng(42);
  for (std::size_t len = 0; len < 200; ++len) {
    Bytes data(len);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    EXPECT_EQ(base64_decode(base64_encode(data)), data) << len;
    EXPECT_EQ(base64url_decode(base64url_encode(data)), data) << len;
    EXPECT_EQ(base64url_decode(base64url_encode(data, true)), data) << len;
  }
}

// The table-driven codecs for public bytes must agree with the constant-time ones on every
// input, valid or not: same bytes out, same rejections.
TEST(Base64Public, AgreesWithTheConstantTimeCodecOnRandomData) {
  std::mt19937 rng(7);
  for (std::size_t len = 0; len < 300; ++len) {
    Bytes data(len);
    for (auto& b : data) b = static_cast<std::uint8_t>(rng());
    const std::string text = base64_encode_public(data);
    EXPECT_EQ(text, base64_encode(data)) << len;
    EXPECT_EQ(base64_decode_public(text), data) << len;
  }
}

TEST(Base64Public, AcceptsAndRejectsExactlyWhatTheConstantTimeDecoderDoes) {
  // Every byte value in every position of a short text, and random texts over an alphabet
  // weighted towards the edges of the valid ranges and the padding character.
  for (int c = 0; c < 256; ++c) {
    for (std::size_t at = 0; at < 8; ++at) {
      std::string text = "Zm9vYmE=";
      text[at] = static_cast<char>(c);
      EXPECT_EQ(base64_decode_public(text), base64_decode(text)) << c << " at " << at;
    }
  }
  const std::string_view pool = "AZaz09+/=-_@[`{/:\\\"\n \x80\xff";
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string text(rng() % 13, 'A');
    for (auto& ch : text) ch = (rng() % 4 == 0) ? pool[rng() % pool.size()] : "Zm9vYmFy"[rng() % 8];
    EXPECT_EQ(base64_decode_public(text), base64_decode(text)) << text;
  }
  for (const char* bad : {"Zm9v\n", "Zm 9v", "Z", "Zm=v", "====", "Zg==Zg==", "Zm9v!A==", "-_-_"})
    EXPECT_FALSE(base64_decode_public(bad)) << bad;
  EXPECT_EQ(base64_decode_public("+/+/"), (Bytes{0xfb, 0xff, 0xbf}));
}

}  // namespace
}  // namespace e2ee

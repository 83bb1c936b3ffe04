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

}  // namespace
}  // namespace e2ee

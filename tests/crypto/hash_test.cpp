#include "crypto/hash.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/encoding.hpp"

// Expected values are the published examples of FIPS 180-4 (NIST CSRC "Examples with
// Intermediate Values": SHA256.pdf, SHA512.pdf) and FIPS 202 (SHA3-256_Msg0.pdf,
// SHA3-256_1600.pdf, SHAKE128_Msg0.pdf, SHAKE256_Msg0.pdf, ...), each cross-checked with an
// implementation independent of OpenSSL (coreutils sha256sum/sha512sum; CPython's built-in
// _sha3 module) before being written down here.

namespace e2ee::crypto {
namespace {

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& digest) {
  return hex_encode(digest);
}

const std::string kAbc = "abc";
const std::string k448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
const std::string k896 =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
const std::string kMillionA(1000000, 'a');
const Bytes kA3x200(200, 0xa3);  // FIPS 202 examples' 1600-bit message: longer than one SHA3 block

TEST(Sha256, Fips180Examples) {
  EXPECT_EQ(hex(sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(sha256(as_bytes(kAbc))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha256(as_bytes(k448))), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(sha256(as_bytes(kMillionA))), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha512, Fips180Examples) {
  EXPECT_EQ(hex(sha512({})),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  EXPECT_EQ(hex(sha512(as_bytes(kAbc))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(hex(sha512(as_bytes(k896))),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
            "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909");
}

TEST(Sha3_256, Fips202Examples) {
  EXPECT_EQ(hex(sha3_256({})), "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
  EXPECT_EQ(hex(sha3_256(as_bytes(kAbc))), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
  EXPECT_EQ(hex(sha3_256(as_bytes(k448))), "41c0dba2a9d6240849100376a8235e2c82e1b9998a999e21db32dd97496d3376");
  EXPECT_EQ(hex(sha3_256(kA3x200)), "79f38adec5c20307a98ef76e8324afbfd46cfd81b22e3973c65fa1bd9de31787");
  EXPECT_EQ(hex(sha3_256(as_bytes(kMillionA))), "5c8875ae474a3634ba4fd55ec85bffd661f32aca75c6d699d0cdcb6c115891c1");
}

TEST(Sha3_512, Fips202Examples) {
  EXPECT_EQ(hex(sha3_512({})),
            "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a6"
            "15b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26");
  EXPECT_EQ(hex(sha3_512(as_bytes(kAbc))),
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e"
            "10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0");
  EXPECT_EQ(hex(sha3_512(kA3x200)),
            "e76dfad22084a8b1467fcf2ffa58361bec7628edf5f3fdc0e4805dc48caeeca8"
            "1b7c13c30adf52a3659584739a2df46be589c51ca1a4a8416df6545a1ce8ba00");
}

TEST(Shake128, Fips202Examples) {
  Bytes out(32);
  shake128({}, out);
  EXPECT_EQ(hex_encode(out), "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26");
  shake128(kA3x200, out);
  EXPECT_EQ(hex_encode(out), "131ab8d2b594946b9c81333f9bb6e0ce75c3b93104fa3469d3917457385da037");
  shake128(as_bytes(kAbc), out);
  EXPECT_EQ(hex_encode(out), "5881092dd818bf5cf8a3ddb793fbcba74097d5c526a6d35f97b83351940f2cc8");
}

TEST(Shake256, Fips202Examples) {
  Bytes out(64);
  shake256({}, out);
  EXPECT_EQ(hex_encode(out),
            "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f"
            "d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be");
  Bytes out32(32);
  shake256(kA3x200, out32);
  EXPECT_EQ(hex_encode(out32), "cd8a920ed141aa0407a22d59288652e9d9f1a7ee0c1e7c1ca699424da84a904d");
}

// The published SHAKE128 example squeezes 4096 bits: several blocks of output (rate 168 bytes).
TEST(Shake128, LongOutputMatchesPublishedTail) {
  Bytes out(512);
  shake128({}, out);
  EXPECT_EQ(hex_encode(ByteView(out).last(32)), "43e41b45a653f2a5c4492c1add544512dda2529833462b71a41a45be97290b6f");
  EXPECT_EQ(hex_encode(ByteView(out).first(32)), "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26");
}

// An XOF's shorter outputs are prefixes of its longer ones, across block boundaries.
TEST(Shake, ShorterOutputsArePrefixesOfLongerOnes) {
  const auto message = as_bytes("e2ee-proxy");
  for (auto* xof : {&shake128, &shake256}) {
    Bytes longest(1000);
    xof(message, longest);
    for (const std::size_t n : {1u, 31u, 135u, 136u, 137u, 167u, 168u, 169u, 500u}) {
      Bytes shorter(n);
      xof(message, shorter);
      EXPECT_EQ(shorter, Bytes(longest.begin(), longest.begin() + static_cast<std::ptrdiff_t>(n))) << "n=" << n;
    }
  }
}

TEST(Shake, EmptyOutputIsANoOp) {
  Bytes none;
  shake128(as_bytes(kAbc), none);
  shake256(as_bytes(kAbc), none);
  EXPECT_TRUE(none.empty());
}

TEST(Hash, DistinctAlgorithmsDisagree) {
  // Guards against a wiring slip (one name fetched for another): each differs from the others.
  const auto a = hex(sha256(as_bytes(kAbc)));
  const auto b = hex(sha3_256(as_bytes(kAbc)));
  Bytes s128(32);
  shake128(as_bytes(kAbc), s128);
  Bytes s256(32);
  shake256(as_bytes(kAbc), s256);
  EXPECT_NE(a, b);
  EXPECT_NE(hex_encode(s128), hex_encode(s256));
  EXPECT_NE(b, hex_encode(s256));
}

// Each digest is fetched lazily on first use; several threads may get there at once.
TEST(Hash, ConcurrentFirstUseGivesPublishedResults) {
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        Bytes shake(32);
        shake128({}, shake);
        if (hex(sha256(as_bytes(kAbc))) != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" ||
            hex(sha3_256(as_bytes(kAbc))) != "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532" ||
            hex_encode(shake) != "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26") {
          ++failures[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace e2ee::crypto

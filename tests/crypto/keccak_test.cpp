// Keccak-256 (original 0x01 padding) and the Keccak-f[1600] permutation behind it.
//
// Two independent references: published Keccak-256 digests, and OpenSSL's SHA3/SHAKE, which
// share our permutation and differ only in the padding byte. Driving our sponge with the SHA-3
// padding and comparing against OpenSSL over many lengths checks every lane, round constant and
// rotation of our Keccak-f.

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>

#include "common/encoding.hpp"
#include "crypto/detail/keccak.hpp"
#include "crypto/detail/keccak_x4.hpp"
#include "crypto/hash.hpp"

namespace e2ee::crypto {
namespace {

// 0x00, 0x01, ... 0xff, 0x00, ... : easy to regenerate in any language.
Bytes counting_bytes(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i & 0xff);
  return b;
}

Bytes openssl_digest(const char* name, ByteView in, std::size_t out_len) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  EXPECT_NE(md, nullptr) << name;
  Bytes out(out_len);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = md != nullptr && ctx != nullptr && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx, in.data(), in.size()) == 1;
  if (ok) {
    if ((EVP_MD_get_flags(md) & EVP_MD_FLAG_XOF) != 0) {
      ok = EVP_DigestFinalXOF(ctx, out.data(), out.size()) == 1;
    } else {
      unsigned int len = 0;
      ok = EVP_DigestFinal_ex(ctx, out.data(), &len) == 1 && len == out_len;
    }
  }
  EXPECT_TRUE(ok) << name;
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  return out;
}

Bytes our_sponge(std::size_t rate, std::uint8_t pad, ByteView in, std::size_t out_len) {
  Bytes out(out_len);
  detail::keccak_sponge(rate, pad, in, out);
  return out;
}

std::string hex(ByteView b) { return hex_encode(b); }

TEST(Keccak256, EmptyInput) {
  // The Keccak-256 of nothing, as published by the Keccak team and used by Ethereum (the hash of
  // empty account code).
  EXPECT_EQ(hex(keccak256({})), "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
}

TEST(Keccak256, Abc) {
  // Published Keccak-256("abc") (e.g. the Ethereum and Keccak-team test lists); also equal to
  // @noble/hashes 2.4.0 keccak_256 in a one-off run.
  EXPECT_EQ(hex(keccak256(as_bytes("abc"))), "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
}

TEST(Keccak256, IsNotSha3) {
  // Guards the padding byte: SHA3-256 (FIPS 202 padding) of the same input is a different value;
  // a7ffc6… is the published SHA3-256("").
  EXPECT_EQ(hex(openssl_digest("SHA3-256", {}, 32)), "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a");
  EXPECT_NE(hex(keccak256({})), hex(openssl_digest("SHA3-256", {}, 32)));
}

TEST(Keccak256, RateBoundaries) {
  // The rate of Keccak-256 is 136 bytes. These lengths put the padding in the last byte of a
  // block (135: 0x01 and 0x80 share one byte), make it need a block of its own (136, 272), or
  // cross into a second/third block. Inputs are counting_bytes(n). Reference digests were
  // produced once, outside this repository, by Node 20 with npm @noble/hashes 2.4.0:
  //   keccak_256(Uint8Array.from({length: n}, (_, i) => i & 0xff))
  // nothing here depends on npm at build or test time.
  const struct {
    std::size_t n;
    const char* digest;
  } cases[] = {
      {134, "861e165162f806cd361c4421a48f205820ddf4deb02db9f041f48e179ddada97"},
      {135, "cbdfd9dee5faad3818d6b06f95a219fd290b0e1706f6a82e5a595b9ce9faca62"},
      {136, "7ce759f1ab7f9ce437719970c26b0a66ff11fe3e38e17df89cf5d29c7d7f807e"},
      {137, "ac73d4fae68b8453f764007c1a20ce95994187861f0c3227a3a8e99a73a3b1db"},
      {271, "7c974895b2a88303ff2dc6b58f438ceb0b298cac91099ac0539cc0f477506191"},
      {272, "fdf2ec49e749960d3c8521a0219af8d03e30e2b3bf19bd16150ee0eaf133d66e"},
      {273, "4f707289a9c3ccd0c4a51f2f17339f5dd171d371c04ff7783b735b5b22682eaf"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.n);
    EXPECT_EQ(hex(keccak256(counting_bytes(c.n))), c.digest);
  }
}

TEST(Keccak256, SingleBitChangesDigest) {
  Bytes m = counting_bytes(200);
  const auto base = keccak256(m);
  for (std::size_t i : {std::size_t{0}, std::size_t{135}, std::size_t{136}, std::size_t{199}}) {
    Bytes changed = m;
    changed[i] ^= 0x01;
    EXPECT_NE(keccak256(changed), base) << i;
  }
}

// SHA3-256 (rate 136), SHA3-512 (rate 72) and SHAKE128 (rate 168, multi-block squeeze) built
// from our permutation must equal OpenSSL for every length around several block boundaries and
// for random contents.
TEST(KeccakF1600, Sha3AndShakeMatchOpenSsl) {
  std::mt19937 rng(20240611);  // test data only: a fixed seed keeps failures reproducible
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t len = 0; len <= 600; ++len) {
    Bytes m(len);
    for (auto& b : m) b = static_cast<std::uint8_t>(byte(rng));
    SCOPED_TRACE(len);
    EXPECT_EQ(our_sponge(136, detail::kSha3Pad, m, 32), openssl_digest("SHA3-256", m, 32));
    EXPECT_EQ(our_sponge(72, detail::kSha3Pad, m, 64), openssl_digest("SHA3-512", m, 64));
    if (len % 7 == 0) {
      EXPECT_EQ(our_sponge(168, detail::kShakePad, m, 500), openssl_digest("SHAKE128", m, 500));
      EXPECT_EQ(our_sponge(136, detail::kShakePad, m, 137), openssl_digest("SHAKE256", m, 137));
    }
  }
}

// The incremental sponge gives the one-shot output however input and output are split,
// including splits inside a lane and at block boundaries.
TEST(KeccakSponge, AnySplitOfInputAndOutputGivesTheSameBytes) {
  const Bytes m = counting_bytes(700);
  for (std::size_t rate : {std::size_t{72}, std::size_t{136}, std::size_t{168}}) {
    const Bytes whole = our_sponge(rate, detail::kShakePad, m, 600);
    for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{8}, std::size_t{13}, std::size_t{168}}) {
      detail::KeccakSponge sponge(rate, detail::kShakePad);
      for (std::size_t i = 0; i < m.size(); i += step) sponge.absorb(ByteView(m).subspan(i, std::min(step, m.size() - i)));
      Bytes out(600);
      for (std::size_t i = 0; i < out.size(); i += step + 2)
        sponge.squeeze(MutableByteView(out).subspan(i, std::min(step + 2, out.size() - i)));
      EXPECT_EQ(out, whole) << "rate " << rate << ", step " << step;
    }
  }
}

TEST(KeccakF1600, LongInput) {
  Bytes m(1 << 20);
  std::mt19937 rng(7);
  for (auto& b : m) b = static_cast<std::uint8_t>(rng());
  EXPECT_EQ(our_sponge(136, detail::kSha3Pad, m, 32), openssl_digest("SHA3-256", m, 32));
}

TEST(KeccakF1600, ZeroStateFirstLanes) {
  // Keccak-f[1600] of the all-zero state. The Keccak team's "KeccakF-1600-IntermediateValues"
  // lists the result as 64-bit lanes starting F1258F7940E1DDE7 84D5CCF933C0478A; a one-off run
  // of @noble/hashes 2.4.0 keccakP(new Uint32Array(50), 24) gives the same lanes (as the bytes
  // e7dde140798f25f1 8a47c033f9ccd584, little-endian).
  detail::KeccakState s{};
  detail::keccak_f1600(s);
  EXPECT_EQ(s[0], 0xF1258F7940E1DDE7ULL);
  EXPECT_EQ(s[1], 0x84D5CCF933C0478AULL);
}

// The four-state sponge is four one-state sponges (themselves checked against OpenSSL above): each
// lane gets its own input, so lanes swapped or mixed would show. Lengths straddle the SHAKE128
// and SHAKE256 rates and ML-KEM's uses (33- and 34-byte seeds, 128 and 504 output bytes).
TEST(KeccakSpongeX4, EachLaneMatchesTheOneStateSponge) {
  std::mt19937 rng(11);
  for (std::size_t rate : {std::size_t{136}, std::size_t{168}}) {
    for (std::size_t in_len : {0, 1, 33, 34, 135, 136, 137, 168, 169, 400}) {
      for (std::size_t out_len : {1, 32, 128, 136, 168, 504, 505, 700}) {
        std::array<Bytes, 4> inputs, outputs;
        for (auto& input : inputs) {
          input.resize(in_len);
          for (auto& b : input) b = static_cast<std::uint8_t>(rng());
        }
        for (auto& output : outputs) output.assign(out_len, 0);
        detail::keccak_sponge_x4(rate, detail::kShakePad, {ByteView(inputs[0]), ByteView(inputs[1]), ByteView(inputs[2]), ByteView(inputs[3])},
                                 {MutableByteView(outputs[0]), MutableByteView(outputs[1]), MutableByteView(outputs[2]),
                                  MutableByteView(outputs[3])});
        for (std::size_t k = 0; k < 4; ++k)
          ASSERT_EQ(outputs[k], our_sponge(rate, detail::kShakePad, inputs[k], out_len))
              << "rate " << rate << ", in " << in_len << ", out " << out_len << ", lane " << k;
      }
    }
  }
}

#if E2EE_X86_AVX2
TEST(KeccakF1600X4, Avx2PermutationMatchesFourOneStatePermutations) {
  if (!detail::cpu_has_avx2()) GTEST_SKIP() << "SKIPPED: this CPU has no AVX2, so the AVX2 permutation is not run here";
  std::mt19937_64 rng(12);
  for (int round = 0; round < 50; ++round) {
    detail::KeccakStateX4 state;
    for (auto& lane : state.lanes)
      for (auto& word : lane) word = round == 0 ? 0 : rng();
    detail::KeccakStateX4 portable = state;
    detail::keccak_f1600_x4_avx2(state);
    detail::keccak_f1600_x4_portable(portable);
    ASSERT_EQ(state.lanes, portable.lanes) << "round " << round;
  }
}
#endif

}  // namespace
}  // namespace e2ee::crypto

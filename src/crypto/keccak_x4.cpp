// Four Keccak-f[1600] states at once (see detail/keccak_x4.hpp). The AVX2 permutation is the
// one-state permutation of keccak.cpp with every 64-bit lane widened to a 256-bit word holding
// that lane of four states; AVX2 has no 64-bit rotate, so rotations are two shifts and an OR.
// The step mappings have no data-dependent branch or index, so this is constant time like the
// one-state version.

#include "crypto/detail/keccak_x4.hpp"

#include <algorithm>
#include <cassert>

#include "crypto/detail/keccak.hpp"
#include "crypto/detail/keccak_constants.hpp"
#include "crypto/secure_buffer.hpp"

#if E2EE_X86_AVX2
#include <immintrin.h>
#endif

namespace e2ee::crypto::detail {
namespace {

using keccak_constants::kRotationOffsets;
using keccak_constants::kRoundConstants;
using keccak_constants::kRounds;

constexpr std::size_t idx(int x, int y) noexcept { return static_cast<std::size_t>(x + 5 * y); }

#if E2EE_X86_AVX2
E2EE_TARGET_AVX2 inline __m256i rotl(__m256i v, unsigned n) {
  if (n == 0) return v;
  return _mm256_or_si256(_mm256_slli_epi64(v, static_cast<int>(n)), _mm256_srli_epi64(v, static_cast<int>(64 - n)));
}
#endif

}  // namespace

void keccak_f1600_x4_portable(KeccakStateX4& state) noexcept {
  for (std::size_t k = 0; k < 4; ++k) {
    KeccakState one;
    for (std::size_t i = 0; i < 25; ++i) one[i] = state.lanes[i][k];
    keccak_f1600(one);
    for (std::size_t i = 0; i < 25; ++i) state.lanes[i][k] = one[i];
    secure_wipe(one.data(), sizeof one);
  }
}

#if E2EE_X86_AVX2
// Written like keccak_f1600 in keccak.cpp: the loops over x and y are fully unrolled so every
// index and rotation is a constant. Unlike there, the working arrays are wiped: these states hold
// ML-KEM's secret PRF seeds, the permutation can be run backwards from any full copy of a state,
// and 25 256-bit lanes do not fit in registers, so the arrays live on the stack anyway.
E2EE_TARGET_AVX2 void keccak_f1600_x4_avx2(KeccakStateX4& state) noexcept {
  __m256i a[25];
  __m256i b[25];
#pragma GCC unroll 25
  for (std::size_t i = 0; i < 25; ++i) a[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(state.lanes[i].data()));
  for (int round = 0; round < kRounds; ++round) {
    __m256i c[5];
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x)
      c[x] = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(a[idx(x, 0)], a[idx(x, 1)]),
                                               _mm256_xor_si256(a[idx(x, 2)], a[idx(x, 3)])),
                              a[idx(x, 4)]);
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x) {
      const __m256i d = _mm256_xor_si256(c[(x + 4) % 5], rotl(c[(x + 1) % 5], 1));
#pragma GCC unroll 5
      for (int y = 0; y < 5; ++y) a[idx(x, y)] = _mm256_xor_si256(a[idx(x, y)], d);
    }
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x) {
#pragma GCC unroll 5
      for (int y = 0; y < 5; ++y) b[idx(y, (2 * x + 3 * y) % 5)] = rotl(a[idx(x, y)], kRotationOffsets[idx(x, y)]);
    }
#pragma GCC unroll 5
    for (int y = 0; y < 5; ++y) {
#pragma GCC unroll 5
      for (int x = 0; x < 5; ++x)
        a[idx(x, y)] = _mm256_xor_si256(b[idx(x, y)], _mm256_andnot_si256(b[idx((x + 1) % 5, y)], b[idx((x + 2) % 5, y)]));
    }
    a[0] = _mm256_xor_si256(a[0], _mm256_set1_epi64x(static_cast<long long>(kRoundConstants[static_cast<std::size_t>(round)])));
  }
#pragma GCC unroll 25
  for (std::size_t i = 0; i < 25; ++i) _mm256_store_si256(reinterpret_cast<__m256i*>(state.lanes[i].data()), a[i]);
  secure_wipe(a, sizeof a);
  secure_wipe(b, sizeof b);
}
#endif

void keccak_f1600_x4(KeccakStateX4& state) noexcept {
#if E2EE_X86_AVX2
  if (cpu_has_avx2()) return keccak_f1600_x4_avx2(state);
#endif
  keccak_f1600_x4_portable(state);
}

void keccak_sponge_x4(std::size_t rate_bytes, std::uint8_t pad, const std::array<ByteView, 4>& in,
                      const std::array<MutableByteView, 4>& out) noexcept {
  assert(rate_bytes > 0 && rate_bytes < 200);
  const std::size_t in_len = in[0].size(), out_len = out[0].size();
  for (std::size_t k = 1; k < 4; ++k) assert(in[k].size() == in_len && out[k].size() == out_len);

  KeccakStateX4 s;
  auto xor_byte = [&s](std::size_t k, std::size_t pos, std::uint8_t byte) {
    s.lanes[pos / 8][k] ^= std::uint64_t{byte} << (8 * (pos % 8));
  };
  std::size_t offset = 0;
  for (;;) {
    const std::size_t n = std::min(rate_bytes, in_len - offset);
    for (std::size_t k = 0; k < 4; ++k) {
      std::size_t i = 0;
      for (; i + 8 <= n; i += 8) s.lanes[i / 8][k] ^= load_le64(in[k].data() + offset + i);
      for (; i < n; ++i) xor_byte(k, i, in[k][offset + i]);
    }
    offset += n;
    if (n < rate_bytes) {
      // pad10*1 (FIPS 202 section 5.1) after the last, partial block, as in KeccakSponge.
      for (std::size_t k = 0; k < 4; ++k) {
        xor_byte(k, n, pad);
        xor_byte(k, rate_bytes - 1, 0x80);
      }
      keccak_f1600_x4(s);
      break;
    }
    keccak_f1600_x4(s);
  }
  for (std::size_t done = 0;;) {
    const std::size_t n = std::min(rate_bytes, out_len - done);
    for (std::size_t k = 0; k < 4; ++k) {
      std::uint8_t* const o = out[k].data() + done;
      std::size_t i = 0;
      for (; i + 8 <= n; i += 8) store_le64(o + i, s.lanes[i / 8][k]);
      for (; i < n; ++i) o[i] = static_cast<std::uint8_t>(s.lanes[i / 8][k] >> (8 * (i % 8)));
    }
    done += n;
    if (done == out_len) break;
    keccak_f1600_x4(s);
  }
  secure_wipe(&s, sizeof s);
}

}  // namespace e2ee::crypto::detail

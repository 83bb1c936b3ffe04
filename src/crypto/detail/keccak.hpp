#pragma once
// The Keccak sponge behind keccak256(), exposed so that tests can drive the same permutation
// with the SHA-3 padding and compare it against OpenSSL's SHA3/SHAKE (OpenSSL 3.0 has no
// Keccak-256, so that comparison is how our permutation is checked independently). ML-KEM's
// PRF and XOF streams use it through the four-way sponge (keccak_x4.hpp); its G, H and J stay on
// OpenSSL, whose assembly permutation is faster than this portable one for one long input.

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/bytes.hpp"

namespace e2ee::crypto::detail {

// 25 lanes, lane (x, y) at index x + 5*y, each lane holding 8 state bytes little-endian
// (FIPS 202 section 3.1.2 ordering).
using KeccakState = std::array<std::uint64_t, 25>;

// A lane's 8 bytes in the state's byte order (FIPS 202 section 3.1.2: little-endian). On
// little-endian hosts these are single moves, which matters for the 2 KiB a four-way SampleNTT
// squeezes.
inline std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

inline void store_le64(std::uint8_t* p, std::uint64_t v) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(p, &v, 8);
    return;
  }
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// Keccak-f[1600], 24 rounds (FIPS 202 section 3.3, Keccak-p[1600, 24]).
void keccak_f1600(KeccakState& state) noexcept;

// Padding/domain byte that is XORed right after the message; the final 0x80 of pad10*1 is
// added separately, so these are the values as they appear in the first padding byte.
inline constexpr std::uint8_t kKeccakPad = 0x01;  // original Keccak submission (Ethereum)
inline constexpr std::uint8_t kSha3Pad = 0x06;    // FIPS 202 SHA3-*: suffix 01, then pad10*1
inline constexpr std::uint8_t kShakePad = 0x1F;   // FIPS 202 SHAKE*: suffix 1111, then pad10*1

// An incremental sponge (FIPS 202 section 4): absorb any number of pieces, then squeeze any
// number of bytes, in as many calls as convenient; the output is the same however the input and
// output are split. `rate_bytes` is 1..199 (e.g. 136 for 256-bit security), `pad` the first
// padding byte above. The state is wiped on destruction, since the input may be secret.
class KeccakSponge {
 public:
  KeccakSponge(std::size_t rate_bytes, std::uint8_t pad) noexcept;
  ~KeccakSponge();
  KeccakSponge(const KeccakSponge&) = delete;
  KeccakSponge& operator=(const KeccakSponge&) = delete;

  // Only before the first squeeze.
  void absorb(ByteView in) noexcept;
  // The first call pads and closes the input.
  void squeeze(MutableByteView out) noexcept;

 private:
  KeccakState state_{};
  std::size_t rate_;
  std::size_t pos_ = 0;  // absorbing: bytes of the current block filled; squeezing: bytes taken
  std::uint8_t pad_;
  bool squeezing_ = false;
};

// One-shot sponge: absorbs `in`, pads with `pad`, then squeezes out.size() bytes.
void keccak_sponge(std::size_t rate_bytes, std::uint8_t pad, ByteView in, MutableByteView out) noexcept;

}  // namespace e2ee::crypto::detail

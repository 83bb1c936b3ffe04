// Keccak-f[1600] and the Keccak-256 hash with the original submission's padding, which Ethereum
// uses for addresses. Written from FIPS 202 (sections 3.2-3.4 for the step mappings, 4 and 5.1
// for the sponge and pad10*1); the constants come from detail/keccak_constants.hpp.

#include "crypto/detail/keccak.hpp"

#include <algorithm>
#include <cassert>

#include "crypto/detail/keccak_constants.hpp"
#include "crypto/hash.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto {
namespace detail {
namespace {

using keccak_constants::kRotationOffsets;
using keccak_constants::kRoundConstants;
using keccak_constants::kRounds;

constexpr std::uint64_t rotl(std::uint64_t v, unsigned n) noexcept {
  return n == 0 ? v : (v << n) | (v >> (64 - n));
}

constexpr std::size_t idx(int x, int y) noexcept { return static_cast<std::size_t>(x + 5 * y); }

void xor_byte(KeccakState& s, std::size_t pos, std::uint8_t b) noexcept {
  s[pos / 8] ^= std::uint64_t{b} << (8 * (pos % 8));
}

std::uint8_t get_byte(const KeccakState& s, std::size_t pos) noexcept {
  return static_cast<std::uint8_t>(s[pos / 8] >> (8 * (pos % 8)));
}

}  // namespace

// The loops over x and y are unrolled so that every index and rotation is a constant and the
// lanes can live in registers: written as plain loops, GCC at -O2 kept the `% 5` arithmetic and
// the arrays in memory, and one permutation took ~10x as long as OpenSSL's assembly (now ~1.4x).
// For the same reason the temporaries are not wiped: taking their address to wipe them
// pinned them to the stack (840 against 590 ns per permutation). They are registers and spill
// slots, which no wipe reaches anyway; the state itself is wiped by its owner.
void keccak_f1600(KeccakState& a) noexcept {
  for (int round = 0; round < kRounds; ++round) {
    // theta: XOR each lane with the parities of two neighbouring columns.
    std::uint64_t c[5];
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x) c[x] = a[idx(x, 0)] ^ a[idx(x, 1)] ^ a[idx(x, 2)] ^ a[idx(x, 3)] ^ a[idx(x, 4)];
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x) {
      const std::uint64_t d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
#pragma GCC unroll 5
      for (int y = 0; y < 5; ++y) a[idx(x, y)] ^= d;
    }
    // rho and pi together: B[y, 2x+3y] = rot(A[x, y]), i.e. A'[x, y] = rot(A[x+3y, x]).
    std::uint64_t b[25];
#pragma GCC unroll 5
    for (int x = 0; x < 5; ++x) {
#pragma GCC unroll 5
      for (int y = 0; y < 5; ++y) {
        b[idx(y, (2 * x + 3 * y) % 5)] = rotl(a[idx(x, y)], kRotationOffsets[idx(x, y)]);
      }
    }
    // chi: the only non-linear step, row by row.
#pragma GCC unroll 5
    for (int y = 0; y < 5; ++y) {
#pragma GCC unroll 5
      for (int x = 0; x < 5; ++x) {
        a[idx(x, y)] = b[idx(x, y)] ^ (~b[idx((x + 1) % 5, y)] & b[idx((x + 2) % 5, y)]);
      }
    }
    // iota
    a[0] ^= kRoundConstants[static_cast<std::size_t>(round)];
  }
}

KeccakSponge::KeccakSponge(std::size_t rate_bytes, std::uint8_t pad) noexcept : rate_(rate_bytes), pad_(pad) {
  assert(rate_bytes > 0 && rate_bytes < 200);
}

KeccakSponge::~KeccakSponge() { secure_wipe(state_.data(), sizeof state_); }

void KeccakSponge::absorb(ByteView in) noexcept {
  assert(!squeezing_);
  std::size_t i = 0;
  while (i < in.size()) {
    if (pos_ % 8 == 0 && in.size() - i >= 8 && rate_ - pos_ >= 8) {
      state_[pos_ / 8] ^= load_le64(in.data() + i);  // whole lanes while they fit
      pos_ += 8;
      i += 8;
    } else {
      xor_byte(state_, pos_++, in[i++]);
    }
    if (pos_ == rate_) {
      keccak_f1600(state_);
      pos_ = 0;
    }
  }
}

void KeccakSponge::squeeze(MutableByteView out) noexcept {
  if (!squeezing_) {
    // pad10*1: the domain bits and the first 1 in `pad`, the last 1 at the end of the block.
    // When pos_ == rate - 1 both land in the same byte, which XOR handles.
    xor_byte(state_, pos_, pad_);
    xor_byte(state_, rate_ - 1, 0x80);
    keccak_f1600(state_);
    squeezing_ = true;
    pos_ = 0;
  }
  std::size_t i = 0;
  while (i < out.size()) {
    if (pos_ == rate_) {
      keccak_f1600(state_);
      pos_ = 0;
    }
    if (pos_ % 8 == 0 && out.size() - i >= 8 && rate_ - pos_ >= 8) {
      store_le64(out.data() + i, state_[pos_ / 8]);
      pos_ += 8;
      i += 8;
    } else {
      out[i++] = get_byte(state_, pos_++);
    }
  }
}

void keccak_sponge(std::size_t rate_bytes, std::uint8_t pad, ByteView in, MutableByteView out) noexcept {
  KeccakSponge sponge(rate_bytes, pad);
  sponge.absorb(in);
  sponge.squeeze(out);
}

}  // namespace detail

Digest32 keccak256(ByteView data) {
  Digest32 out;
  // Capacity 512 bits -> rate 1088 bits = 136 bytes.
  detail::keccak_sponge(136, detail::kKeccakPad, data, out);
  return out;
}

}  // namespace e2ee::crypto

#pragma once
// Four Keccak sponges stepped together. ML-KEM draws many short, independent SHAKE outputs (nine
// SampleNTT streams per matrix, up to seven PRF outputs per encryption); with AVX2 the four
// permutations of a batch cost little more than one. Without AVX2 the batch runs the one-state
// permutation four times.

#include <array>
#include <cstddef>
#include <cstdint>

#include "common/bytes.hpp"
#include "crypto/detail/cpu_features.hpp"

namespace e2ee::crypto::detail {

// Four Keccak-f[1600] states interleaved: lanes[i][k] is lane i (FIPS 202 order, x + 5y) of
// state k, so lane i of all four states is one 256-bit word.
struct KeccakStateX4 {
  alignas(32) std::array<std::array<std::uint64_t, 4>, 25> lanes{};
};

// Keccak-f[1600] on each of the four states: AVX2 where the CPU has it.
void keccak_f1600_x4(KeccakStateX4& state) noexcept;
// The two implementations it chooses between, for tests.
void keccak_f1600_x4_portable(KeccakStateX4& state) noexcept;
#if E2EE_X86_AVX2
void keccak_f1600_x4_avx2(KeccakStateX4& state) noexcept;
#endif

// Four one-shot sponges (keccak_sponge in keccak.hpp, four times): in[k] is absorbed, padded
// with `pad`, and out[k] squeezed. The four inputs must have one length, and so must the four
// outputs. The states are wiped before returning, since inputs may be secret.
void keccak_sponge_x4(std::size_t rate_bytes, std::uint8_t pad, const std::array<ByteView, 4>& in,
                      const std::array<MutableByteView, 4>& out) noexcept;

}  // namespace e2ee::crypto::detail

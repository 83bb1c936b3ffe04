#pragma once
// The hash functions ML-KEM is built from (FIPS 203 section 4.1):
//   G = SHA3-512, H = SHA3-256, J = SHAKE256 with 32 bytes out, PRF_eta = SHAKE256 with 64*eta
//   bytes out, XOF = SHAKE128.
// G, H and J run on OpenSSL; an OpenSSL failure there is a broken installation and aborts the
// process rather than producing a key from garbage. PRF and XOF run on our Keccak, four outputs at
// a time where the algorithm has four independent ones (crypto/detail/keccak_x4.hpp).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace e2ee::crypto::mlkem768::detail {

// G(a || b) -> 64 bytes.
void hash_g(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 64> out);
// H(a) -> 32 bytes.
void hash_h(std::span<const std::uint8_t> a, std::span<std::uint8_t, 32> out);
// J(a || b) -> 32 bytes.
void hash_j(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 32> out);
// PRF_eta(s, n[k]) = SHAKE256(s || n[k]) -> out[k] for four values of n; the four outputs have
// one length.
void prf_x4(std::span<const std::uint8_t, 32> s, const std::array<std::uint8_t, 4>& n,
            const std::array<std::span<std::uint8_t>, 4>& out);
// SHAKE128(in) -> out.size() bytes. Longer outputs extend shorter ones (the XOF prefix property),
// which SampleNTT relies on when it needs more bytes than it first asked for.
void xof128(std::span<const std::uint8_t> in, std::span<std::uint8_t> out);
// SHAKE128(in[k]) -> out[k]; the four inputs have one length, and so do the four outputs.
void xof128_x4(const std::array<std::span<const std::uint8_t>, 4>& in, const std::array<std::span<std::uint8_t>, 4>& out);

}  // namespace e2ee::crypto::mlkem768::detail

#pragma once
// ML-KEM-768, FIPS 203 (August 2024, final). Not Kyber round 3 and not the FIPS 203 ipd: the
// three share sizes but not bytes.
//
// Keys are parsed once into objects that keep their NTT-domain form and expanded matrix, so a
// proxy that encapsulates to the same instance key many times does the expensive parsing once.
// Every input that crosses a trust boundary carries a runtime length and is checked here:
// encapsulation keys get the modulus check of FIPS 203 section 7.2, decapsulation keys the
// length and hash checks of section 7.3, ciphertexts the length check.
//
// Constant time: no branch or memory index depends on secret data (seed, d, z, s, m, K, r, the
// decrypted message); decapsulation always computes both the real and the rejection key and picks
// one with a constant-time select. tests/ct proves this under valgrind.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto::mlkem768 {

inline constexpr std::size_t kEncapsulationKeyBytes = 1184;  // 384*k + 32
inline constexpr std::size_t kDecapsulationKeyBytes = 2400;  // 768*k + 96 (expanded form)
inline constexpr std::size_t kCiphertextBytes = 1088;        // 32*(du*k + dv)
inline constexpr std::size_t kSharedSecretBytes = 32;
inline constexpr std::size_t kSeedBytes = 64;                 // d || z
inline constexpr std::size_t kMessageBytes = 32;              // m, the encapsulation randomness

using Ciphertext = std::array<std::uint8_t, kCiphertextBytes>;
using SharedSecret = SecretArray<kSharedSecretBytes>;

namespace detail {
struct PublicState;   // t_hat, rho, the expanded matrix, H(ek)
struct PrivateState;  // s_hat, z
}  // namespace detail

// A validated encapsulation key.
class EncapsulationKey {
 public:
  // FIPS 203 section 7.2: length check and modulus check (every coefficient < q).
  static Result<EncapsulationKey> parse(ByteView encoded);
  // The same checks without building the key (~1 us, where parse() also expands the matrix,
  // ~30 us): for a caller that must refuse a bad key now but can build it later. parse() of bytes
  // that passed cannot fail.
  static Status check(ByteView encoded);

  EncapsulationKey(EncapsulationKey&&) noexcept;
  EncapsulationKey& operator=(EncapsulationKey&&) noexcept;
  EncapsulationKey(const EncapsulationKey&);
  EncapsulationKey& operator=(const EncapsulationKey&);
  ~EncapsulationKey();

  const std::array<std::uint8_t, kEncapsulationKeyBytes>& bytes() const noexcept;

 private:
  friend class DecapsulationKey;
  friend struct Access;
  explicit EncapsulationKey(std::unique_ptr<detail::PublicState> state);
  std::unique_ptr<detail::PublicState> state_;
};

// A decapsulation key together with its encapsulation key. Secrets are wiped on destruction.
class DecapsulationKey {
 public:
  // FIPS 203 Algorithm 19 (ML-KEM.KeyGen) with the CSPRNG.
  static DecapsulationKey generate();
  // FIPS 203 Algorithm 16 (ML-KEM.KeyGen_internal) from the 64-byte seed d || z. Deterministic;
  // a seed is also the compact way to store a key. Fails only on a wrong seed length.
  static Result<DecapsulationKey> from_seed(ByteView seed);
  // Parses the 2400-byte expanded form dk = s || ek || H(ek) || z with the checks of FIPS 203
  // section 7.3 (length, hash) and the modulus check of the embedded ek.
  static Result<DecapsulationKey> parse(ByteView expanded);

  DecapsulationKey(DecapsulationKey&&) noexcept;
  DecapsulationKey& operator=(DecapsulationKey&&) noexcept;
  ~DecapsulationKey();

  const EncapsulationKey& encapsulation_key() const noexcept { return ek_; }
  // The 2400-byte expanded form (secret).
  SecretBytes expanded_bytes() const;

 private:
  friend struct Access;
  DecapsulationKey(EncapsulationKey ek, std::unique_ptr<detail::PrivateState> state);
  EncapsulationKey ek_;
  std::unique_ptr<detail::PrivateState> state_;
};

struct Encapsulation {
  Ciphertext ciphertext;
  SharedSecret shared_secret;
};

// FIPS 203 Algorithm 20 (ML-KEM.Encaps) with the CSPRNG.
Encapsulation encapsulate(const EncapsulationKey& ek);
// FIPS 203 Algorithm 17 (ML-KEM.Encaps_internal) with caller-supplied m. Deterministic: meant
// for known-answer tests; production callers use encapsulate().
Encapsulation encapsulate_derand(const EncapsulationKey& ek, std::span<const std::uint8_t, kMessageBytes> m);

// FIPS 203 Algorithm 21 (ML-KEM.Decaps). Fails only on a wrong ciphertext length. An invalid
// ciphertext of the right length yields the implicit-rejection key J(z || c), in constant time.
Result<SharedSecret> decapsulate(const DecapsulationKey& dk, ByteView ciphertext);

}  // namespace e2ee::crypto::mlkem768

#include "crypto/mlkem768.hpp"

#include <algorithm>

#include "crypto/detail/constant_time.hpp"
#include "crypto/detail/mlkem/encoding.hpp"
#include "crypto/detail/mlkem/kpke.hpp"
#include "crypto/detail/mlkem/symmetric.hpp"
#include "crypto/random.hpp"

namespace e2ee::crypto::mlkem768 {

namespace detail {

struct PublicState {
  std::array<std::uint8_t, kEncapsulationKeyBytes> bytes;  // ek = ByteEncode_12(t_hat) || rho
  PolyVec t_hat;
  Matrix a_hat;  // expanded once here instead of on every encapsulation
  std::array<std::uint8_t, 32> h;  // H(ek), the other half of G's input in Encaps and Decaps
};

struct PrivateState {
  PolyVec s_hat;
  SecretArray<32> z;  // implicit-rejection seed
  ~PrivateState() { secure_wipe(&s_hat, sizeof s_hat); }
};

namespace {

std::span<const std::uint8_t, 32> rho_of(const PublicState& pub) {
  return std::span<const std::uint8_t, 32>(pub.bytes.data() + kEncodedTBytes, 32);
}

// Fills bytes, h and a_hat from t_hat and rho already in place.
void finish_public_state(PublicState& pub) {
  for (std::size_t i = 0; i < kK; ++i)
    byte_encode12(pub.t_hat[i], std::span<std::uint8_t, kPolyBytes12>(pub.bytes.data() + i * kPolyBytes12, kPolyBytes12));
  hash_h(pub.bytes, pub.h);
}

// FIPS 203 section 7.2: the length check, then the modulus check while decoding t_hat.
Status decode_public(ByteView encoded, PolyVec& t_hat) {
  if (encoded.size() != kEncapsulationKeyBytes)
    return make_error(Errc::invalid_length, "ML-KEM-768 encapsulation key must be 1184 bytes, got " +
                                                std::to_string(encoded.size()));
  bool reduced = true;
  for (std::size_t i = 0; i < kK; ++i)
    reduced &= byte_decode12_checked(
        std::span<const std::uint8_t, kPolyBytes12>(encoded.data() + i * kPolyBytes12, kPolyBytes12), t_hat[i]);
  if (!reduced)
    return make_error(Errc::invalid_key, "ML-KEM-768 encapsulation key fails the modulus check (FIPS 203 section 7.2)");
  return {};
}

Result<std::unique_ptr<PublicState>> parse_public(ByteView encoded) {
  auto pub = std::make_unique<PublicState>();
  if (auto ok = decode_public(encoded, pub->t_hat); !ok) return std::move(ok).error();
  std::copy(encoded.begin(), encoded.end(), pub->bytes.begin());
  expand_matrix(rho_of(*pub), pub->a_hat);
  hash_h(pub->bytes, pub->h);
  return pub;
}

}  // namespace
}  // namespace detail

using namespace detail;

// Gives the free functions below access to the keys' internal state.
struct Access {
  static const PublicState& pub(const EncapsulationKey& ek) { return *ek.state_; }
  static const PrivateState& priv(const DecapsulationKey& dk) { return *dk.state_; }
  static EncapsulationKey make_ek(std::unique_ptr<PublicState> s) { return EncapsulationKey(std::move(s)); }
  static DecapsulationKey make_dk(EncapsulationKey ek, std::unique_ptr<PrivateState> s) {
    return DecapsulationKey(std::move(ek), std::move(s));
  }
};

// ---- EncapsulationKey -------------------------------------------------------------------------

EncapsulationKey::EncapsulationKey(std::unique_ptr<PublicState> state) : state_(std::move(state)) {}
EncapsulationKey::EncapsulationKey(EncapsulationKey&&) noexcept = default;
EncapsulationKey& EncapsulationKey::operator=(EncapsulationKey&&) noexcept = default;
EncapsulationKey::EncapsulationKey(const EncapsulationKey& other)
    : state_(std::make_unique<PublicState>(*other.state_)) {}
EncapsulationKey& EncapsulationKey::operator=(const EncapsulationKey& other) {
  if (this != &other) state_ = std::make_unique<PublicState>(*other.state_);
  return *this;
}
EncapsulationKey::~EncapsulationKey() = default;

Result<EncapsulationKey> EncapsulationKey::parse(ByteView encoded) {
  auto pub = parse_public(encoded);
  if (!pub) return std::move(pub).error();
  return Access::make_ek(std::move(*pub));
}

Status EncapsulationKey::check(ByteView encoded) {
  PolyVec t_hat;
  return decode_public(encoded, t_hat);
}

const std::array<std::uint8_t, kEncapsulationKeyBytes>& EncapsulationKey::bytes() const noexcept {
  return state_->bytes;
}

// ---- DecapsulationKey -------------------------------------------------------------------------

DecapsulationKey::DecapsulationKey(EncapsulationKey ek, std::unique_ptr<PrivateState> state)
    : ek_(std::move(ek)), state_(std::move(state)) {}
DecapsulationKey::DecapsulationKey(DecapsulationKey&&) noexcept = default;
DecapsulationKey& DecapsulationKey::operator=(DecapsulationKey&&) noexcept = default;
DecapsulationKey::~DecapsulationKey() = default;

DecapsulationKey DecapsulationKey::generate() {
  SecretArray<kSeedBytes> seed;
  random_bytes(seed.span());
  return std::move(from_seed(seed.span()).value());
}

Result<DecapsulationKey> DecapsulationKey::from_seed(ByteView seed) {
  if (seed.size() != kSeedBytes)
    return make_error(Errc::invalid_length,
                      "ML-KEM-768 seed must be 64 bytes (d || z), got " + std::to_string(seed.size()));
  // Algorithm 16: (ek, dk_PKE) = K-PKE.KeyGen(d); dk = dk_PKE || ek || H(ek) || z.
  auto pub = std::make_unique<PublicState>();
  auto priv = std::make_unique<PrivateState>();
  std::array<std::uint8_t, 32> rho;
  kpke_keygen(seed.first<32>(), pub->t_hat, rho, pub->a_hat, priv->s_hat);
  std::copy(rho.begin(), rho.end(), pub->bytes.begin() + kEncodedTBytes);
  finish_public_state(*pub);
  std::copy(seed.begin() + 32, seed.end(), priv->z.data());
  return Access::make_dk(Access::make_ek(std::move(pub)), std::move(priv));
}

Result<DecapsulationKey> DecapsulationKey::parse(ByteView dk) {
  if (dk.size() != kDecapsulationKeyBytes)
    return make_error(Errc::invalid_length, "ML-KEM-768 decapsulation key must be 2400 bytes, got " +
                                                std::to_string(dk.size()));
  // dk = dk_PKE (1152) || ek (1184) || H(ek) (32) || z (32)
  const ByteView ek_bytes = dk.subspan(kDkPkeBytes, kEkBytes);
  const ByteView stored_hash = dk.subspan(kDkPkeBytes + kEkBytes, 32);
  auto pub = parse_public(ek_bytes);
  if (!pub) {
    return make_error(Errc::invalid_key, "ML-KEM-768 decapsulation key embeds an invalid encapsulation key: " +
                                             std::move(pub).error().message);
  }
  // Section 7.3 hash check. ek and its hash are public, so an ordinary comparison is fine.
  if (!std::equal(stored_hash.begin(), stored_hash.end(), (*pub)->h.begin()))
    return make_error(Errc::invalid_key, "ML-KEM-768 decapsulation key fails the hash check (FIPS 203 section 7.3)");
  auto priv = std::make_unique<PrivateState>();
  for (std::size_t i = 0; i < kK; ++i)
    byte_decode12_reduce(std::span<const std::uint8_t, kPolyBytes12>(dk.data() + i * kPolyBytes12, kPolyBytes12),
                         priv->s_hat[i]);
  std::copy(dk.end() - 32, dk.end(), priv->z.data());
  return Access::make_dk(Access::make_ek(std::move(*pub)), std::move(priv));
}

SecretBytes DecapsulationKey::expanded_bytes() const {
  SecretBytes out(kDecapsulationKeyBytes);
  for (std::size_t i = 0; i < kK; ++i)
    byte_encode12(state_->s_hat[i], std::span<std::uint8_t, kPolyBytes12>(out.data() + i * kPolyBytes12, kPolyBytes12));
  const auto& pub = Access::pub(ek_);
  std::copy(pub.bytes.begin(), pub.bytes.end(), out.begin() + kDkPkeBytes);
  std::copy(pub.h.begin(), pub.h.end(), out.begin() + kDkPkeBytes + kEkBytes);
  std::copy(state_->z.data(), state_->z.data() + 32, out.begin() + kDkPkeBytes + kEkBytes + 32);
  return out;
}

// ---- Encaps / Decaps --------------------------------------------------------------------------

Encapsulation encapsulate_derand(const EncapsulationKey& ek, std::span<const std::uint8_t, kMessageBytes> m) {
  // Algorithm 17: (K, r) = G(m || H(ek)); c = K-PKE.Encrypt(ek, m, r).
  const PublicState& pub = Access::pub(ek);
  SecretArray<64> kr;
  hash_g(m, pub.h, kr.span());
  Encapsulation out;
  kpke_encrypt(pub.t_hat, pub.a_hat, m, kr.span().subspan<32, 32>(), out.ciphertext);
  std::copy(kr.data(), kr.data() + 32, out.shared_secret.data());
  return out;
}

Encapsulation encapsulate(const EncapsulationKey& ek) {
  SecretArray<kMessageBytes> m;
  random_bytes(m.span());
  return encapsulate_derand(ek, m.span());
}

Result<SharedSecret> decapsulate(const DecapsulationKey& dk, ByteView ciphertext) {
  if (ciphertext.size() != kCiphertextBytes)
    return make_error(Errc::invalid_length, "ML-KEM-768 ciphertext must be 1088 bytes, got " +
                                                std::to_string(ciphertext.size()));
  const std::span<const std::uint8_t, kCiphertextBytes> c(ciphertext.data(), kCiphertextBytes);
  const PrivateState& priv = Access::priv(dk);
  const PublicState& pub = Access::pub(dk.encapsulation_key());

  // Algorithm 18.
  SecretArray<32> m_prime;
  kpke_decrypt(priv.s_hat, c, m_prime.span());
  SecretArray<64> kr_prime;  // (K', r') = G(m' || h)
  hash_g(m_prime.span(), pub.h, kr_prime.span());
  SecretArray<32> k_bar;  // J(z || c)
  hash_j(priv.z.span(), c, k_bar.span());
  Ciphertext c_prime;
  kpke_encrypt(pub.t_hat, pub.a_hat, m_prime.span(), kr_prime.span().subspan<32, 32>(), c_prime);

  // Both candidate keys exist; choose without branching on whether c == c'. The comparison covers
  // every byte (a strcmp-style early exit at a zero byte is what Wycheproof's Strcmp vectors catch).
  const std::uint8_t equal = crypto::detail::ct_is_zero_mask8(crypto::detail::ct_diff(c.data(), c_prime.data(), kCiphertextBytes));
  SharedSecret key;
  crypto::detail::ct_select(key.data(), equal, kr_prime.data(), k_bar.data(), kSharedSecretBytes);
  secure_wipe(c_prime.data(), c_prime.size());
  return key;
}

}  // namespace e2ee::crypto::mlkem768

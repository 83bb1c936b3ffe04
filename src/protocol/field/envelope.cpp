// Field envelopes: key agreement, KDF and AEAD of the four schemes in envelope.hpp, and the hex
// wire. The structure keeps the expensive step — one key agreement per envelope (secp256k1 via
// OpenSSL is ~450 us) — in one place (derive_*), so a faster backend only has to replace it:
// peer keys are parsed and validated once, in PeerKey.

#include "protocol/field/envelope.hpp"

#include <algorithm>
#include <utility>

#include "common/encoding.hpp"
#include "crypto/aead.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/hkdf.hpp"
#include "crypto/nacl_box.hpp"
#include "crypto/random.hpp"
#include "crypto/secure_buffer.hpp"
#include "protocol/field/envelope_detail.hpp"

namespace e2ee::protocol::field {

namespace secp = crypto::secp256k1;
namespace x25519 = crypto::x25519;
namespace ed25519 = crypto::ed25519;

struct KeyPair::Impl {
  Algo algo = Algo::ecdsa;
  std::optional<secp::PrivateKey> ecdsa;
  // ed25519: the RFC 8032 seed, its public key, and the X25519 scalar that opens envelopes.
  crypto::SecretArray<32> seed;
  std::array<std::uint8_t, 32> ed_public{};
  crypto::SecretArray<32> x_private;
};

struct PeerKey::Impl {
  Algo algo = Algo::ecdsa;
  std::optional<secp::PublicKey> ecdsa;
  std::array<std::uint8_t, 32> ed_public{};  // ed25519: as published
  std::array<std::uint8_t, 32> x_public{};   // ed25519: its X25519 form (what envelopes are sealed to)
};

// The one friend of KeyPair and PeerKey: the helpers below reach the key material through it
// (the public aliases let them name the private Impl types).
struct KeyAccess {
  using Own = KeyPair::Impl;
  using Peer = PeerKey::Impl;
  static const Own& of(const KeyPair& k) noexcept { return *k.impl_; }
  static const Peer& of(const PeerKey& k) noexcept { return *k.impl_; }
};

namespace {

constexpr std::string_view kInfoEcdsa = "ecdsa_encryption";
constexpr std::string_view kInfoEd25519 = "ed25519_encryption";

struct Layout {
  std::size_t eph;    // ephemeral public key
  std::size_t nonce;  // IV / nonce
};

Layout layout(Scheme scheme) noexcept {
  switch (scheme) {
    case Scheme::ecdsa: return {secp::kUncompressedBytes, 12};
    case Scheme::ed25519_aes_gcm: return {32, 12};
    case Scheme::ed25519_box: return {32, crypto::nacl_box::kNonceBytes};
    case Scheme::ed25519_xchacha: return {32, 24};
  }
  return {0, 0};
}

// An ephemeral key ready to seal: its public half (the envelope's prefix) and the symmetric key
// it agreed with the recipient (the AEAD key for the HKDF schemes, the box key for ed25519_box).
struct Ephemeral {
  Bytes pub;
  crypto::SecretArray<32> key;
};

Result<crypto::SecretArray<32>> kdf(ByteView shared, std::string_view info) {
  return crypto::hkdf_sha256_32(shared, {}, as_bytes(info));
}

Result<Ephemeral> derive_ecdsa(const secp::PrivateKey& eph, const secp::PublicKey& to) {
  auto shared = secp::ecdh(eph, to);
  if (!shared) return std::move(shared).error();
  auto key = kdf(shared->span(), kInfoEcdsa);
  if (!key) return std::move(key).error();
  const auto& pub = eph.public_key().uncompressed();
  return Ephemeral{Bytes(pub.begin(), pub.end()), *key};
}

Result<Ephemeral> derive_x25519(Scheme scheme, std::span<const std::uint8_t, 32> eph_private, const KeyAccess::Peer& to) {
  const auto pub = x25519::public_from_private(eph_private);
  Ephemeral out{Bytes(pub.begin(), pub.end()), {}};
  if (scheme == Scheme::ed25519_box) {
    auto key = crypto::nacl_box::precompute(crypto::nacl_box::Cipher::xchacha20_poly1305, eph_private, to.x_public);
    if (!key) return std::move(key).error();
    out.key = *key;
    return out;
  }
  auto shared = x25519::ecdh(eph_private, to.x_public);
  if (!shared) return std::move(shared).error();
  auto key = kdf(shared->span(), kInfoEd25519);
  if (!key) return std::move(key).error();
  out.key = *key;
  return out;
}

Result<Ephemeral> fresh_ephemeral(Scheme scheme, const KeyAccess::Peer& to) {
  if (scheme == Scheme::ecdsa) return derive_ecdsa(secp::PrivateKey::generate(), *to.ecdsa);
  const auto eph = crypto::random_secret<32>();
  return derive_x25519(scheme, eph.span(), to);
}

Status check_pairing(Scheme scheme, Algo key_algo, ByteView aad) {
  if (algo_of(scheme) != key_algo) return make_error(Errc::invalid_argument, "envelope scheme and key algorithm differ");
  if (scheme == Scheme::ed25519_box && !aad.empty())
    return make_error(Errc::invalid_argument, "ed25519_box envelopes carry no AAD");
  return {};
}

// pub ‖ nonce ‖ sealed, hex.
Result<std::string> seal_with(Scheme scheme, const Ephemeral& eph, ByteView nonce, ByteView plaintext, ByteView aad) {
  Result<Bytes> sealed = make_error(Errc::internal, "unreachable");
  switch (scheme) {
    case Scheme::ecdsa:
    case Scheme::ed25519_aes_gcm:
      sealed = crypto::aead_seal(crypto::Aead::aes_gcm, eph.key.span(), nonce, plaintext, aad);
      break;
    case Scheme::ed25519_xchacha:
      sealed = crypto::aead_seal(crypto::Aead::xchacha20_poly1305, eph.key.span(), nonce, plaintext, aad);
      break;
    case Scheme::ed25519_box:
      sealed = crypto::nacl_box::seal(crypto::nacl_box::Cipher::xchacha20_poly1305, eph.key, nonce, plaintext);
      break;
  }
  if (!sealed) return std::move(sealed).error();
  Bytes wire;
  wire.reserve(eph.pub.size() + nonce.size() + sealed->size());
  append(wire, eph.pub);
  append(wire, nonce);
  append(wire, *sealed);
  return hex_encode(wire);
}

Error auth_failed() { return make_error(Errc::authentication_failed, "envelope did not authenticate"); }

bool canonical_ed25519(ByteView p) noexcept {
  // The y coordinate (bit 255 masked off) must be below 2^255 - 19: the 19 encodings
  // 2^255-19 .. 2^255-1 alias small values, and libsodium's conversion does not refuse them.
  if ((p[31] & 0x7f) != 0x7f) return true;
  for (std::size_t i = 30; i > 0; --i)
    if (p[i] != 0xff) return true;
  return p[0] < 0xed;
}

// An X25519 public key as every honest implementation encodes it: u < 2^255 - 19, bit 255 clear.
// RFC 7748 makes receivers ignore bit 255 and reduce u, so without this check one envelope would
// have several encodings that all open (found by the tamper test flipping bit 255).
bool canonical_x25519(ByteView u) noexcept {
  if ((u[31] & 0x80) != 0) return false;
  if (u[31] != 0x7f) return true;
  for (std::size_t i = 30; i > 0; --i)
    if (u[i] != 0xff) return true;
  return u[0] < 0xed;
}

bool is_hex_digit(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

Algo algo_of(Scheme scheme) noexcept { return scheme == Scheme::ecdsa ? Algo::ecdsa : Algo::ed25519; }

std::string_view algo_name(Algo algo) noexcept { return algo == Algo::ecdsa ? "ecdsa" : "ed25519"; }

// ---- KeyPair -------------------------------------------------------------------------------

KeyPair::KeyPair(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KeyPair::KeyPair(KeyPair&&) noexcept = default;
KeyPair& KeyPair::operator=(KeyPair&&) noexcept = default;
KeyPair::~KeyPair() = default;  // SecretArray and secp256k1::PrivateKey wipe themselves

KeyPair KeyPair::generate(Algo algo) {
  if (algo == Algo::ecdsa) {
    auto impl = std::make_unique<Impl>();
    impl->algo = Algo::ecdsa;
    impl->ecdsa.emplace(secp::PrivateKey::generate());
    return KeyPair(std::move(impl));
  }
  const auto seed = crypto::random_secret<32>();
  return std::move(from_secret(Algo::ed25519, seed.span()).value());  // any 32 bytes are a seed
}

Result<KeyPair> KeyPair::from_secret(Algo algo, ByteView secret32) {
  if (secret32.size() != 32) return make_error(Errc::invalid_length, "private key must be 32 bytes");
  auto impl = std::make_unique<Impl>();
  impl->algo = algo;
  if (algo == Algo::ecdsa) {
    auto key = secp::PrivateKey::from_bytes(secret32);
    if (!key) return std::move(key).error();
    impl->ecdsa.emplace(std::move(key).value());
  } else {
    const auto seed = secret32.first<32>();
    const ed25519::KeyPair kp = ed25519::from_seed(seed);
    impl->seed = kp.seed;
    impl->ed_public = kp.public_key;
    impl->x_private = ed25519::seed_to_x25519_private(seed);
  }
  return KeyPair(std::move(impl));
}

Algo KeyPair::algo() const noexcept { return impl_->algo; }

Bytes KeyPair::public_raw() const {
  if (impl_->algo == Algo::ecdsa) {
    const ByteView raw = impl_->ecdsa->public_key().raw();
    return Bytes(raw.begin(), raw.end());
  }
  return Bytes(impl_->ed_public.begin(), impl_->ed_public.end());
}

Bytes KeyPair::public_uncompressed() const {
  if (impl_->algo != Algo::ecdsa) return {};
  const auto& pub = impl_->ecdsa->public_key().uncompressed();
  return Bytes(pub.begin(), pub.end());
}

std::array<std::uint8_t, 20> KeyPair::ethereum_address() const {
  if (impl_->algo != Algo::ecdsa) return {};
  return impl_->ecdsa->public_key().ethereum_address();
}

// ---- PeerKey -------------------------------------------------------------------------------

PeerKey::PeerKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
PeerKey::PeerKey(const PeerKey&) = default;
PeerKey& PeerKey::operator=(const PeerKey&) = default;
PeerKey::~PeerKey() = default;

Result<PeerKey> PeerKey::parse(Algo algo, ByteView raw) {
  auto impl = std::make_shared<Impl>();
  impl->algo = algo;
  if (algo == Algo::ecdsa) {
    if (raw.size() == secp::kCompressedBytes)
      return make_error(Errc::invalid_key, "secp256k1 public key must be uncompressed (64 or 65 bytes), not compressed");
    if (raw.size() != secp::kRawBytes && raw.size() != secp::kUncompressedBytes)
      return make_error(Errc::invalid_length, "secp256k1 public key must be 64 or 65 bytes");
    auto key = secp::PublicKey::parse(raw);
    if (!key) return std::move(key).error();
    impl->ecdsa.emplace(std::move(key).value());
  } else {
    if (raw.size() != 32) return make_error(Errc::invalid_length, "ed25519 public key must be 32 bytes");
    if (!canonical_ed25519(raw)) return make_error(Errc::invalid_key, "ed25519 public key is not canonically encoded");
    auto x = ed25519::public_to_x25519(raw);
    if (!x) return std::move(x).error();
    std::copy(raw.begin(), raw.end(), impl->ed_public.begin());
    impl->x_public = *x;
  }
  return PeerKey(std::move(impl));
}

Result<PeerKey> PeerKey::parse_hex(Algo algo, std::string_view hex) {
  if (hex.size() >= 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  auto raw = hex_decode(hex);
  if (!raw) return make_error(Errc::invalid_argument, "public key is not valid hex");
  return parse(algo, *raw);
}

Algo PeerKey::algo() const noexcept { return impl_->algo; }

Bytes PeerKey::public_raw() const {
  if (impl_->algo == Algo::ecdsa) {
    const ByteView raw = impl_->ecdsa->raw();
    return Bytes(raw.begin(), raw.end());
  }
  return Bytes(impl_->ed_public.begin(), impl_->ed_public.end());
}

bool PeerKey::operator==(const PeerKey& other) const {
  return impl_->algo == other.impl_->algo && public_raw() == other.public_raw();
}

// ---- Sealer --------------------------------------------------------------------------------

struct Sealer::Impl {
  Scheme scheme;
  PeerKey recipient;
  bool one_ephemeral;
  std::optional<Ephemeral> cached;  // one_ephemeral: made on first use
};

Sealer::Sealer(Scheme scheme, PeerKey recipient, bool one_ephemeral)
    : impl_(std::make_unique<Impl>(Impl{scheme, std::move(recipient), one_ephemeral, std::nullopt})) {}

Sealer::~Sealer() = default;

Result<std::string> Sealer::seal_hex(ByteView plaintext, ByteView aad) {
  const KeyAccess::Peer& to = KeyAccess::of(impl_->recipient);
  if (auto ok = check_pairing(impl_->scheme, to.algo, aad); !ok) return std::move(ok).error();
  std::optional<Ephemeral> fresh;
  const Ephemeral* eph = nullptr;
  if (impl_->one_ephemeral && impl_->cached) {
    eph = &*impl_->cached;
  } else {
    auto made = fresh_ephemeral(impl_->scheme, to);
    if (!made) return std::move(made).error();
    if (impl_->one_ephemeral) {
      impl_->cached = std::move(made).value();
      eph = &*impl_->cached;
    } else {
      fresh = std::move(made).value();
      eph = &*fresh;
    }
  }
  std::array<std::uint8_t, 24> nonce{};
  const auto nonce_view = std::span<std::uint8_t>(nonce).first(layout(impl_->scheme).nonce);
  crypto::random_bytes(nonce_view);
  return seal_with(impl_->scheme, *eph, nonce_view, plaintext, aad);
}

// ---- opening -------------------------------------------------------------------------------

Result<Bytes> open_hex(Scheme scheme, const KeyPair& own, std::string_view hex, ByteView aad) {
  const KeyAccess::Own& me = KeyAccess::of(own);
  if (auto ok = check_pairing(scheme, me.algo, aad); !ok) return std::move(ok).error();
  auto wire = hex_decode(hex);
  if (!wire) return make_error(Errc::malformed, "envelope is not valid hex");
  const Layout l = layout(scheme);
  const std::size_t minimum = min_envelope_bytes(scheme);
  if (wire->size() < minimum) {
    return make_error(Errc::malformed, "envelope too short: " + std::to_string(wire->size()) + " bytes, minimum " +
                                           std::to_string(minimum));
  }
  const ByteView bytes(*wire);
  const ByteView eph = bytes.first(l.eph);
  const ByteView nonce = bytes.subspan(l.eph, l.nonce);
  const ByteView sealed = bytes.subspan(l.eph + l.nonce);

  if (scheme == Scheme::ecdsa) {
    // 65 bytes: PublicKey::parse insists on the 04 prefix and a point on the curve.
    auto peer = secp::PublicKey::parse(eph);
    if (!peer) return make_error(Errc::invalid_key, "envelope's ephemeral key is not a valid secp256k1 point");
    auto shared = secp::ecdh(*me.ecdsa, *peer);
    if (!shared) return std::move(shared).error();
    auto key = kdf(shared->span(), kInfoEcdsa);
    if (!key) return std::move(key).error();
    auto plain = crypto::aead_open(crypto::Aead::aes_gcm, key->span(), nonce, sealed, aad);
    if (!plain) return auth_failed();
    return plain;
  }

  if (!canonical_x25519(eph)) return make_error(Errc::invalid_key, "envelope's ephemeral key is not a canonical X25519 key");

  if (scheme == Scheme::ed25519_box) {
    namespace box = crypto::nacl_box;
    // NEAR's server seals with the XChaCha20 box; PyNaCl clients with the XSalsa20 one.
    for (const auto cipher : {box::Cipher::xchacha20_poly1305, box::Cipher::xsalsa20_poly1305}) {
      auto key = box::precompute(cipher, me.x_private.span(), eph);
      if (!key) return make_error(Errc::invalid_key, "envelope's ephemeral key is a low-order X25519 point");
      auto plain = box::open(cipher, *key, nonce, sealed);
      if (plain) return plain;
    }
    return auth_failed();
  }

  auto shared = x25519::ecdh(me.x_private.span(), eph);
  if (!shared) return make_error(Errc::invalid_key, "envelope's ephemeral key is a low-order X25519 point");
  auto key = kdf(shared->span(), kInfoEd25519);
  if (!key) return std::move(key).error();
  const auto alg = scheme == Scheme::ed25519_xchacha ? crypto::Aead::xchacha20_poly1305 : crypto::Aead::aes_gcm;
  auto plain = crypto::aead_open(alg, key->span(), nonce, sealed, aad);
  if (!plain) return auth_failed();
  return plain;
}

std::size_t min_envelope_bytes(Scheme scheme) noexcept {
  const Layout l = layout(scheme);
  return l.eph + l.nonce + crypto::kAeadTagBytes;
}

bool looks_like_envelope(Scheme scheme, std::string_view text) noexcept {
  if (text.size() % 2 != 0 || text.size() < 2 * min_envelope_bytes(scheme)) return false;
  return std::all_of(text.begin(), text.end(), is_hex_digit);
}

// ---- test hook -----------------------------------------------------------------------------

Result<std::string> detail::seal_hex_with(Scheme scheme, const PeerKey& recipient, ByteView ephemeral_private,
                                          ByteView nonce, ByteView plaintext, ByteView aad) {
  const KeyAccess::Peer& to = KeyAccess::of(recipient);
  if (auto ok = check_pairing(scheme, to.algo, aad); !ok) return std::move(ok).error();
  if (ephemeral_private.size() != 32) return make_error(Errc::invalid_length, "ephemeral private key must be 32 bytes");
  if (nonce.size() != layout(scheme).nonce) return make_error(Errc::invalid_length, "wrong nonce length for the scheme");
  Result<Ephemeral> eph = make_error(Errc::internal, "unreachable");
  if (scheme == Scheme::ecdsa) {
    auto key = secp::PrivateKey::from_bytes(ephemeral_private);
    if (!key) return std::move(key).error();
    eph = derive_ecdsa(*key, *to.ecdsa);
  } else {
    eph = derive_x25519(scheme, ephemeral_private.first<32>(), to);
  }
  if (!eph) return std::move(eph).error();
  return seal_with(scheme, *eph, nonce, plaintext, aad);
}

}  // namespace e2ee::protocol::field

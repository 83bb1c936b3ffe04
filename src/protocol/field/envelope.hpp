#pragma once
// Field-level E2EE envelopes of Venice, NEAR AI and dstack vllm-proxy
// (../shared/specs/near-phala-protocol.md §1, §4, §10.2; venice-protocol.md §4). Bytes in, bytes
// out, no I/O. Every envelope travels as hex and carries the sender's ephemeral public key first,
// so a receiver always takes the key from the envelope (the senders differ: per field, per chunk,
// per request).
//
//   ecdsa            secp256k1 ECDH (X coordinate) → HKDF-SHA256(salt "", info "ecdsa_encryption")
//                    → AES-256-GCM:        pub65 ‖ iv12 ‖ ct ‖ tag16          (Venice, NEAR, dstack)
//   ed25519_aes_gcm  X25519 → HKDF-SHA256(info "ed25519_encryption") → AES-256-GCM:
//                                          eph32 ‖ iv12 ‖ ct ‖ tag16          (dstack Ed25519)
//   ed25519_box      NaCl crypto_box (XChaCha20 box; XSalsa20 accepted on open):
//                                          eph32 ‖ nonce24 ‖ mac16 ‖ ct       (NEAR Ed25519 v1)
//                    (the box key is HChaCha20/HSalsa20 of the X25519 secret: no HKDF, no AAD)
//   ed25519_xchacha  X25519 → HKDF-SHA256(info "ed25519_encryption") → XChaCha20-Poly1305:
//                                          eph32 ‖ nonce24 ‖ ct ‖ tag16       (NEAR Ed25519 v2)
//
// Ed25519 keys enter X25519 as near-phala-protocol.md §4.2 says: an own seed as
// clamp(SHA-512(seed)[0:32]), a peer's public key through the birational map; the ephemeral keys
// inside envelopes are raw X25519 keys. Test-only deterministic sealing: envelope_detail.hpp.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace e2ee::protocol::field {

enum class Algo { ecdsa, ed25519 };
enum class Scheme { ecdsa, ed25519_aes_gcm, ed25519_box, ed25519_xchacha };

Algo algo_of(Scheme scheme) noexcept;
std::string_view algo_name(Algo algo) noexcept;  // "ecdsa" | "ed25519"

// A party's own key pair: a secp256k1 private key (ecdsa), or an Ed25519 seed whose X25519 form
// opens envelopes (ed25519). Secrets are wiped on destruction.
class KeyPair {
 public:
  static KeyPair generate(Algo algo);
  static Result<KeyPair> from_secret(Algo algo, ByteView secret32);
  KeyPair(KeyPair&&) noexcept;
  KeyPair& operator=(KeyPair&&) noexcept;
  ~KeyPair();

  Algo algo() const noexcept;
  // As the protocols publish keys: ecdsa 64 bytes X‖Y (dstack signing_public_key); ed25519 32 bytes.
  Bytes public_raw() const;
  // ecdsa only: 65 bytes 04 ‖ X ‖ Y (Venice's headers). Empty for ed25519.
  Bytes public_uncompressed() const;
  // ecdsa only: the Ethereum address, keccak256(X‖Y)[12..32]. All zero for ed25519.
  std::array<std::uint8_t, 20> ethereum_address() const;

 private:
  struct Impl;
  explicit KeyPair(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend struct KeyAccess;
};

// A peer's public key, validated before any use: ecdsa accepts 65-byte uncompressed (04 prefix)
// and 64-byte X‖Y points and rejects points off the curve, other prefixes and 33-byte compressed
// points (Errc::invalid_key: no protocol here sends them, dstack's reference fails on them only
// while encrypting the response — risk R1 — and Venice documents them as "Invalid public key");
// ed25519 accepts 32 bytes that are a valid Ed25519 point convertible to X25519 (small-order,
// mixed-order and non-canonical encodings refused with Errc::invalid_key). Other lengths are
// Errc::invalid_length.
class PeerKey {
 public:
  static Result<PeerKey> parse(Algo algo, ByteView raw);
  // Hex with an optional "0x"; either case.
  static Result<PeerKey> parse_hex(Algo algo, std::string_view hex);
  PeerKey(const PeerKey&);
  PeerKey& operator=(const PeerKey&);
  ~PeerKey();

  Algo algo() const noexcept;
  Bytes public_raw() const;  // ecdsa: 64 bytes X‖Y; ed25519: 32 bytes
  bool operator==(const PeerKey& other) const;

 private:
  struct Impl;
  explicit PeerKey(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
  friend struct KeyAccess;
};

// Encrypts fields to one recipient. By default each envelope gets a fresh ephemeral key (Venice,
// NEAR); `one_ephemeral` reuses one per Sealer, as dstack does per response (each envelope still
// gets a fresh random nonce). Not safe for concurrent use: one Sealer per request or stream.
class Sealer {
 public:
  Sealer(Scheme scheme, PeerKey recipient, bool one_ephemeral = false);
  ~Sealer();
  // Lower-case hex envelope of `plaintext`, authenticated with `aad`. ed25519_box has no AAD and
  // requires it empty (Errc::invalid_argument); so does a recipient of the other algorithm.
  // The ephemeral key is made on first use (one_ephemeral) or per call.
  Result<std::string> seal_hex(ByteView plaintext, ByteView aad = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Opens a hex envelope addressed to `own` (hex in either case; no whitespace, no "0x"). Errors:
// not hex / too short (Errc::malformed), a bad ephemeral key — off the curve, a prefix other
// than 04, a small-order X25519 point, a non-canonical X25519 encoding (bit 255 set or u ≥ p,
// which RFC 7748 receivers silently reduce, so one envelope would have several valid
// encodings) (Errc::invalid_key) —, a failed tag
// (Errc::authentication_failed), a scheme of the other algorithm or AAD given to ed25519_box
// (Errc::invalid_argument). ed25519_box tries the XChaCha20 box first, then the XSalsa20 box
// (PyNaCl clients), as NEAR's server does. Messages never contain key or plaintext bytes.
Result<Bytes> open_hex(Scheme scheme, const KeyPair& own, std::string_view hex, ByteView aad = {});

// The smallest envelope of `scheme`, in bytes (ecdsa 93, ed25519_aes_gcm 60, box 72, xchacha 72).
std::size_t min_envelope_bytes(Scheme scheme) noexcept;
// Even-length hex of at least the minimum size: what a receiver tries to open.
bool looks_like_envelope(Scheme scheme, std::string_view text) noexcept;

}  // namespace e2ee::protocol::field

// Field-level E2EE hex envelopes (src/protocol/field/envelope.cpp): secp256k1 (Venice, NEAR,
// dstack), Ed25519 AES-GCM (dstack), NaCl box (NEAR v1) and XChaCha20 (NEAR v2), and peer keys.
//
// Input: mode byte; scheme = mode % 4 (ecdsa, ed25519_aes_gcm, ed25519_box, ed25519_xchacha),
// operation = mode / 4 % 4, then
//   0  a hex envelope, opened with the fixed key of the scheme's algorithm
//   1  aad length (byte % 33), aad, plaintext: sealed to the fixed key and opened again
//   2  a peer public key, raw bytes
//   3  ephemeral secret (32), nonce (12 or 24), plaintext: the deterministic sealer (test hook)
// Checks: only what looks like an envelope opens, in upper case alike; errors are malformed,
// invalid_key or authentication_failed (invalid_argument for AAD given to the box); a sealed
// envelope has the documented size, opens to its plaintext and to nothing else — not with
// another AAD, not with one hex digit changed, not as another scheme of the same algorithm;
// deterministic sealing is deterministic; a peer key is accepted exactly in its documented
// lengths, keeps its raw form, and parses the same from raw bytes and from hex ("0x", any case).

#include <array>
#include <string>

#include "common/encoding.hpp"
#include "fuzz_keys.hpp"
#include "fuzz_support.hpp"
#include "protocol/field/envelope.hpp"
#include "protocol/field/envelope_detail.hpp"

namespace {

namespace field = e2ee::protocol::field;
using e2ee::Bytes;
using e2ee::ByteView;
using e2ee::Errc;
using field::Algo;
using field::Scheme;

constexpr std::array<Scheme, 4> kSchemes{Scheme::ecdsa, Scheme::ed25519_aes_gcm, Scheme::ed25519_box,
                                         Scheme::ed25519_xchacha};

const field::KeyPair& own(Algo algo) {
  static const field::KeyPair ecdsa = e2ee::fuzz::fixed_field_key(Algo::ecdsa, 1);
  static const field::KeyPair ed25519 = e2ee::fuzz::fixed_field_key(Algo::ed25519, 2);
  return algo == Algo::ecdsa ? ecdsa : ed25519;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::size_t nonce_bytes(Scheme scheme) { return scheme == Scheme::ecdsa || scheme == Scheme::ed25519_aes_gcm ? 12 : 24; }

void open_raw(Scheme scheme, std::string_view hex) {
  const auto opened = field::open_hex(scheme, own(field::algo_of(scheme)), hex);
  const auto again = field::open_hex(scheme, own(field::algo_of(scheme)), upper(hex));
  FUZZ_CHECK(opened.has_value() == again.has_value());
  if (opened) {
    FUZZ_CHECK(field::looks_like_envelope(scheme, hex));
    FUZZ_CHECK(hex.size() / 2 == field::min_envelope_bytes(scheme) + opened->size());
    FUZZ_CHECK(*again == *opened);
    return;
  }
  const Errc code = opened.error().code;
  FUZZ_CHECK_MSG(code == Errc::malformed || code == Errc::invalid_key || code == Errc::authentication_failed,
                 opened.error().message);
  if (!field::looks_like_envelope(scheme, hex)) FUZZ_CHECK(code == Errc::malformed);
}

// What must hold for an envelope `hex` of `plaintext` sealed with `aad`.
void check_sealed(Scheme scheme, std::string_view hex, ByteView plaintext, ByteView aad, e2ee::fuzz::Rng& rng) {
  const field::KeyPair& key = own(field::algo_of(scheme));
  FUZZ_CHECK(field::looks_like_envelope(scheme, hex));
  FUZZ_CHECK(hex.size() == 2 * (field::min_envelope_bytes(scheme) + plaintext.size()));
  const auto opened = field::open_hex(scheme, key, hex, aad);
  FUZZ_CHECK(opened && *opened == Bytes(plaintext.begin(), plaintext.end()));
  const auto upper_case = field::open_hex(scheme, key, upper(hex), aad);
  FUZZ_CHECK(upper_case && *upper_case == *opened);

  Bytes other_aad(aad.begin(), aad.end());
  other_aad.push_back('x');
  FUZZ_CHECK(!field::open_hex(scheme, key, hex, other_aad));

  std::string changed(hex);
  char& digit = changed[rng.below(changed.size())];
  digit = digit == '0' ? '1' : '0';
  FUZZ_CHECK(!field::open_hex(scheme, key, changed, aad));

  for (const Scheme other : kSchemes) {
    if (other != scheme && field::algo_of(other) == field::algo_of(scheme))
      FUZZ_CHECK(!field::open_hex(other, key, hex, other == Scheme::ed25519_box ? ByteView{} : aad));
  }
}

void round_trip(Scheme scheme, std::string_view rest, e2ee::fuzz::Rng& rng) {
  if (rest.empty()) return;
  const std::size_t aad_len = std::min<std::size_t>(static_cast<std::uint8_t>(rest[0]) % 33, rest.size() - 1);
  const ByteView aad = e2ee::as_bytes(rest.substr(1, aad_len));
  const ByteView plaintext = e2ee::as_bytes(rest.substr(1 + aad_len));
  field::Sealer sealer(scheme, e2ee::fuzz::public_of(own(field::algo_of(scheme))), rng.coin());
  const auto hex = sealer.seal_hex(plaintext, aad);
  if (scheme == Scheme::ed25519_box && !aad.empty()) {
    FUZZ_CHECK(!hex && hex.error().code == Errc::invalid_argument);
    return;
  }
  FUZZ_CHECK(hex.has_value());
  check_sealed(scheme, *hex, plaintext, aad, rng);
  if (aad.empty()) e2ee::fuzz::emit_seed(static_cast<std::uint8_t>(scheme), *hex);
}

void peer_key(Scheme scheme, ByteView raw) {
  const Algo algo = field::algo_of(scheme);
  const auto key = field::PeerKey::parse(algo, raw);
  const auto from_hex = field::PeerKey::parse_hex(algo, "0x" + upper(e2ee::hex_encode(raw)));
  FUZZ_CHECK(key.has_value() == from_hex.has_value());
  const bool length_ok = algo == Algo::ecdsa ? raw.size() == 64 || raw.size() == 65 : raw.size() == 32;
  if (!key) {
    // A 33-byte compressed point is a refused key, not a wrong length.
    const bool known = length_ok || (algo == Algo::ecdsa && raw.size() == 33);
    FUZZ_CHECK_MSG(key.error().code == (known ? Errc::invalid_key : Errc::invalid_length), key.error().message);
    return;
  }
  FUZZ_CHECK(length_ok);
  FUZZ_CHECK(*from_hex == *key);
  const Bytes pub = key->public_raw();
  FUZZ_CHECK(pub.size() == (algo == Algo::ecdsa ? 64u : 32u));
  FUZZ_CHECK(std::equal(pub.begin(), pub.end(), raw.end() - static_cast<std::ptrdiff_t>(pub.size())));
  const auto again = field::PeerKey::parse(algo, pub);
  FUZZ_CHECK(again && *again == *key);
}

void deterministic(Scheme scheme, ByteView rest, e2ee::fuzz::Rng& rng) {
  const std::size_t nonce_len = nonce_bytes(scheme);
  if (rest.size() < 32 + nonce_len) return;
  const ByteView eph = rest.first(32);
  const ByteView nonce = rest.subspan(32, nonce_len);
  const ByteView plaintext = rest.subspan(32 + nonce_len);
  const auto recipient = e2ee::fuzz::public_of(own(field::algo_of(scheme)));
  const auto hex = field::detail::seal_hex_with(scheme, recipient, eph, nonce, plaintext);
  if (!hex) {
    FUZZ_CHECK(scheme == Scheme::ecdsa);  // only a secp256k1 scalar can be invalid (0 or ≥ n)
    return;
  }
  const auto again = field::detail::seal_hex_with(scheme, recipient, eph, nonce, plaintext);
  FUZZ_CHECK(again && *again == *hex);
  check_sealed(scheme, *hex, plaintext, {}, rng);
  e2ee::fuzz::emit_seed(static_cast<std::uint8_t>(scheme), *hex);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, rest] = e2ee::fuzz::split_mode(data, size);
  e2ee::fuzz::Rng rng(e2ee::fuzz::text_of(data, size));
  const Scheme scheme = kSchemes[mode % 4];
  switch (mode / 4 % 4) {
    case 0:
      open_raw(scheme, rest);
      break;
    case 1:
      round_trip(scheme, rest, rng);
      break;
    case 2:
      peer_key(scheme, e2ee::as_bytes(rest));
      break;
    default:
      deterministic(scheme, e2ee::as_bytes(rest), rng);
      break;
  }
  return 0;
}

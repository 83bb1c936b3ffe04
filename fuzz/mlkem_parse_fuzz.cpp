// ML-KEM-768 key and ciphertext parsing (src/crypto/mlkem768.cpp): the encapsulation key of an
// instance or a client (e2e_response_pk), decapsulation keys read from files, and every
// ciphertext a peer sends (request blobs, response blobs, e2e_init).
//
// Input: mode byte % 3, then
//   0  raw bytes, tried as a decapsulation key, an encapsulation key and a ciphertext (to a
//      fixed key): each accepted exactly when an independent check says it is valid — length;
//      for keys the FIPS 203 modulus check (every 12-bit coefficient < q; EncapsulationKey::check
//      alone must agree), for decapsulation keys also H(ek) — and an accepted key keeps its bytes;
//   1  a 64-byte seed, then edits (offset lo, offset hi, byte)…: the key pair from the seed must
//      round-trip (expanded form parses back, encapsulate/decapsulate agree, a ciphertext with
//      one byte changed gives a different secret); then the expanded form with the edits
//      applied is parsed and judged like mode 0;
//   2  the same with the edits applied to the encapsulation key.

#include <algorithm>
#include <array>
#include <vector>

#include "crypto/hash.hpp"
#include "crypto/mlkem768.hpp"
#include "fuzz_keys.hpp"
#include "fuzz_support.hpp"

namespace {

namespace mlkem = e2ee::crypto::mlkem768;
using e2ee::Bytes;
using e2ee::ByteView;

constexpr std::size_t kPolyBytes = 384;                       // 256 coefficients × 12 bits
constexpr std::size_t kTHatBytes = 3 * kPolyBytes;            // k = 3
constexpr std::size_t kEkInDk = kTHatBytes;                   // dk = s ‖ ek ‖ H(ek) ‖ z
constexpr std::size_t kHashInDk = kEkInDk + mlkem::kEncapsulationKeyBytes;
constexpr std::uint16_t kQ = 3329;

// The 12-bit values of a vector of polynomials (FIPS 203 ByteDecode12 before its reduction
// mod q), written out independently of the library.
std::vector<unsigned> values12(ByteView bytes) {
  std::vector<unsigned> out;
  for (std::size_t i = 0; i + 3 <= bytes.size(); i += 3) {
    out.push_back(bytes[i] | ((bytes[i + 1] & 0x0Fu) << 8));
    out.push_back((bytes[i + 1] >> 4) | (unsigned{bytes[i + 2]} << 4));
  }
  return out;
}

// FIPS 203 section 7.2: every coefficient of t̂ below q.
bool modulus_ok(ByteView ek) {
  if (ek.size() != mlkem::kEncapsulationKeyBytes) return false;
  const auto t_hat = values12(ek.first(kTHatBytes));
  return std::all_of(t_hat.begin(), t_hat.end(), [](unsigned v) { return v < kQ; });
}

// Equal as FIPS 203 reads them: ByteDecode12 reduces mod q, and section 7.3 does not require
// the secret vector s to be canonical, so s may come back re-encoded.
bool same_secret_vector(ByteView a, ByteView b) {
  auto va = values12(a);
  auto vb = values12(b);
  for (auto& v : va) v %= kQ;
  for (auto& v : vb) v %= kQ;
  return va == vb;
}

bool dk_ok(ByteView dk) {
  if (dk.size() != mlkem::kDecapsulationKeyBytes) return false;
  const ByteView ek = dk.subspan(kEkInDk, mlkem::kEncapsulationKeyBytes);
  const auto h = e2ee::crypto::sha3_256(ek);
  return modulus_ok(ek) && std::equal(h.begin(), h.end(), dk.begin() + kHashInDk);
}

const mlkem::DecapsulationKey& fixed_key() {
  static const mlkem::DecapsulationKey key = e2ee::fuzz::fixed_mlkem_key(0x42);
  return key;
}

void judge(ByteView bytes) {
  const auto dk = mlkem::DecapsulationKey::parse(bytes);
  FUZZ_CHECK(dk.has_value() == dk_ok(bytes));
  if (dk) {
    const auto expanded = dk->expanded_bytes();
    const ByteView out(expanded.data(), expanded.size());
    FUZZ_CHECK(out.size() == bytes.size());
    FUZZ_CHECK(std::equal(out.begin() + kEkInDk, out.end(), bytes.begin() + kEkInDk));
    FUZZ_CHECK(same_secret_vector(out.first(kTHatBytes), bytes.first(kTHatBytes)));
    const auto& ek = dk->encapsulation_key().bytes();
    FUZZ_CHECK(std::equal(ek.begin(), ek.end(), bytes.begin() + kEkInDk));
    // Whatever s and z are, decapsulation is a function of (dk, c), and the re-encoded key is
    // the same key.
    const auto canonical = mlkem::DecapsulationKey::parse(out);
    FUZZ_CHECK(canonical.has_value());
    const mlkem::Encapsulation enc = mlkem::encapsulate_derand(dk->encapsulation_key(), std::span(ek).first<32>());
    const auto k1 = mlkem::decapsulate(*dk, enc.ciphertext);
    const auto k2 = mlkem::decapsulate(*canonical, enc.ciphertext);
    FUZZ_CHECK(k1 && k2 && e2ee::crypto::constant_time_equal(k1->span(), k2->span()));
  }

  const auto ek = mlkem::EncapsulationKey::parse(bytes);
  FUZZ_CHECK(ek.has_value() == modulus_ok(bytes));
  FUZZ_CHECK(mlkem::EncapsulationKey::check(bytes).has_value() == modulus_ok(bytes));  // the same checks, alone
  if (ek) FUZZ_CHECK(std::equal(ek->bytes().begin(), ek->bytes().end(), bytes.begin(), bytes.end()));

  const auto secret = mlkem::decapsulate(fixed_key(), bytes);
  FUZZ_CHECK(secret.has_value() == (bytes.size() == mlkem::kCiphertextBytes));
}

// (offset lo, offset hi, value) triples applied to `bytes`.
void apply_edits(Bytes& bytes, ByteView edits) {
  for (std::size_t i = 0; i + 3 <= edits.size(); i += 3) {
    const std::size_t at = (edits[i] | (std::size_t{edits[i + 1]} << 8)) % bytes.size();
    bytes[at] = edits[i + 2];
  }
}

void from_seed(std::uint8_t mode, ByteView seed, ByteView edits) {
  const auto dk = mlkem::DecapsulationKey::from_seed(seed);
  FUZZ_CHECK(dk.has_value());
  const auto expanded = dk->expanded_bytes();
  const Bytes dk_bytes(expanded.begin(), expanded.end());
  const auto& ek = dk->encapsulation_key().bytes();
  FUZZ_CHECK(dk_ok(dk_bytes));

  const auto reparsed = mlkem::DecapsulationKey::parse(dk_bytes);
  FUZZ_CHECK(reparsed.has_value());
  const auto ek_again = mlkem::EncapsulationKey::parse(ek);
  FUZZ_CHECK(ek_again && ek_again->bytes() == ek);

  const mlkem::Encapsulation enc = mlkem::encapsulate_derand(*ek_again, seed.first<32>());
  const auto shared = mlkem::decapsulate(*reparsed, enc.ciphertext);
  FUZZ_CHECK(shared && e2ee::crypto::constant_time_equal(shared->span(), enc.shared_secret.span()));
  mlkem::Ciphertext tampered = enc.ciphertext;
  tampered[(seed[32] | (std::size_t{seed[33]} << 8)) % tampered.size()] ^= static_cast<std::uint8_t>(1u << (seed[34] % 8));
  const auto rejected = mlkem::decapsulate(*dk, tampered);
  const auto rejected_again = mlkem::decapsulate(*reparsed, tampered);
  FUZZ_CHECK(rejected && !e2ee::crypto::constant_time_equal(rejected->span(), enc.shared_secret.span()));
  FUZZ_CHECK(rejected_again && e2ee::crypto::constant_time_equal(rejected->span(), rejected_again->span()));

  Bytes edited = mode == 1 ? dk_bytes : Bytes(ek.begin(), ek.end());
  apply_edits(edited, edits);
  judge(edited);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode_byte, rest_text] = e2ee::fuzz::split_mode(data, size);
  const ByteView rest = e2ee::as_bytes(rest_text);
  const std::uint8_t mode = mode_byte % 3;
  if (mode == 0) {
    judge(rest);
  } else if (rest.size() >= mlkem::kSeedBytes) {
    from_seed(mode, rest.first(mlkem::kSeedBytes), rest.subspan(mlkem::kSeedBytes));
  }
  return 0;
}

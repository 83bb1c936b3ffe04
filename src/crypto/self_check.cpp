#include "crypto/self_check.hpp"

#include <functional>

#include "common/encoding.hpp"
#include "crypto/aead.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/gzip.hpp"
#include "crypto/hash.hpp"
#include "crypto/hkdf.hpp"
#include "crypto/mlkem768.hpp"
#include "crypto/random.hpp"

namespace e2ee::crypto {
namespace {

// Every expected value below comes from outside this code base; the comment on each check names
// the source. Large outputs are compared through their SHA3-256 digest, computed with Python's
// hashlib from the published vector.

Bytes hex(std::string_view s) { return *hex_decode(s); }

template <std::size_t N>
std::string hex_of(const SecretArray<N>& s) {
  return hex_encode(ByteView(s.data(), s.size()));
}

bool mlkem_known_answers() {
  // Wycheproof mlkem_768_keygen_seed_test.json tcId 1 and mlkem_768_encaps_test.json tcId 14
  // (the same key).
  const Bytes seed = hex(
      "7c9935a0b07694aa0c6d10e4db6b1add2fd81a25ccb148032dcd739936737f2d"
      "8626ed79d451140800e03b59b956f8210e556067407d13dc90fa9e8b872bfb8f");
  auto dk = mlkem768::DecapsulationKey::from_seed(seed);
  if (!dk) return false;
  const auto expanded = dk->expanded_bytes();
  if (hex_encode(sha3_256(dk->encapsulation_key().bytes())) !=
          "f57262661358cde8d3ebf990e5fd1d5b896c992ccfaadb5256b68bbf5943b132" ||
      hex_encode(sha3_256(ByteView(expanded.data(), expanded.size()))) !=
          "7deef44965b03d76de543ad6ef9e74a2772fa5a9fa0e761120dac767cf0152ef")
    return false;
  const Bytes m = hex("147c03f7a5bebba406c8fae1874d7f13c80efe79a3a9a874cc09fe76f6997615");
  const auto enc = mlkem768::encapsulate_derand(dk->encapsulation_key(), std::span<const std::uint8_t, 32>(m.data(), 32));
  const std::string k = "e7184a0975ee3470878d2d159ec83129c8aec253d4ee17b4810311d198cd0368";
  if (hex_encode(sha3_256(enc.ciphertext)) != "6e777e2cf8054659136a971d9e70252f301226930c19c470ee0688163a63c15b" ||
      hex_of(enc.shared_secret) != k)
    return false;
  const auto back = mlkem768::decapsulate(*dk, enc.ciphertext);
  if (!back || hex_of(*back) != k) return false;
  // Implicit rejection: a tampered ciphertext yields a different, repeatable key.
  auto tampered = enc.ciphertext;
  tampered[0] ^= 1;
  const auto r1 = mlkem768::decapsulate(*dk, tampered);
  const auto r2 = mlkem768::decapsulate(*dk, tampered);
  return r1 && r2 && hex_of(*r1) != k && hex_of(*r1) == hex_of(*r2);
}

bool chutes_known_answers() {
  // ../shared/specs/chutes-protocol.md section 20, cross-checked there with Node and Python.
  const auto ct = aead_seal(Aead::chacha20_poly1305, Bytes(32, 0x01), Bytes(12, 0x02), to_bytes("hi"));
  if (!ct || hex_encode(*ct) != "8e755d6240e2f604d0e83d2c62df42b24276") return false;
  const auto k = hkdf_sha256(Bytes(32, 0x03), Bytes(16, 0x04), to_bytes("e2e-req-v1"), 32);
  return k && hex_encode(ByteView(k->data(), k->size())) ==
                  "2bc17e165acacef0681514871e823032da70a64dc51e5f400f4f20e16c2bd36f";
}

bool ecdsa_known_answers() {
  // ../shared/specs/near-phala-protocol.md section 12 (ECDSA, v1 and v2).
  auto server = secp256k1::PrivateKey::from_bytes(Bytes(32, 0x11));
  auto eph = secp256k1::PrivateKey::from_bytes(Bytes(32, 0x22));
  if (!server || !eph) return false;
  if (hex_encode(server->public_key().raw()) !=
      "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1")
    return false;
  const auto shared = secp256k1::ecdh(*eph, server->public_key());
  if (!shared || hex_of(*shared) != "77e0510d5042e2f5e9e59c977b81eeed590cf7d20c1c51da451a8eaa9fdc45ff") return false;
  const auto key = hkdf_sha256(ByteView(shared->data(), shared->size()), {}, to_bytes("ecdsa_encryption"), 32);
  if (!key || hex_encode(ByteView(key->data(), key->size())) !=
                  "41d8f5155ed5844867b9244accfb74b0dd6baa897e300a70e94a823032f9131f")
    return false;
  const Bytes iv = hex("000102030405060708090a0b");
  const ByteView k(key->data(), key->size());
  const auto v1 = aead_seal(Aead::aes_gcm, k, iv, to_bytes("hello"));
  const auto v2 = aead_seal(Aead::aes_gcm, k, iv, to_bytes("hello"),
                            to_bytes("v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000"));
  return v1 && v2 && hex_encode(*v1) == "a84e92c951a98a94fe8f00168f40909b61642df01c" &&
         hex_encode(*v2) == "a84e92c9510ce7a9d341d3ad37aaf6918123dac554";
}

bool ed25519_known_answers() {
  // ../shared/specs/near-phala-protocol.md section 12 (Ed25519).
  const Bytes seed(32, 0x33);
  const auto server = ed25519::from_seed(std::span<const std::uint8_t, 32>(seed.data(), 32));
  if (hex_encode(server.public_key) != "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce") return false;
  const auto x_pub = ed25519::public_to_x25519(server.public_key);
  if (!x_pub || hex_encode(*x_pub) != "4eb4fafee2bd3018a24e310de8106333c2b364eaed029a7f05d7b45ccc77683a") return false;
  const Bytes eph(32, 0x44);
  if (hex_encode(x25519::public_from_private(std::span<const std::uint8_t, 32>(eph.data(), 32))) !=
      "ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b")
    return false;
  const auto shared = x25519::ecdh(std::span<const std::uint8_t, 32>(eph.data(), 32), *x_pub);
  return shared && hex_of(*shared) == "3810545e0f05bf55b4a953d425943d457be5329f5b7180cc347455fea9ba5866";
}

bool keccak_known_answer() {
  // Keccak-256 of the empty string, as used for Ethereum addresses.
  return hex_encode(keccak256({})) == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470";
}

bool gzip_behaviour() {
  const Bytes text = to_bytes(std::string(10000, 'a'));
  const auto packed = gzip_compress(text, 6);
  if (!packed) return false;
  const auto unpacked = gzip_decompress(*packed, text.size());
  const auto limited = gzip_decompress(*packed, text.size() - 1);
  return unpacked && *unpacked == text && !limited && limited.error().code == Errc::limit_exceeded;
}

bool random_behaviour() {
  const auto a = random_secret<32>();
  const auto b = random_secret<32>();
  return hex_of(a) != hex_of(b);
}

}  // namespace

std::vector<SelfCheckResult> run_self_check() {
  const std::pair<const char*, std::pair<const char*, std::function<bool()>>> checks[] = {
      {"ML-KEM-768 keygen, encaps, decaps, implicit rejection", {"Wycheproof ML-KEM-768 tcId 1 / 14", mlkem_known_answers}},
      {"ChaCha20-Poly1305 and HKDF-SHA256 (Chutes)", {"chutes-protocol.md section 20", chutes_known_answers}},
      {"secp256k1 ECDH, HKDF, AES-256-GCM v1/v2 (dstack ECDSA)", {"near-phala-protocol.md section 12", ecdsa_known_answers}},
      {"Ed25519 -> X25519 and X25519 ECDH (dstack Ed25519)", {"near-phala-protocol.md section 12", ed25519_known_answers}},
      {"Keccak-256", {"Ethereum's Keccak-256(\"\")", keccak_known_answer}},
      {"gzip round trip and decompression limit", {"behavioural", gzip_behaviour}},
      {"CSPRNG (ChaCha20 keyed by getrandom)", {"behavioural", random_behaviour}},
  };
  std::vector<SelfCheckResult> results;
  for (const auto& [name, check] : checks) results.push_back({name, check.first, check.second()});
  return results;
}

}  // namespace e2ee::crypto

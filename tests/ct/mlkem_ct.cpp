// Constant-time check for ML-KEM-768 (the "ctgrind" technique): secret inputs are marked
// undefined for valgrind memcheck, which then reports every conditional jump, conditional move
// or memory address computed from them. Run by run_ct.sh under valgrind --error-exitcode.
//
// Modes:
//   keygen   KeyGen_internal from a secret seed (d || z)
//   parse    parsing an expanded decapsulation key whose s and z are secret
//   encaps   Encaps_internal with a secret m
//   decaps   Decaps with a secret key, for a valid and a tampered (implicitly rejected) ciphertext
//   leaky    a control that branches on a secret; valgrind MUST report it, proving the harness
//            can fail

#include <valgrind/memcheck.h>

#include <cstdio>
#include <cstring>
#include <string_view>

#include "crypto/detail/cpu_features.hpp"
#include "crypto/mlkem768.hpp"

using namespace e2ee;
using namespace e2ee::crypto::mlkem768;

namespace {

void secret(const void* p, std::size_t n) { VALGRIND_MAKE_MEM_UNDEFINED(p, n); }
void declassify(const void* p, std::size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }

// Consumes an output after declassifying it, so the computation cannot be optimised away and the
// printing itself does not trip memcheck.
unsigned fold(const std::uint8_t* p, std::size_t n) {
  declassify(p, n);
  unsigned acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc = acc * 31 + p[i];
  return acc;
}

Bytes fixed_seed() {
  Bytes seed(64);
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return seed;
}

int run_keygen() {
  Bytes seed = fixed_seed();
  secret(seed.data(), seed.size());
  auto dk = DecapsulationKey::from_seed(seed);
  if (!dk) return 2;
  const auto expanded = dk->expanded_bytes();
  std::printf("keygen %08x\n", fold(expanded.data(), expanded.size()));
  return 0;
}

DecapsulationKey key_with_secret_state() {
  auto dk = DecapsulationKey::from_seed(fixed_seed());
  auto expanded = dk->expanded_bytes();
  // dk = s (1152) || ek (1184) || H(ek) (32) || z (32): s and z are the secrets.
  secret(expanded.data(), 1152);
  secret(expanded.data() + 2368, 32);
  return std::move(DecapsulationKey::parse(ByteView(expanded.data(), expanded.size())).value());
}

int run_parse() {
  const auto dk = key_with_secret_state();
  std::printf("parse ok %zu\n", dk.encapsulation_key().bytes().size());
  return 0;
}

int run_encaps() {
  const auto dk = DecapsulationKey::from_seed(fixed_seed());
  std::array<std::uint8_t, 32> m;
  std::memset(m.data(), 0x5c, m.size());
  secret(m.data(), m.size());
  const auto enc = encapsulate_derand(dk->encapsulation_key(), m);
  std::printf("encaps %08x %08x\n", fold(enc.ciphertext.data(), enc.ciphertext.size()),
              fold(enc.shared_secret.data(), enc.shared_secret.size()));
  return 0;
}

int run_decaps() {
  const auto dk = key_with_secret_state();
  std::array<std::uint8_t, 32> m;
  std::memset(m.data(), 0x3a, m.size());
  const auto enc = encapsulate_derand(dk.encapsulation_key(), m);
  declassify(enc.ciphertext.data(), enc.ciphertext.size());  // a ciphertext is public
  auto tampered = enc.ciphertext;
  tampered[100] ^= 0x40;
  const Ciphertext* ciphertexts[] = {&enc.ciphertext, &tampered};
  for (const Ciphertext* c : ciphertexts) {
    auto k = decapsulate(dk, *c);
    if (!k) return 2;
    std::printf("decaps %08x\n", fold(k->data(), k->size()));
  }
  return 0;
}

int run_leaky() {
  std::uint8_t key[32];
  std::memset(key, 0x11, sizeof key);
  secret(key, sizeof key);
  volatile int count = 0;
  for (std::uint8_t b : key)
    if (b & 1) count = count + 1;  // the secret-dependent branch memcheck must catch
  std::printf("leaky %d\n", static_cast<int>(count));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mlkem_ct keygen|parse|encaps|decaps|leaky\n");
    return 2;
  }
  const std::string_view mode = argv[1];
  // Which arithmetic and Keccak code runs (run_ct.sh checks it where the test names one).
#if E2EE_X86_AVX2
  std::printf("code: %s\n", crypto::detail::cpu_has_avx2() ? "avx2" : "portable");
#else
  std::printf("code: portable\n");
#endif
  std::fflush(stdout);
  if (mode == "keygen") return run_keygen();
  if (mode == "parse") return run_parse();
  if (mode == "encaps") return run_encaps();
  if (mode == "decaps") return run_decaps();
  if (mode == "leaky") return run_leaky();
  std::fprintf(stderr, "unknown mode\n");
  return 2;
}

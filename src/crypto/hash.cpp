#include "crypto/hash.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

// keccak256 lives in keccak.cpp (OpenSSL 3.0 has no pre-standard Keccak padding).

namespace e2ee::crypto {
namespace {

// These functions have no error channel: a failing digest call means the OpenSSL installation
// itself is broken (no default provider), and returning an unset digest would be far worse.
[[noreturn]] void fatal(const char* what) noexcept {
  std::fprintf(stderr, "fatal: OpenSSL %s failed; cannot compute a digest\n", what);
  std::abort();
}

// OpenSSL 3 looks an algorithm up in its provider store on every call when it is handed
// EVP_sha256() and friends (about 300 ns per SHA-256 call on the project's machines); fetching
// explicitly once avoids that. The fetched objects are deliberately never freed: a static
// destructor could run after OpenSSL's own atexit cleanup has torn the providers down.
const EVP_MD* fetch(const char* name) noexcept {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) fatal(name);
  return md;
}

const EVP_MD* md_sha256() noexcept {
  static const EVP_MD* const md = fetch("SHA2-256");
  return md;
}
const EVP_MD* md_sha512() noexcept {
  static const EVP_MD* const md = fetch("SHA2-512");
  return md;
}
const EVP_MD* md_sha3_256() noexcept {
  static const EVP_MD* const md = fetch("SHA3-256");
  return md;
}
const EVP_MD* md_sha3_512() noexcept {
  static const EVP_MD* const md = fetch("SHA3-512");
  return md;
}
const EVP_MD* md_shake128() noexcept {
  static const EVP_MD* const md = fetch("SHAKE-128");
  return md;
}
const EVP_MD* md_shake256() noexcept {
  static const EVP_MD* const md = fetch("SHAKE-256");
  return md;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// A fresh context per call rather than a long-lived thread_local one: inputs are often secret
// (ML-KEM seeds, shared secrets), and OpenSSL leaves the final sponge state and the last input
// block in a context until it is freed, which it then wipes. The allocation costs ~60 ns.
MdCtx absorb(const EVP_MD* md, ByteView data) noexcept {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx) fatal("EVP_MD_CTX_new");
  if (EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1) fatal("EVP_DigestInit_ex2");
  if (!data.empty() && EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1) fatal("EVP_DigestUpdate");
  return ctx;
}

template <std::size_t N>
std::array<std::uint8_t, N> fixed_digest(const EVP_MD* md, ByteView data) noexcept {
  const MdCtx ctx = absorb(md, data);
  std::array<std::uint8_t, N> out{};
  unsigned int written = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &written) != 1 || written != N) fatal("EVP_DigestFinal_ex");
  return out;
}

void xof(const EVP_MD* md, ByteView data, MutableByteView out) noexcept {
  if (out.empty()) return;
  const MdCtx ctx = absorb(md, data);
  if (EVP_DigestFinalXOF(ctx.get(), out.data(), out.size()) != 1) fatal("EVP_DigestFinalXOF");
}

}  // namespace

Digest32 sha256(ByteView data) { return fixed_digest<32>(md_sha256(), data); }
Digest64 sha512(ByteView data) { return fixed_digest<64>(md_sha512(), data); }
Digest32 sha3_256(ByteView data) { return fixed_digest<32>(md_sha3_256(), data); }
Digest64 sha3_512(ByteView data) { return fixed_digest<64>(md_sha3_512(), data); }
void shake128(ByteView data, MutableByteView out) { xof(md_shake128(), data, out); }
void shake256(ByteView data, MutableByteView out) { xof(md_shake256(), data, out); }

}  // namespace e2ee::crypto

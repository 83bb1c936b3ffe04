// e2ee-proxy: the local end-to-end-encrypting proxy (see README.md).

#include <cstdio>
#include <cstring>

#include "app/self_check_command.hpp"

namespace {

constexpr const char* kUsage = R"(usage: e2ee-proxy [options]

Runs next to you: OpenAI / Anthropic clients talk to it in plaintext on loopback, and it
encrypts each request end to end to a GPU instance inside a TEE.

Options:
  --self-check    verify every cryptographic primitive against published known answers
                  (ML-KEM-768, ChaCha20-Poly1305, AES-256-GCM, HKDF-SHA256, secp256k1,
                  X25519, Ed25519, Keccak-256, gzip, CSPRNG) and exit 0 if all pass
  --version       print the version and exit
  --help          this text
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--self-check") == 0) return e2ee::app::run_self_check_command();
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("e2ee-proxy %s\n", E2EE_VERSION);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--help") == 0) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fputs(kUsage, stderr);
  std::fputs("\ne2ee-proxy: this build provides --self-check only; the proxy itself is not built yet\n", stderr);
  return 2;
}

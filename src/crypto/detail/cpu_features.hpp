#pragma once
// Which optional instruction sets this process may use. Code for them lives next to a portable
// version and is chosen at run time, so one binary runs on every x86-64 machine.

// Set where the compiler can emit AVX2 for single functions (target attribute) on x86-64.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define E2EE_X86_AVX2 1
#define E2EE_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define E2EE_X86_AVX2 0
#endif

namespace e2ee::crypto::detail {

#if E2EE_X86_AVX2
// True when the CPU (and the OS, which must save the YMM registers) supports AVX2 and the
// environment does not set E2EE_NO_AVX2 (to anything but "0"). Checked once per process.
bool cpu_has_avx2() noexcept;
#endif

}  // namespace e2ee::crypto::detail

#include "crypto/detail/cpu_features.hpp"

#include <cstdlib>
#include <cstring>

namespace e2ee::crypto::detail {

#if E2EE_X86_AVX2
bool cpu_has_avx2() noexcept {
  // __builtin_cpu_supports reads CPUID and XGETBV once; the init call makes it safe however
  // early the first caller runs. E2EE_NO_AVX2 (set and not "0") forces the portable code, so that
  // the constant-time test and the benchmarks can run it on a machine that has AVX2.
  static const bool has = [] {
    const char* off = std::getenv("E2EE_NO_AVX2");
    if (off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
#endif

}  // namespace e2ee::crypto::detail

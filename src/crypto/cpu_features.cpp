#include "crypto/detail/cpu_features.hpp"

namespace e2ee::crypto::detail {

#if E2EE_X86_AVX2
bool cpu_has_avx2() noexcept {
  // __builtin_cpu_supports reads CPUID and XGETBV once; the init call makes it safe however
  // early the first caller runs.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}
#endif

}  // namespace e2ee::crypto::detail

#include "app/self_check_command.hpp"

#include <cstdio>

#include "crypto/self_check.hpp"

namespace e2ee::app {

int run_self_check_command() {
  const auto results = crypto::run_self_check();
  int failed = 0;
  for (const auto& r : results) {
    std::printf("%s  %-58s [%s]\n", r.passed ? "PASS" : "FAIL", r.name.c_str(), r.source.c_str());
    failed += r.passed ? 0 : 1;
  }
  std::printf("self-check: %zu of %zu known-answer checks passed\n", results.size() - static_cast<std::size_t>(failed),
              results.size());
  return failed == 0 ? 0 : 1;
}

}  // namespace e2ee::app

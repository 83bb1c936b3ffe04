#pragma once
// Known-answer self-check of every primitive, in the spirit of a FIPS power-on self-test: run by
// `e2ee-proxy --self-check` so an operator can confirm that this build on this machine computes
// what the standards and the providers' protocols say, before trusting it with prompts.

#include <string>
#include <vector>

namespace e2ee::crypto {

struct SelfCheckResult {
  std::string name;    // what was checked
  std::string source;  // where the expected value comes from
  bool passed;
};

std::vector<SelfCheckResult> run_self_check();

}  // namespace e2ee::crypto

// Which sanitizer the binaries under test were built with, from E2EE_SANITIZER (set by
// tests/integration/CMakeLists.txt for the asan-ubsan and tsan builds; empty for release).
//
// Sanitized binaries run several times slower and hold memory of their own (ASan's quarantine of
// freed blocks, TSan's shadow and history), so the suites keep every functional assertion but
// stretch their time bounds and only report their memory bounds there. The release run, which CI
// also does, enforces the memory bounds as written.

export const SANITIZER = process.env.E2EE_SANITIZER ?? '';

// Multiplier for wall-clock bounds.
export const TIME_SCALE = SANITIZER ? 4 : 1;

// Asserts a memory bound in release builds; under a sanitizer, reports it as a diagnostic instead.
export function assertMemoryBound(t, ok, message) {
  if (!SANITIZER) {
    if (!ok) throw new Error(message);
    return;
  }
  if (!ok) t.diagnostic(`memory bound not enforced under ${SANITIZER}: ${message}`);
}

#pragma once
// `--self-check`, shared by both executables: runs the crypto known-answer checks and prints
// one line per check. Returns the process exit code (0 only if every check passed).

namespace e2ee::app {

int run_self_check_command();

}  // namespace e2ee::app

#pragma once
// The gateway's identity as a Chutes instance: an instance id and a long-lived ML-KEM-768 key
// pair. Fresh on every start by default; with --key-dir the 64-byte seed and the id are kept in
// files written 0600 (and refused if others can read them), so clients' cached keys stay valid
// across restarts.

#include <filesystem>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "crypto/mlkem768.hpp"

namespace e2ee::gateway {

struct InstanceIdentity {
  std::string instance_id;  // UUID v4
  crypto::mlkem768::DecapsulationKey key;
  std::string public_key_base64;
  std::string fingerprint;  // SHA-256 of the encapsulation key, hex, first 16 chars
};

std::string random_uuid_v4();

// Loads <dir>/chutes-instance.json + <dir>/chutes-mlkem768.seed, or creates them.
Result<InstanceIdentity> load_or_create_identity(const std::optional<std::filesystem::path>& key_dir);

// Writes `bytes` to `path` created with mode 0600 (replacing atomically); refuses an existing
// file readable by group or others when reading. Exposed for tests.
Status write_private_file(const std::filesystem::path& path, std::string_view bytes);
Result<std::string> read_private_file(const std::filesystem::path& path);

}  // namespace e2ee::gateway

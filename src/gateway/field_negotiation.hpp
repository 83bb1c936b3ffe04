#pragma once
// Which field-level E2EE a chat request asks for, from its headers, for all three client
// families (near-phala-protocol.md §3, §10.1; venice-protocol.md §5). Pure: tested on its own.
//
//   Venice   X-Venice-TEE-Client-Pub-Key, X-Venice-TEE-Model-Pub-Key, X-Venice-TEE-Signing-Algo: ecdsa
//   dstack   X-Signing-Algo, X-Client-Pub-Key, X-Model-Pub-Key [, X-E2EE-Version, X-E2EE-Nonce, X-E2EE-Timestamp]
//   NEAR     the same three [, X-Encryption-Version (Ed25519 v1 box / v2 XChaCha), X-Encrypt-All-Fields]
//            (X-Encryption-Version, or X-Encrypt-All-Fields without any X-E2EE-* header, means NEAR;
//            dstack headers with X-Encrypt-All-Fields are dstack with NEAR's wider field coverage)
//
// Differences from the reference server (vllm-proxy), on purpose: the client key is parsed and
// validated here, before anything is decrypted or forwarded (its late check let a bad key leak a
// plaintext stream, risk R1); a stale model key on the NEAR family is HTTP 421 (what NEAR's gateway
// answers, so clients refresh); an Ed25519 request without any version header is ambiguous between
// dstack v1 (AES-GCM) and NEAR v1 (NaCl box), so both are tried and the one that opens wins.

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "http/headers.hpp"
#include "protocol/field/envelope.hpp"
#include "protocol/field/fields.hpp"

namespace e2ee::gateway {

struct FieldKeys {
  protocol::field::KeyPair ecdsa;
  protocol::field::KeyPair ed25519;
};

enum class FieldFamily { venice, dstack, near };

struct FieldSession {
  FieldFamily family;
  protocol::field::Algo algo;
  std::vector<protocol::field::Scheme> schemes;  // try in order when opening the request (usually one)
  protocol::field::FieldPolicy policy;            // scheme filled in with schemes[0]
  protocol::field::PeerKey client;
  int version = 1;               // echoed in X-E2EE-Version
  bool one_ephemeral = false;    // dstack: one ephemeral key per response; NEAR/Venice: per field
};

struct FieldError {
  int status = 400;
  std::string type;     // the reference error types: e2ee_header_missing, e2ee_model_key_mismatch, …
  std::string message;
};

// nullopt: a plain request (no E2EE headers).
std::variant<std::monostate, FieldSession, FieldError> negotiate_field_e2ee(
    const http::Headers& headers, const FieldKeys& keys, std::chrono::seconds replay_window,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The error for a request body that did not open (protocol::field::decrypt_request's error), as
// dstack reports it (near-phala-protocol.md §4.1, §9): a failed tag and an envelope that is too
// short are e2ee_decryption_failed; everything else (not hex, an invalid envelope key, plaintext
// that is not UTF-8, a malformed body) is invalid_e2ee_request. Messages name the field, never
// its content.
FieldError request_open_error(const Error& error);

// {"error":{"message","type","param":null,"code":null}} (vllm-proxy's error shape).
std::string field_error_json(const FieldError& error);

// EIP-55 mixed-case checksum encoding of a 20-byte address, with 0x.
std::string checksum_address(const std::array<std::uint8_t, 20>& address);

}  // namespace e2ee::gateway

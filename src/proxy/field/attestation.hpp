#pragma once
// Deciding whether to trust a model key: the attestation reports of Venice, dstack vllm-proxy and
// NEAR AI checked before a single prompt byte is encrypted to the key they carry
// (venice-protocol.md §2, near-phala-protocol.md §2 and §10.3). Pure functions over the report's
// JSON text and the nonce we sent, so every refusal is unit-tested without a server.
//
// What is checked is the binding — the key's identity and our fresh nonce inside the REPORTDATA
// of a TDX quote from a non-debug TD — not the quote's signature chain (no DCAP collateral here).
// Venice adds its own server-side verification report, which is required to agree.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "protocol/field/envelope.hpp"

namespace e2ee::proxy::field {

using protocol::field::Algo;
using protocol::field::PeerKey;

// The fresh 32-byte nonce of one attestation request.
struct AttestationNonce {
  std::array<std::uint8_t, 32> bytes{};
  static AttestationNonce random();  // from the CSPRNG
  std::string hex() const;           // 64 lowercase hex characters, as the endpoints take it
};

// A key that passed verification, with what the request headers need.
struct VerifiedKey {
  PeerKey key;
  std::string key_text;          // the key as the report gave it (hex, no 0x): echoed in X-Model-Pub-Key
  std::string identity;          // 0x-address (ecdsa) or key hex (ed25519): safe to log
  bool quote_checked = false;    // REPORTDATA was checked against a TDX quote
};

// What REPORTDATA binds for a key: the 20-byte Ethereum address of an ecdsa key (keccak256(X‖Y)
// [12..32]), or the 32 bytes of an Ed25519 key.
Bytes key_identity(const PeerKey& key);

enum class NonceBinding {
  raw,            // REPORTDATA[32..64) = the nonce (dstack, NEAR)
  raw_or_sha256,  // … or SHA-256 of the nonce (Venice: venice-e2ee accepts both)
};

// REPORTDATA (64 bytes) = identity ‖ zero padding up to 32 bytes ‖ nonce (32 bytes).
Status check_report_data(ByteView report_data, ByteView identity, ByteView nonce, NonceBinding binding);
// Decodes and parses the quote text, then refuses a non-TDX quote, a debug TD, or a REPORTDATA
// that does not bind `identity` and `nonce`.
Status check_quote_binding(std::string_view quote_text, ByteView identity, ByteView nonce, NonceBinding binding);

// Venice GET /api/v1/tee/attestation (venice-protocol.md §2.3, checks 1–9): verified, the nonce
// echo, the model id, an uncompressed secp256k1 key, the quote (TDX, not debug, REPORTDATA =
// address ‖ 12 zeros ‖ nonce or SHA-256(nonce)), signing_address when given, and Venice's own
// server_verification (tdx valid, nonce bound, address bound when reported, nvidia valid when a
// GPU payload is present), whose bindings may be objects or plain booleans. With
// `allow_missing_quote`, a report without intel_quote (e2ee-gateway outside a TEE) passes on
// checks 2-4 and 8 alone, and the key is marked as not quote-checked.
Result<VerifiedKey> verify_venice_report(std::string_view json, std::string_view model, const AttestationNonce& nonce,
                                         bool allow_missing_quote = false);

// dstack vllm-proxy GET /v1/attestation/report (near-phala-protocol.md §2): the signing_algo and
// request_nonce echoes, the key (ecdsa 64/65 bytes, ed25519 32 bytes, valid points),
// signing_address = the key's identity, and the quote binding (identity padded to 32 ‖ nonce) with
// the debug bit. A report without a quote (a gateway outside a TEE) is refused unless
// `allow_missing_quote`.
Result<VerifiedKey> verify_dstack_report(std::string_view json, Algo algo, const AttestationNonce& nonce,
                                         bool allow_missing_quote);

// NEAR AI GET /v1/attestation/report?model= (near-phala-protocol.md §10.3): the key of an entry of
// model_attestations for `model` (a direct proxy's flat report is read the same way), each entry
// checked as a dstack report whose echoes are optional; the first entry that passes is used.
Result<VerifiedKey> verify_nearai_report(std::string_view json, std::string_view model, Algo algo,
                                         const AttestationNonce& nonce, bool allow_missing_quote);

}  // namespace e2ee::proxy::field

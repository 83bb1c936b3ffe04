#pragma once
// Known-answer hook of the field envelopes: seal with a caller-chosen ephemeral secret and
// nonce, so that tests can reproduce the specs' vectors byte for byte
// (near-phala-protocol.md §12, venice-protocol.md §4.4). Never for production: a fixed
// ephemeral secret or a repeated nonce under one key destroys confidentiality.

#include <string>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "protocol/field/envelope.hpp"

namespace e2ee::protocol::field::detail {

// `ephemeral_private`: a 32-byte secp256k1 scalar (ecdsa) or X25519 private key (the others);
// `nonce`: 12 bytes (ecdsa, ed25519_aes_gcm) or 24 bytes (ed25519_box, ed25519_xchacha).
Result<std::string> seal_hex_with(Scheme scheme, const PeerKey& recipient, ByteView ephemeral_private, ByteView nonce,
                                  ByteView plaintext, ByteView aad = {});

}  // namespace e2ee::protocol::field::detail

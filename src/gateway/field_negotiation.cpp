#include "gateway/field_negotiation.hpp"

#include <boost/json.hpp>
#include <charconv>

#include "common/encoding.hpp"
#include "crypto/hash.hpp"

namespace e2ee::gateway {

namespace field = protocol::field;

namespace {

std::string lower(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string header(const http::Headers& h, std::string_view name) { return std::string(trim(h.get(name).value_or(""))); }

FieldError error(std::string type, std::string message, int status = 400) { return FieldError{status, std::move(type), std::move(message)}; }

bool is_hex(std::string_view s) {
  if (s.substr(0, 2) == "0x" || s.substr(0, 2) == "0X") s.remove_prefix(2);
  return !s.empty() && hex_decode(s).has_value();
}

// What dstack's model-key normalisation accepts: 64 bytes, or 65 bytes starting 04.
bool ecdsa_key_length_ok(std::string_view hex) {
  if (hex.substr(0, 2) == "0x" || hex.substr(0, 2) == "0X") hex.remove_prefix(2);
  auto bytes = hex_decode(hex);
  return bytes && (bytes->size() == 64 || (bytes->size() == 65 && (*bytes)[0] == 0x04));
}

// Keys compare by their raw form (ecdsa: X‖Y whatever the encoding sent).
bool same_key(const field::PeerKey& claimed, const field::KeyPair& ours) { return claimed.public_raw() == ours.public_raw(); }

}  // namespace

std::string checksum_address(const std::array<std::uint8_t, 20>& address) {
  const std::string hex = hex_encode(address);
  const auto hash = crypto::keccak256(as_bytes(hex));
  std::string out = "0x";
  for (std::size_t i = 0; i < hex.size(); ++i) {
    const int nibble = (i % 2 == 0) ? (hash[i / 2] >> 4) : (hash[i / 2] & 15);
    out += (nibble >= 8) ? static_cast<char>(std::toupper(static_cast<unsigned char>(hex[i]))) : hex[i];
  }
  return out;
}

FieldError request_open_error(const Error& e) {
  if (e.code == Errc::authentication_failed) return error("e2ee_decryption_failed", "Decryption failed");
  // protocol/field reports a short envelope as Errc::malformed "…: envelope too short: N bytes, minimum M".
  if (e.code == Errc::malformed && e.message.find("envelope too short") != std::string::npos)
    return error("e2ee_decryption_failed", "Encrypted payload is too short (" + e.message + ")");
  return error("invalid_e2ee_request", "invalid E2EE request: " + e.message);
}

std::string field_error_json(const FieldError& e) {
  return boost::json::serialize(boost::json::object{
      {"error", boost::json::object{{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}}}});
}

std::variant<std::monostate, FieldSession, FieldError> negotiate_field_e2ee(const http::Headers& h, const FieldKeys& keys,
                                                                            std::chrono::seconds window,
                                                                            std::chrono::system_clock::time_point now) {
  // ---- Venice ---------------------------------------------------------------------------------
  const std::string v_client = header(h, "X-Venice-TEE-Client-Pub-Key");
  const std::string v_model = header(h, "X-Venice-TEE-Model-Pub-Key");
  const std::string v_algo = header(h, "X-Venice-TEE-Signing-Algo");
  if (!v_client.empty() || !v_model.empty() || !v_algo.empty()) {
    if (v_client.empty() || v_model.empty())
      return error("e2ee_header_missing", "E2EE requires X-Venice-TEE-Client-Pub-Key and X-Venice-TEE-Model-Pub-Key headers");
    if (!v_algo.empty() && lower(v_algo) != "ecdsa")
      return error("e2ee_invalid_signing_algo", "Venice E2EE uses X-Venice-TEE-Signing-Algo: ecdsa");
    // Venice requires the 65-byte uncompressed form (130 hex, 04…) for the client key.
    if (v_client.size() != 130 || v_client.substr(0, 2) != "04") return error("e2ee_invalid_public_key", "Invalid public key");
    auto client = field::PeerKey::parse_hex(field::Algo::ecdsa, v_client);
    if (!client) return error("e2ee_invalid_public_key", "Invalid public key");
    auto model = field::PeerKey::parse_hex(field::Algo::ecdsa, v_model);
    if (!model) return error("e2ee_invalid_public_key", "Invalid model public key");
    if (!same_key(*model, keys.ecdsa))
      return error("e2ee_model_key_mismatch", "X-Venice-TEE-Model-Pub-Key is not this instance's key; fetch a fresh attestation");
    FieldSession s{FieldFamily::venice, field::Algo::ecdsa, {field::Scheme::ecdsa}, {}, *client, 1, false};
    s.policy.scheme = field::Scheme::ecdsa;
    return s;
  }

  // ---- dstack / NEAR --------------------------------------------------------------------------
  const std::string algo_header = header(h, "X-Signing-Algo");
  const std::string client_hex = header(h, "X-Client-Pub-Key");
  const std::string model_hex = header(h, "X-Model-Pub-Key");
  if (algo_header.empty() && client_hex.empty() && model_hex.empty()) return std::monostate{};
  if (algo_header.empty() || client_hex.empty() || model_hex.empty())
    return error("e2ee_header_missing", "E2EE requires X-Signing-Algo, X-Client-Pub-Key, and X-Model-Pub-Key headers");
  const std::string algo_name = lower(algo_header);
  if (algo_name != "ecdsa" && algo_name != "ed25519")
    return error("e2ee_invalid_signing_algo", "X-Signing-Algo must be ecdsa or ed25519");
  const field::Algo algo = algo_name == "ecdsa" ? field::Algo::ecdsa : field::Algo::ed25519;
  if (!is_hex(client_hex) || !is_hex(model_hex))
    return error("e2ee_invalid_public_key", "X-Client-Pub-Key and X-Model-Pub-Key must be hex-encoded");
  // Validated here, up front: an unusable client key must never get as far as a response.
  auto client = field::PeerKey::parse_hex(algo, client_hex);
  if (!client) return error("e2ee_invalid_public_key", "X-Client-Pub-Key is not a valid " + algo_name + " public key");

  const std::string near_version = header(h, "X-Encryption-Version");
  // NEAR's own headers make it NEAR; X-Encrypt-All-Fields alone does only when none of dstack's
  // headers is there (a dstack client may ask for the all-fields coverage too, and keeps its wire).
  const bool dstack_headers =
      !header(h, "X-E2EE-Version").empty() || !header(h, "X-E2EE-Nonce").empty() || !header(h, "X-E2EE-Timestamp").empty();
  const bool near = !near_version.empty() || (!header(h, "X-Encrypt-All-Fields").empty() && !dstack_headers);
  if (!near && algo == field::Algo::ecdsa && !ecdsa_key_length_ok(model_hex))
    // dstack normalises the model key to 65 bytes before comparing; another length is a ValueError
    // there, reported as invalid_e2ee_request (near-phala-protocol.md §3 step 5, §9).
    return error("invalid_e2ee_request", "X-Model-Pub-Key must be 64 bytes (X||Y) or 65 bytes starting 04");
  auto model = field::PeerKey::parse_hex(algo, model_hex);
  const field::KeyPair& ours = algo == field::Algo::ecdsa ? keys.ecdsa : keys.ed25519;
  if (!model || !same_key(*model, ours)) {
    if (near)
      return error("provider_error", "The encryption key is no longer valid. Please refresh your attestation report and retry.", 421);
    return error("e2ee_model_key_mismatch", "X-Model-Pub-Key does not match this instance's " + algo_name + " key");
  }

  FieldSession s{near ? FieldFamily::near : FieldFamily::dstack, algo, {}, {}, *client, 1, !near};
  s.policy.all_fields = lower(header(h, "X-Encrypt-All-Fields")) == "true";

  const std::string version = header(h, "X-E2EE-Version");
  if (!version.empty() && version != "1" && version != "2") return error("e2ee_invalid_version", "X-E2EE-Version must be 1 or 2");
  if (!near_version.empty() && near_version != "1" && near_version != "2")
    return error("e2ee_invalid_version", "X-Encryption-Version must be 1 or 2");
  const std::string nonce = header(h, "X-E2EE-Nonce");
  const std::string timestamp = header(h, "X-E2EE-Timestamp");
  if (nonce.empty() != timestamp.empty())
    return error("e2ee_header_missing", "X-E2EE-Nonce and X-E2EE-Timestamp must be provided together");

  // dstack v2: the explicit version, or nonce and timestamp present (the reference's rule).
  if (version == "2" || !nonce.empty()) {
    if (nonce.empty()) return error("e2ee_header_missing", "E2EE v2 requires X-E2EE-Nonce and X-E2EE-Timestamp headers");
    if (nonce.size() < 16) return error("e2ee_invalid_nonce", "X-E2EE-Nonce must be at least 16 characters");
    std::int64_t ts = 0;
    std::string_view digits = timestamp;
    if (!digits.empty() && (digits.front() == '+')) digits.remove_prefix(1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ts);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty())
      return error("e2ee_invalid_timestamp", "X-E2EE-Timestamp must be an integer (unix seconds)");
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    // Compared without subtracting: now - ts overflows for timestamps near the int64 limits.
    if (ts < now_s - window.count() || ts > now_s + window.count())
      return error("e2ee_invalid_timestamp", "X-E2EE-Timestamp is outside the allowed replay window");
    s.policy.v2 = field::V2Context{nonce, ts};
    s.version = 2;
  }

  if (algo == field::Algo::ecdsa) {
    s.schemes = {field::Scheme::ecdsa};
  } else if (near_version == "2") {
    s.schemes = {field::Scheme::ed25519_xchacha};
    s.version = 2;
  } else if (near_version == "1") {
    s.schemes = {field::Scheme::ed25519_box};
  } else if (s.version == 2 || near) {
    s.schemes = {near ? field::Scheme::ed25519_box : field::Scheme::ed25519_aes_gcm};
  } else {
    // No version header at all: dstack v1 and NEAR v1 look the same on the wire but not inside.
    s.schemes = {field::Scheme::ed25519_aes_gcm, field::Scheme::ed25519_box};
  }
  s.policy.scheme = s.schemes.front();
  // dstack's v2 nonce/timestamp binding exists only for AEAD envelopes; NaCl box (NEAR v1) has no
  // AAD to carry it, so the combination is refused here rather than failing later, unexplained.
  if (s.policy.v2 && s.policy.scheme == field::Scheme::ed25519_box)
    return error("e2ee_invalid_version", "X-E2EE-Nonce/X-E2EE-Timestamp (dstack v2) cannot be combined with NEAR's v1 NaCl box envelopes");
  return s;
}

}  // namespace e2ee::gateway

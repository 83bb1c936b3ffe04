#include "proxy/field/attestation.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <optional>

#include "common/encoding.hpp"
#include "crypto/hash.hpp"
#include "crypto/random.hpp"
#include "proxy/field/tdx_quote.hpp"

namespace e2ee::proxy::field {

namespace json = boost::json;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view strip_0x(std::string_view s) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  return s;
}

// Hex compared the way the references do: case-insensitive, "0x" optional.
bool same_hex(std::string_view a, std::string_view b) { return lower(strip_0x(a)) == lower(strip_0x(b)); }

std::optional<std::string_view> string_member(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v != nullptr && v->is_string()) return std::string_view(v->as_string());
  return std::nullopt;
}

// A non-empty string member, or nullopt (absent, null, "" or not a string).
std::optional<std::string_view> text_member(const json::object& o, std::string_view key) {
  auto s = string_member(o, key);
  if (s && s->empty()) return std::nullopt;
  return s;
}

Error refused(std::string_view who, std::string reason) {
  return make_error(Errc::invalid_key, std::string(who) + " attestation refused: " + std::move(reason));
}

Result<json::object> parse_object(std::string_view text, std::string_view who) {
  json::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return refused(who, "the report is not a JSON object");
  return std::move(doc.as_object());
}

// A report's key text → a validated key. `uncompressed_only` (Venice): 128 or 130 hex characters.
Result<PeerKey> parse_key(std::string_view text, Algo algo, bool uncompressed_only, std::string_view who) {
  const std::string_view hex = strip_0x(text);
  if (uncompressed_only && !(hex.size() == 128 || (hex.size() == 130 && hex.substr(0, 2) == "04")))
    return refused(who, "the model key is not an uncompressed secp256k1 key (" + std::to_string(hex.size()) + " hex characters)");
  auto key = PeerKey::parse_hex(algo, hex);
  if (!key) return refused(who, "the model key is not a valid " + std::string(protocol::field::algo_name(algo)) + " public key (" + key.error().message + ")");
  return std::move(*key);
}

// The identity as reports write signing_address: 0x-address (ecdsa) or key hex (ed25519).
std::string identity_text(Algo algo, ByteView identity) {
  return algo == Algo::ecdsa ? "0x" + hex_encode(identity) : hex_encode(identity);
}

// One dstack-shaped report (a dstack report, or one NEAR model attestation).
struct EntryRules {
  bool require_echoes = true;  // signing_algo and request_nonce must be present (dstack)
  bool allow_missing_quote = false;
};

Result<VerifiedKey> verify_dstack_entry(const json::object& o, Algo algo, const AttestationNonce& nonce,
                                        const EntryRules& rules, std::string_view who) {
  const std::string algo_name(protocol::field::algo_name(algo));
  if (auto echoed = text_member(o, "signing_algo")) {
    if (lower(*echoed) != algo_name) return refused(who, "the report is for signing_algo '" + std::string(echoed->substr(0, 20)) + "', not '" + algo_name + "'");
  } else if (rules.require_echoes) {
    return refused(who, "the report does not echo signing_algo");
  }
  if (auto echoed = text_member(o, "request_nonce")) {
    if (!same_hex(*echoed, nonce.hex())) return refused(who, "the report's request_nonce is not the nonce we sent (a replayed or foreign report)");
  } else if (rules.require_echoes) {
    return refused(who, "the report does not echo request_nonce");
  }
  const auto key_text = text_member(o, "signing_public_key");
  if (!key_text) return refused(who, "the report carries no signing_public_key");
  auto key = parse_key(*key_text, algo, false, who);
  if (!key) return std::move(key).error();
  const Bytes identity = key_identity(*key);
  if (auto address = text_member(o, "signing_address")) {
    if (!same_hex(*address, hex_encode(identity)))
      return refused(who, "signing_address " + std::string(address->substr(0, 80)) + " is not the identity of signing_public_key (" +
                              identity_text(algo, identity) + ")");
  }
  auto quote = text_member(o, "intel_quote");
  if (!quote) quote = text_member(o, "quote");
  bool quote_checked = false;
  if (quote) {
    if (auto bound = check_quote_binding(*quote, identity, nonce.bytes, NonceBinding::raw); !bound)
      return refused(who, bound.error().message);
    quote_checked = true;
  } else if (!rules.allow_missing_quote) {
    return refused(who, "the report carries no TDX quote, so nothing ties the key to a TEE (start the proxy with "
                        "--allow-missing-quote only for a gateway you run yourself outside a TEE)");
  }
  return VerifiedKey{std::move(*key), std::string(strip_0x(*key_text)), identity_text(algo, identity), quote_checked};
}

// Venice reports its bindings as {"bound": bool, …} or as plain booleans (venice-protocol.md §2.2).
std::optional<bool> binding_flag(const json::object& sv, std::string_view key) {
  const auto* v = sv.if_contains(key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (v->is_bool()) return v->as_bool();
  if (v->is_object()) {
    if (const auto* b = v->as_object().if_contains("bound"); b != nullptr && b->is_bool()) return b->as_bool();
    return false;  // an object without a boolean "bound" asserts nothing
  }
  return false;
}

std::string reported_error(const json::object& part) {
  if (auto e = text_member(part, "error")) return " (" + std::string(e->substr(0, 200)) + ")";
  return {};
}

}  // namespace

AttestationNonce AttestationNonce::random() {
  AttestationNonce n;
  crypto::random_bytes(n.bytes);
  return n;
}

std::string AttestationNonce::hex() const { return hex_encode(bytes); }

Bytes key_identity(const PeerKey& key) {
  const Bytes raw = key.public_raw();
  if (key.algo() == Algo::ed25519) return raw;
  const auto digest = crypto::keccak256(raw);
  return Bytes(digest.begin() + 12, digest.end());
}

Status check_report_data(ByteView report_data, ByteView identity, ByteView nonce, NonceBinding binding) {
  if (report_data.size() != 64) return make_error(Errc::malformed, "REPORTDATA is not 64 bytes");
  if (identity.size() > 32 || nonce.size() != 32) return make_error(Errc::invalid_argument, "bad identity or nonce size");
  if (!std::equal(identity.begin(), identity.end(), report_data.begin()))
    return make_error(Errc::invalid_key, "REPORTDATA does not hold the model key's identity (" +
                                             hex_encode(report_data.first(identity.size())) + " instead of " + hex_encode(identity) +
                                             "): the key is not the one the TEE attested");
  if (!std::all_of(report_data.begin() + static_cast<std::ptrdiff_t>(identity.size()), report_data.begin() + 32,
                   [](std::uint8_t b) { return b == 0; }))
    return make_error(Errc::invalid_key, "REPORTDATA's padding after the key identity is not zero");
  const ByteView bound = report_data.subspan(32, 32);
  if (std::equal(nonce.begin(), nonce.end(), bound.begin())) return {};
  if (binding == NonceBinding::raw_or_sha256) {
    const auto hashed = crypto::sha256(nonce);
    if (std::equal(hashed.begin(), hashed.end(), bound.begin())) return {};
  }
  return make_error(Errc::invalid_key, "REPORTDATA does not contain the nonce we sent: the report is not fresh");
}

Status check_quote_binding(std::string_view quote_text, ByteView identity, ByteView nonce, NonceBinding binding) {
  auto bytes = decode_quote_text(quote_text);
  if (!bytes) return std::move(bytes).error();
  auto quote = parse_tdx_quote(*bytes);
  if (!quote) return std::move(quote).error();
  if (quote->debug()) return make_error(Errc::invalid_key, "the TDX quote comes from a TD in debug mode, whose memory the host can read");
  return check_report_data(quote->report_data, identity, nonce, binding);
}

Result<VerifiedKey> verify_venice_report(std::string_view text, std::string_view model, const AttestationNonce& nonce,
                                         bool allow_missing_quote) {
  constexpr std::string_view who = "Venice";
  auto parsed = parse_object(text, who);
  if (!parsed) return std::move(parsed).error();
  const json::object& o = *parsed;
  const auto quote = text_member(o, "intel_quote");
  // A self-hosted gateway outside a TEE has no quote, so neither it nor anyone can verify one:
  // with the override only the checks that do not need a quote (2-4, 8) apply.
  const bool without_quote = !quote && allow_missing_quote;

  // 1. Venice's own verdict.
  const auto* verified = o.if_contains("verified");
  if (!without_quote && (verified == nullptr || !verified->is_bool() || !verified->as_bool()))
    return refused(who, "Venice does not report the attestation as verified");
  // 2. The nonce echo.
  const auto echoed = text_member(o, "nonce");
  if (!echoed) return refused(who, "the report does not echo our nonce");
  if (!same_hex(*echoed, nonce.hex())) return refused(who, "the report's nonce is not the nonce we sent (a replayed or foreign report)");
  // 3. The model.
  const auto reported_model = string_member(o, "model");
  if (!reported_model || *reported_model != model)
    return refused(who, "the report is for model '" + std::string(reported_model.value_or("").substr(0, 200)) + "', not '" +
                            std::string(model) + "'");
  // 4. The key: signing_key, else its live alias signing_public_key.
  auto key_text = text_member(o, "signing_key");
  if (!key_text) key_text = text_member(o, "signing_public_key");
  if (!key_text) return refused(who, "the report carries no model key (signing_key / signing_public_key)");
  auto key = parse_key(*key_text, Algo::ecdsa, true, who);
  if (!key) return std::move(key).error();
  const Bytes address = key_identity(*key);
  // 8. signing_address, when given, is the key's address.
  if (auto reported = text_member(o, "signing_address"); reported && !same_hex(*reported, hex_encode(address)))
    return refused(who, "signing_address " + std::string(reported->substr(0, 80)) + " is not the address of the model key (0x" +
                            hex_encode(address) + ")");
  if (without_quote) return VerifiedKey{std::move(*key), std::string(strip_0x(*key_text)), "0x" + hex_encode(address), false};
  // 5–7. The quote: TDX, not debug, REPORTDATA = address ‖ 12 zeros ‖ nonce or SHA-256(nonce).
  if (!quote)
    return refused(who, "the report carries no intel_quote, so nothing ties the key to a TEE (start the proxy with "
                        "--allow-missing-quote only for a gateway you run yourself outside a TEE)");
  if (auto bound = check_quote_binding(*quote, address, nonce.bytes, NonceBinding::raw_or_sha256); !bound)
    return refused(who, bound.error().message);
  // 9. Venice's server-side verification must agree with ours.
  const auto* sv_value = o.if_contains("server_verification");
  if (sv_value == nullptr || !sv_value->is_object()) return refused(who, "the report carries no server_verification");
  const json::object& sv = sv_value->as_object();
  const auto* tdx = sv.if_contains("tdx");
  if (tdx == nullptr || !tdx->is_object()) return refused(who, "server_verification has no TDX result for the quote");
  const json::object& tdx_o = tdx->as_object();
  const auto* tdx_valid = tdx_o.if_contains("valid");
  if (tdx_valid == nullptr || !tdx_valid->is_bool() || !tdx_valid->as_bool())
    return refused(who, "Venice's own TDX verification failed" + reported_error(tdx_o));
  for (const char* flag : {"signatureValid", "certificateChainValid", "attestationKeyMatch"}) {
    if (const auto* f = tdx_o.if_contains(flag); f != nullptr && f->is_bool() && !f->as_bool())
      return refused(who, std::string("Venice reports TDX ") + flag + " = false");
  }
  const auto* nvidia = sv.if_contains("nvidia");
  const bool has_gpu_payload = text_member(o, "nvidia_payload").has_value();
  if (nvidia != nullptr && nvidia->is_object()) {
    const auto* valid = nvidia->as_object().if_contains("valid");
    if (valid == nullptr || !valid->is_bool() || !valid->as_bool())
      return refused(who, "Venice's own NVIDIA verification failed" + reported_error(nvidia->as_object()));
  } else if (has_gpu_payload) {
    return refused(who, "the report has a GPU payload but server_verification has no NVIDIA result");
  }
  const auto nonce_bound = binding_flag(sv, "nonceBinding");
  if (!nonce_bound || !*nonce_bound) return refused(who, "Venice's server_verification does not report the nonce as bound");
  if (auto address_bound = binding_flag(sv, "signingAddressBinding"); address_bound && !*address_bound)
    return refused(who, "Venice's server_verification reports the signing address as not bound");
  return VerifiedKey{std::move(*key), std::string(strip_0x(*key_text)), "0x" + hex_encode(address), true};
}

Result<VerifiedKey> verify_dstack_report(std::string_view text, Algo algo, const AttestationNonce& nonce,
                                         bool allow_missing_quote) {
  constexpr std::string_view who = "dstack";
  auto parsed = parse_object(text, who);
  if (!parsed) return std::move(parsed).error();
  return verify_dstack_entry(*parsed, algo, nonce, EntryRules{true, allow_missing_quote}, who);
}

Result<VerifiedKey> verify_nearai_report(std::string_view text, std::string_view model, Algo algo,
                                         const AttestationNonce& nonce, bool allow_missing_quote) {
  constexpr std::string_view who = "NEAR AI";
  auto parsed = parse_object(text, who);
  if (!parsed) return std::move(parsed).error();
  const json::object& o = *parsed;
  const EntryRules rules{false, allow_missing_quote};

  const auto* entries = o.if_contains("model_attestations");
  if (entries == nullptr || !entries->is_array()) {
    // A model's own proxy answers with one flat (dstack-shaped) report.
    if (!text_member(o, "signing_public_key")) return refused(who, "the report has neither model_attestations nor a signing_public_key");
    return verify_dstack_entry(o, algo, nonce, rules, who);
  }
  // Several nodes may serve the model; the gateway routes by X-Model-Pub-Key, so any verified
  // node's key is usable. Entries naming another model are skipped.
  std::optional<Error> first_failure;
  std::size_t candidates = 0;
  for (const auto& entry : entries->as_array()) {
    if (!entry.is_object()) continue;
    const json::object& e = entry.as_object();
    auto named = text_member(e, "model_name");
    if (!named) named = text_member(e, "model");
    if (named && *named != model) continue;
    ++candidates;
    auto verified = verify_dstack_entry(e, algo, nonce, rules, who);
    if (verified) return verified;
    if (!first_failure) first_failure = std::move(verified).error();
  }
  if (candidates == 0) return refused(who, "the report has no model attestation for '" + std::string(model) + "'");
  if (candidates == 1) return std::move(*first_failure);
  return make_error(first_failure->code, first_failure->message + " (and " + std::to_string(candidates - 1) + " other node(s) failed too)");
}

}  // namespace e2ee::proxy::field

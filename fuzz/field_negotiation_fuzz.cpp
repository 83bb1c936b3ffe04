// Field-E2EE header negotiation at the gateway (src/gateway/field_negotiation.cpp): which family,
// keys, scheme and replay context a request asks for, from headers anyone can send.
//
// Input: header lines "name:value" (split at the first ':'; at most 64). The gateway's keys are
// the fixed field keys; "now" is 1700000000 and the replay window 300 s.
// Checks: no E2EE header (non-blank) means a plain request; an error has status 400 or 421, a
// reference type and a message, and its JSON body parses; a session is consistent: its schemes
// are non-empty, of its algorithm, policy.scheme is the first; version 1 or 2; v2 (and only
// then a v2 policy) carries the nonce header (≥ 16 characters) and a timestamp inside the
// window; the client key is the one the header names.

#include <array>

#include "common/encoding.hpp"
#include "fuzz_keys.hpp"
#include "fuzz_support.hpp"
#include "gateway/field_negotiation.hpp"

namespace {

namespace field = e2ee::protocol::field;
using e2ee::gateway::FieldError;
using e2ee::gateway::FieldSession;

constexpr std::int64_t kNow = 1700000000;
constexpr std::int64_t kWindow = 300;

const e2ee::gateway::FieldKeys& keys() {
  static const e2ee::gateway::FieldKeys k{e2ee::fuzz::fixed_field_key(field::Algo::ecdsa, 1),
                                          e2ee::fuzz::fixed_field_key(field::Algo::ed25519, 2)};
  return k;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string header(const e2ee::http::Headers& h, std::string_view name) { return std::string(trim(h.get(name).value_or(""))); }

void check_session(const FieldSession& s, const e2ee::http::Headers& h) {
  FUZZ_CHECK(!s.schemes.empty());
  for (const auto scheme : s.schemes) FUZZ_CHECK(field::algo_of(scheme) == s.algo);
  FUZZ_CHECK(s.policy.scheme == s.schemes.front());
  FUZZ_CHECK(s.client.algo() == s.algo);
  FUZZ_CHECK(s.version == 1 || s.version == 2);
  if (s.policy.v2) {
    FUZZ_CHECK(s.version == 2);
    FUZZ_CHECK(s.policy.v2->nonce == header(h, "X-E2EE-Nonce") && s.policy.v2->nonce.size() >= 16);
    const std::int64_t ts = s.policy.v2->timestamp;
    FUZZ_CHECK(ts >= kNow - kWindow && ts <= kNow + kWindow);
    FUZZ_CHECK(s.policy.scheme != field::Scheme::ed25519_box);  // no v2 AAD for the box
  }
  const bool venice = s.family == e2ee::gateway::FieldFamily::venice;
  std::string client_hex = header(h, venice ? "X-Venice-TEE-Client-Pub-Key" : "X-Client-Pub-Key");
  if (client_hex.size() >= 2 && client_hex[0] == '0' && (client_hex[1] == 'x' || client_hex[1] == 'X')) client_hex.erase(0, 2);
  const auto raw = e2ee::hex_decode(client_hex);
  FUZZ_CHECK(raw.has_value());
  const auto named = field::PeerKey::parse(s.algo, *raw);
  FUZZ_CHECK(named && *named == s.client);
}

void check_error(const FieldError& e) {
  FUZZ_CHECK(e.status == 400 || e.status == 421);
  FUZZ_CHECK(!e.type.empty() && !e.message.empty());
  const auto body = e2ee::fuzz::parse_json(e2ee::gateway::field_error_json(e));
  FUZZ_CHECK(body.has_value());
  const auto* error = e2ee::fuzz::member(*body, "error");
  FUZZ_CHECK(error != nullptr && e2ee::fuzz::member(*error, "type") != nullptr);
}

constexpr std::array<std::string_view, 6> kSwitches{"X-Venice-TEE-Client-Pub-Key", "X-Venice-TEE-Model-Pub-Key",
                                                    "X-Venice-TEE-Signing-Algo", "X-Signing-Algo", "X-Client-Pub-Key",
                                                    "X-Model-Pub-Key"};

// Seeds (scripts/fuzz --seeds): the header sets of tests/gateway/field_negotiation_test.cpp,
// naming the fixed keys.
void write_seeds() {
  const auto client_ec = e2ee::fuzz::fixed_field_key(field::Algo::ecdsa, 7);
  const auto client_ed = e2ee::fuzz::fixed_field_key(field::Algo::ed25519, 8);
  const std::string model_ec = e2ee::hex_encode(keys().ecdsa.public_raw());
  const std::string model_ed = e2ee::hex_encode(keys().ed25519.public_raw());
  const std::string ec = e2ee::hex_encode(client_ec.public_raw());
  const std::string ed = e2ee::hex_encode(client_ed.public_raw());
  const std::string v2 = "X-E2EE-Nonce: nonce1234567890123\nX-E2EE-Timestamp: 1700000100\n";
  const std::string dstack_ec = "X-Signing-Algo: ecdsa\nX-Client-Pub-Key: " + ec + "\nX-Model-Pub-Key: " + model_ec + "\n";
  const std::string dstack_ed = "X-Signing-Algo: ed25519\nX-Client-Pub-Key: " + ed + "\nX-Model-Pub-Key: " + model_ed + "\n";
  for (const std::string& seed : std::initializer_list<std::string>{
           dstack_ec, dstack_ed, dstack_ec + v2, dstack_ed + v2, dstack_ec + "X-E2EE-Version: 2\n" + v2,
           dstack_ed + "X-Encryption-Version: 2\n", dstack_ed + "X-Encryption-Version: 1\nX-Encrypt-All-Fields: true\n",
           dstack_ec + "X-Encrypt-All-Fields: true\n" + v2, dstack_ed + "X-E2EE-Version: 3\n",
           dstack_ec + "X-E2EE-Nonce: short-nonce1234\nX-E2EE-Timestamp: 1700000000\n",
           dstack_ec + "X-E2EE-Nonce: nonce1234567890123\nX-E2EE-Timestamp: 1699999699\n",
           "X-Venice-TEE-Client-Pub-Key: 04" + ec + "\nX-Venice-TEE-Model-Pub-Key: 04" + model_ec +
               "\nX-Venice-TEE-Signing-Algo: ecdsa\n",
           "X-Venice-TEE-Client-Pub-Key: " + ec + "\n", std::string("Content-Type: application/json\nX-E2EE-Version: 2\n")}) {
    e2ee::fuzz::emit_seed(seed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (static const bool once = e2ee::fuzz::seeds_wanted(); once) {
    static const bool written = (write_seeds(), true);
    (void)written;
  }
  e2ee::http::Headers headers;
  const auto lines = e2ee::fuzz::lines_of(e2ee::fuzz::text_of(data, size));
  for (std::size_t i = 0; i < lines.size() && i < 64; ++i) {
    const auto colon = lines[i].find(':');
    headers.add(lines[i].substr(0, colon), colon == std::string_view::npos ? std::string_view{} : lines[i].substr(colon + 1));
  }
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(kNow));
  const auto result = e2ee::gateway::negotiate_field_e2ee(headers, keys(), std::chrono::seconds(kWindow), now);

  bool any_switch = false;
  for (const auto name : kSwitches) any_switch = any_switch || !header(headers, name).empty();
  if (std::holds_alternative<std::monostate>(result)) FUZZ_CHECK(!any_switch);
  if (const auto* s = std::get_if<FieldSession>(&result)) {
    FUZZ_CHECK(any_switch);
    check_session(*s, headers);
  }
  if (const auto* e = std::get_if<FieldError>(&result)) {
    FUZZ_CHECK(any_switch);
    check_error(*e);
  }
  return 0;
}

// Field-level E2EE of whole chat bodies (src/protocol/field/fields.cpp): the gateway decrypts
// request bodies from the internet, the proxy decrypts response bodies and stream chunks.
//
// Input: mode byte, then a JSON body. Mode bits: operation = mode & 3, scheme = (mode >> 2) & 3
// (ecdsa, ed25519_aes_gcm, ed25519_box, ed25519_xchacha), 16 = dstack v2 AAD, 32 = all_fields,
// 64 = arrays_as_json, 128 = reasoning_field. Operations:
//   0  decrypt_request of the body (gateway)
//   1  decrypt_response of the body (proxy)
//   2  encrypt_request, then decrypt_request of what it produced
//   3  ResponseSealer::encrypt, then decrypt_response of what it produced
// Checks: errors carry the documented codes; what decrypts is valid JSON; a body our client
// encrypted is always accepted by our gateway and comes back as the same JSON (but for the
// documented conversions: a content string holding a JSON array becomes the array; without
// all_fields a history reasoning/audio string that looks like an envelope must open), and a
// response our gateway encrypted is accepted by our client and comes back the same (but for
// a dropped delta.content ""); every content string the client sends is an envelope. A body
// whose numbers Boost.JSON cannot read (exponent beyond int range, which RFC 8259 allows) has no
// oracle: it must still seal, open and stay valid JSON.

#include <boost/json.hpp>

#include "common/json_text.hpp"
#include "fuzz_keys.hpp"
#include "fuzz_support.hpp"
#include "protocol/field/envelope.hpp"
#include "protocol/field/fields.hpp"

namespace {

namespace field = e2ee::protocol::field;
namespace json = boost::json;
using e2ee::Errc;
using field::Algo;
using field::Scheme;

const field::KeyPair& own(Algo algo) {
  static const field::KeyPair ecdsa = e2ee::fuzz::fixed_field_key(Algo::ecdsa, 1);
  static const field::KeyPair ed25519 = e2ee::fuzz::fixed_field_key(Algo::ed25519, 2);
  return algo == Algo::ecdsa ? ecdsa : ed25519;
}

field::FieldPolicy policy_of(std::uint8_t mode) {
  field::FieldPolicy p;
  p.scheme = static_cast<Scheme>((mode >> 2) & 3);
  if ((mode & 16) != 0) p.v2 = field::V2Context{"fuzz-nonce-0123456789", 1700000000};
  p.all_fields = (mode & 32) != 0;
  p.arrays_as_json = (mode & 64) != 0;
  p.reasoning_field = (mode & 128) != 0;
  return p;
}

// Equal as JSON, compared in serialised form: Boost.JSON reads some numbers (0e40010) as NaN,
// which is unequal to itself.
bool same_json(const json::value& a, const json::value& b) { return json::serialize(a) == json::serialize(b); }

void check_error(const e2ee::Error& e) {
  FUZZ_CHECK_MSG(e.code == Errc::invalid_argument || e.code == Errc::malformed || e.code == Errc::invalid_key ||
                     e.code == Errc::authentication_failed || e.code == Errc::limit_exceeded,
                 e.message);
}

json::array* messages_of(json::value& body) {
  auto* o = body.if_object();
  if (o == nullptr) return nullptr;
  auto* m = o->if_contains("messages");
  return m == nullptr ? nullptr : m->if_array();
}

bool is_json_array_text(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\n\r");
  return e2ee::json_text::validate(s, 256).has_value() && first != std::string_view::npos && s[first] == '[';
}

// A history field the gateway reads even when the client did not encrypt it (fields.hpp): one
// that looks like an envelope must open, so a plaintext one of that shape cannot round-trip.
bool has_envelope_like_history(const json::value& body, Scheme scheme) {
  auto looks = [&](const json::value* v) { return v != nullptr && v->is_string() && field::looks_like_envelope(scheme, v->get_string()); };
  const auto* list = e2ee::fuzz::member(body, "messages");
  if (list == nullptr || !list->is_array()) return false;
  for (const auto& m : list->get_array()) {
    if (looks(e2ee::fuzz::member(m, "reasoning_content")) || looks(e2ee::fuzz::member(m, "reasoning"))) return true;
    if (const auto* audio = e2ee::fuzz::member(m, "audio"); audio != nullptr && looks(e2ee::fuzz::member(*audio, "data")))
      return true;
  }
  return false;
}

void request_round_trip(std::uint8_t mode, std::string_view body) {
  const auto policy = policy_of(mode);
  const field::KeyPair& model_key = own(field::algo_of(policy.scheme));
  const auto sealed = field::encrypt_request(body, policy, e2ee::fuzz::public_of(model_key));
  if (!sealed) {
    check_error(sealed.error());
    return;
  }
  FUZZ_CHECK(e2ee::json_text::validate(*sealed).has_value());
  e2ee::fuzz::emit_seed(static_cast<std::uint8_t>(mode & ~3), *sealed);

  const auto opened = field::decrypt_request(*sealed, policy, model_key);
  auto original = e2ee::fuzz::parse_json(body);
  if (!original) {
    FUZZ_CHECK(e2ee::fuzz::exponent_beyond_boost(body));
    if (opened) FUZZ_CHECK(e2ee::json_text::validate(*opened).has_value());
    return;
  }
  if (!policy.all_fields && has_envelope_like_history(*original, policy.scheme)) return;
  FUZZ_CHECK_MSG(opened.has_value(), opened.error().message);

  // Content: what the client encrypted is gone; a string holding a JSON array comes back as the array.
  auto encrypted = e2ee::fuzz::parse_json(*sealed);
  FUZZ_CHECK(encrypted.has_value());
  if (auto* list = messages_of(*original)) {
    const auto* sealed_list = messages_of(*encrypted);
    FUZZ_CHECK(sealed_list != nullptr && sealed_list->size() == list->size());
    for (std::size_t i = 0; i < list->size(); ++i) {
      auto* content = (*list)[i].is_object() ? (*list)[i].get_object().if_contains("content") : nullptr;
      if (content == nullptr || !content->is_string()) continue;
      const auto* now = e2ee::fuzz::member((*sealed_list)[i], "content");
      FUZZ_CHECK(now != nullptr && now->is_string() && field::looks_like_envelope(policy.scheme, now->get_string()));
      if (!is_json_array_text(content->get_string())) continue;
      auto array = e2ee::fuzz::parse_json(content->get_string());
      if (!array) {  // no oracle for what the gateway makes of it
        FUZZ_CHECK(e2ee::fuzz::exponent_beyond_boost(content->get_string()));
        FUZZ_CHECK(e2ee::json_text::validate(*opened).has_value());
        return;
      }
      *content = std::move(*array);
    }
  }
  const auto back = e2ee::fuzz::parse_json(*opened);
  FUZZ_CHECK_MSG(back && same_json(*back, *original), *opened);
}

// delta.content "" is dropped by the gateway (vLLM's role-only first chunk).
void drop_empty_delta_content(json::value& body) {
  auto* o = body.if_object();
  json::value* choices = o == nullptr ? nullptr : o->if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return;
  for (auto& c : choices->get_array()) {
    auto* delta = c.is_object() ? c.get_object().if_contains("delta") : nullptr;
    if (delta == nullptr || !delta->is_object()) continue;
    const auto* content = delta->get_object().if_contains("content");
    if (content != nullptr && content->is_string() && content->get_string().empty()) delta->get_object().erase("content");
  }
}

void response_round_trip(std::uint8_t mode, std::string_view body, e2ee::fuzz::Rng& rng) {
  const auto policy = policy_of(mode);
  const field::KeyPair& client_key = own(field::algo_of(policy.scheme));
  field::ResponseSealer sealer(policy, e2ee::fuzz::public_of(client_key), rng.coin());
  const auto sealed = sealer.encrypt(body);
  if (!sealed) {
    check_error(sealed.error());
    return;
  }
  FUZZ_CHECK(e2ee::json_text::validate(*sealed).has_value());
  e2ee::fuzz::emit_seed(static_cast<std::uint8_t>((mode & ~3) | 1), *sealed);

  const auto opened = field::decrypt_response(*sealed, policy, client_key);
  FUZZ_CHECK_MSG(opened.has_value(), opened.error().message);
  auto original = e2ee::fuzz::parse_json(body);
  if (!original) {
    FUZZ_CHECK(e2ee::fuzz::exponent_beyond_boost(body));
    FUZZ_CHECK(e2ee::json_text::validate(*opened).has_value());
    return;
  }
  drop_empty_delta_content(*original);
  const auto back = e2ee::fuzz::parse_json(*opened);
  FUZZ_CHECK_MSG(back && same_json(*back, *original), *opened);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, body] = e2ee::fuzz::split_mode(data, size);
  e2ee::fuzz::Rng rng(e2ee::fuzz::text_of(data, size));
  const auto policy = policy_of(mode);
  switch (mode & 3) {
    case 0: {
      const auto opened = field::decrypt_request(body, policy, own(field::algo_of(policy.scheme)));
      if (opened) FUZZ_CHECK(e2ee::json_text::validate(*opened).has_value());
      else check_error(opened.error());
      break;
    }
    case 1: {
      const auto opened = field::decrypt_response(body, policy, own(field::algo_of(policy.scheme)));
      if (opened) FUZZ_CHECK(e2ee::json_text::validate(*opened).has_value());
      else check_error(opened.error());
      break;
    }
    case 2:
      request_round_trip(mode, body);
      break;
    default:
      response_round_trip(mode, body, rng);
      break;
  }
  return 0;
}

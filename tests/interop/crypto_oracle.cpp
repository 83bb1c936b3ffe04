// crypto_oracle: a test-only bridge that lets the Node interop tests (tests/interop/*.test.mjs)
// drive our crypto layer and compare its bytes with independent implementations (@noble/*,
// Node's OpenSSL). It uses only the public headers under src/crypto, so what it exercises is
// exactly what the protocols use.
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout, in order.
//   request:  {"op":"<name>", ...fields..., "id":<anything, echoed back>}
//   success:  {...result fields...}            (bytes are lower-case hex)
//   rejected: {"error":"<Errc name>","message":"..."}   (our library returned an Error)
//   misuse:   {"error":"oracle_usage","message":"..."}  (bad JSON, unknown op, missing field)
// The two error kinds are kept apart so that a test expecting our library to reject an input is
// never satisfied by a typo in the test itself. No input makes the process exit early: every
// line gets exactly one answer, so a test driver can pipeline thousands of commands.

#include <boost/json.hpp>

#include <array>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/bytes.hpp"
#include "common/encoding.hpp"
#include "common/result.hpp"
#include "crypto/aead.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/gzip.hpp"
#include "crypto/hash.hpp"
#include "crypto/hkdf.hpp"
#include "crypto/mlkem768.hpp"

namespace {

namespace json = boost::json;
using e2ee::Bytes;
using e2ee::ByteView;
using e2ee::Errc;
using e2ee::Result;

// A malformed command: the test driver's fault, not a property of the code under test.
struct UsageError {
  std::string message;
};

// Our library refused the input; carried to the reply as {"error": <Errc name>}.
struct Rejected {
  e2ee::Error error;
};

template <typename T>
T unwrap(Result<T> r) {
  if (!r) throw Rejected{std::move(r).error()};
  return std::move(r).value();
}

const json::value& field(const json::object& cmd, std::string_view name) {
  const json::value* v = cmd.if_contains(name);
  if (v == nullptr) throw UsageError{"missing field '" + std::string(name) + "'"};
  return *v;
}

Bytes hex_field(const json::object& cmd, std::string_view name) {
  const json::value& v = field(cmd, name);
  if (!v.is_string()) throw UsageError{"field '" + std::string(name) + "' is not a string"};
  std::optional<Bytes> b = e2ee::hex_decode(std::string_view(v.as_string()));
  if (!b) throw UsageError{"field '" + std::string(name) + "' is not hex"};
  return std::move(*b);
}

// An optional byte field defaults to empty (e.g. AEAD associated data).
Bytes hex_field_or_empty(const json::object& cmd, std::string_view name) {
  return cmd.contains(name) ? hex_field(cmd, name) : Bytes{};
}

// Fixed-extent parameters are enforced by the C++ types, so a wrong length here is a driver
// mistake and reported as usage, not as a library rejection.
template <std::size_t N>
std::array<std::uint8_t, N> fixed_field(const json::object& cmd, std::string_view name) {
  Bytes b = hex_field(cmd, name);
  if (b.size() != N) {
    throw UsageError{"field '" + std::string(name) + "' must be " + std::to_string(N) + " bytes"};
  }
  std::array<std::uint8_t, N> out{};
  std::copy(b.begin(), b.end(), out.begin());
  return out;
}

std::int64_t int_field(const json::object& cmd, std::string_view name) {
  const json::value& v = field(cmd, name);
  if (!v.is_int64() && !v.is_uint64()) throw UsageError{"field '" + std::string(name) + "' is not an integer"};
  return v.to_number<std::int64_t>();
}

std::string_view string_field(const json::object& cmd, std::string_view name) {
  const json::value& v = field(cmd, name);
  if (!v.is_string()) throw UsageError{"field '" + std::string(name) + "' is not a string"};
  return v.as_string();
}

json::string hex(ByteView b) { return json::string(e2ee::hex_encode(b)); }

e2ee::crypto::Aead aead_alg(const json::object& cmd) {
  std::string_view name = string_field(cmd, "alg");
  if (name == "chacha20_poly1305") return e2ee::crypto::Aead::chacha20_poly1305;
  if (name == "aes_gcm") return e2ee::crypto::Aead::aes_gcm;
  if (name == "xchacha20_poly1305") return e2ee::crypto::Aead::xchacha20_poly1305;
  throw UsageError{"unknown aead '" + std::string(name) + "'"};
}

namespace mlkem = e2ee::crypto::mlkem768;

json::object keypair_reply(const mlkem::DecapsulationKey& dk) {
  return {{"ek", hex(dk.encapsulation_key().bytes())}, {"dk", hex(dk.expanded_bytes())}};
}

// Decapsulation key from either "seed" (the from_seed path) or "dk" (the parse path), so the
// tests exercise both constructors in the operation that matters.
mlkem::DecapsulationKey decapsulation_key(const json::object& cmd) {
  if (cmd.contains("seed")) return unwrap(mlkem::DecapsulationKey::from_seed(hex_field(cmd, "seed")));
  return unwrap(mlkem::DecapsulationKey::parse(hex_field(cmd, "dk")));
}

json::object encapsulation_reply(const mlkem::Encapsulation& e) {
  return {{"ct", hex(e.ciphertext)}, {"k", hex(e.shared_secret.span())}};
}

using Handler = std::function<json::object(const json::object&)>;

const std::unordered_map<std::string_view, Handler>& handlers() {
  namespace c = e2ee::crypto;
  static const std::unordered_map<std::string_view, Handler> table = {
      // ML-KEM-768
      {"mlkem.keygen", [](const json::object&) { return keypair_reply(mlkem::DecapsulationKey::generate()); }},
      {"mlkem.from_seed",
       [](const json::object& cmd) {
         return keypair_reply(unwrap(mlkem::DecapsulationKey::from_seed(hex_field(cmd, "seed"))));
       }},
      {"mlkem.parse_dk",
       [](const json::object& cmd) {
         return keypair_reply(unwrap(mlkem::DecapsulationKey::parse(hex_field(cmd, "dk"))));
       }},
      {"mlkem.parse_ek",
       [](const json::object& cmd) {
         auto ek = unwrap(mlkem::EncapsulationKey::parse(hex_field(cmd, "ek")));
         return json::object{{"ek", hex(ek.bytes())}};
       }},
      {"mlkem.encaps_derand",
       [](const json::object& cmd) {
         auto ek = unwrap(mlkem::EncapsulationKey::parse(hex_field(cmd, "ek")));
         auto m = fixed_field<mlkem::kMessageBytes>(cmd, "m");
         return encapsulation_reply(mlkem::encapsulate_derand(ek, m));
       }},
      {"mlkem.encaps",
       [](const json::object& cmd) {
         auto ek = unwrap(mlkem::EncapsulationKey::parse(hex_field(cmd, "ek")));
         return encapsulation_reply(mlkem::encapsulate(ek));
       }},
      {"mlkem.decaps",
       [](const json::object& cmd) {
         auto dk = decapsulation_key(cmd);
         auto k = unwrap(mlkem::decapsulate(dk, hex_field(cmd, "ct")));
         return json::object{{"k", hex(k.span())}};
       }},

      // AEAD, HKDF, hashes, gzip
      {"aead.seal",
       [](const json::object& cmd) {
         auto ct = unwrap(c::aead_seal(aead_alg(cmd), hex_field(cmd, "key"), hex_field(cmd, "nonce"),
                                       hex_field(cmd, "pt"), hex_field_or_empty(cmd, "aad")));
         return json::object{{"ct", hex(ct)}};
       }},
      {"aead.open",
       [](const json::object& cmd) {
         auto pt = unwrap(c::aead_open(aead_alg(cmd), hex_field(cmd, "key"), hex_field(cmd, "nonce"),
                                       hex_field(cmd, "ct"), hex_field_or_empty(cmd, "aad")));
         return json::object{{"pt", hex(pt)}};
       }},
      {"hkdf_sha256",
       [](const json::object& cmd) {
         std::int64_t length = int_field(cmd, "length");
         if (length < 0) throw UsageError{"negative length"};
         auto okm = unwrap(c::hkdf_sha256(hex_field(cmd, "ikm"), hex_field(cmd, "salt"), hex_field(cmd, "info"),
                                          static_cast<std::size_t>(length)));
         return json::object{{"okm", hex(okm)}};
       }},
      {"keccak256",
       [](const json::object& cmd) { return json::object{{"digest", hex(c::keccak256(hex_field(cmd, "data")))}}; }},
      {"sha3_256",
       [](const json::object& cmd) { return json::object{{"digest", hex(c::sha3_256(hex_field(cmd, "data")))}}; }},
      {"gzip.compress",
       [](const json::object& cmd) {
         int level = static_cast<int>(int_field(cmd, "level"));
         return json::object{{"gz", hex(unwrap(c::gzip_compress(hex_field(cmd, "data"), level)))}};
       }},
      {"gzip.decompress",
       [](const json::object& cmd) {
         std::int64_t max = int_field(cmd, "max");
         if (max < 0) throw UsageError{"negative max"};
         auto data = unwrap(c::gzip_decompress(hex_field(cmd, "gz"), static_cast<std::size_t>(max)));
         return json::object{{"data", hex(data)}};
       }},

      // secp256k1
      {"secp256k1.public",
       [](const json::object& cmd) {
         auto priv = unwrap(c::secp256k1::PrivateKey::from_bytes(hex_field(cmd, "priv")));
         const auto& pub = priv.public_key();
         return json::object{{"uncompressed", hex(pub.uncompressed())},
                             {"compressed", hex(pub.compressed())},
                             {"raw", hex(pub.raw())}};
       }},
      {"secp256k1.parse_public",
       [](const json::object& cmd) {
         auto pub = unwrap(c::secp256k1::PublicKey::parse(hex_field(cmd, "pub")));
         return json::object{{"uncompressed", hex(pub.uncompressed())}, {"compressed", hex(pub.compressed())}};
       }},
      {"secp256k1.ecdh",
       [](const json::object& cmd) {
         auto priv = unwrap(c::secp256k1::PrivateKey::from_bytes(hex_field(cmd, "priv")));
         auto pub = unwrap(c::secp256k1::PublicKey::parse(hex_field(cmd, "pub")));
         auto shared = unwrap(c::secp256k1::ecdh(priv, pub));
         return json::object{{"shared", hex(shared.span())}};
       }},
      {"secp256k1.ethereum_address",
       [](const json::object& cmd) {
         auto pub = unwrap(c::secp256k1::PublicKey::parse(hex_field(cmd, "pub")));
         return json::object{{"address", hex(pub.ethereum_address())}};
       }},

      // X25519
      {"x25519.public",
       [](const json::object& cmd) {
         auto priv = fixed_field<c::x25519::kKeyBytes>(cmd, "priv");
         return json::object{{"pub", hex(c::x25519::public_from_private(priv))}};
       }},
      {"x25519.ecdh",
       [](const json::object& cmd) {
         auto priv = fixed_field<c::x25519::kKeyBytes>(cmd, "priv");
         auto shared = unwrap(c::x25519::ecdh(priv, hex_field(cmd, "pub")));
         return json::object{{"shared", hex(shared.span())}};
       }},

      // Ed25519
      {"ed25519.from_seed",
       [](const json::object& cmd) {
         auto kp = c::ed25519::from_seed(fixed_field<c::ed25519::kSeedBytes>(cmd, "seed"));
         return json::object{{"pub", hex(kp.public_key)}};
       }},
      {"ed25519.public_to_x25519",
       [](const json::object& cmd) {
         return json::object{{"x25519", hex(unwrap(c::ed25519::public_to_x25519(hex_field(cmd, "pub"))))}};
       }},
      {"ed25519.seed_to_x25519_private",
       [](const json::object& cmd) {
         auto priv = c::ed25519::seed_to_x25519_private(fixed_field<c::ed25519::kSeedBytes>(cmd, "seed"));
         return json::object{{"priv", hex(priv.span())}};
       }},
      {"ed25519.sign",
       [](const json::object& cmd) {
         auto kp = c::ed25519::from_seed(fixed_field<c::ed25519::kSeedBytes>(cmd, "seed"));
         return json::object{{"sig", hex(c::ed25519::sign(kp, hex_field(cmd, "msg")))}};
       }},
      {"ed25519.verify",
       [](const json::object& cmd) {
         bool ok = c::ed25519::verify(hex_field(cmd, "pub"), hex_field(cmd, "msg"), hex_field(cmd, "sig"));
         return json::object{{"valid", ok}};
       }},
  };
  return table;
}

json::object answer(std::string_view line) {
  json::object reply;
  const json::value* id = nullptr;
  json::value parsed;
  try {
    boost::system::error_code ec;
    parsed = json::parse(line, ec);
    if (ec || !parsed.is_object()) throw UsageError{"not a JSON object"};
    const json::object& cmd = parsed.as_object();
    id = cmd.if_contains("id");
    std::string_view op = string_field(cmd, "op");
    auto it = handlers().find(op);
    if (it == handlers().end()) throw UsageError{"unknown op '" + std::string(op) + "'"};
    reply = it->second(cmd);
  } catch (const Rejected& r) {
    reply = {{"error", e2ee::to_string(r.error.code)}, {"message", r.error.message}};
  } catch (const UsageError& u) {
    reply = {{"error", "oracle_usage"}, {"message", u.message}};
  } catch (const std::exception& e) {
    // Our API reports failures as Result values; an exception escaping it is itself a finding.
    reply = {{"error", "oracle_exception"}, {"message", e.what()}};
  }
  if (id != nullptr) reply["id"] = *id;
  return reply;
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::cin.tie(nullptr);
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::cout << json::serialize(answer(line)) << '\n';
    // Flush only when no further request is already buffered: a pipelined batch is answered
    // in large writes, and a driver waiting for its last answer never waits on our buffer.
    if (std::cin.rdbuf()->in_avail() <= 0) std::cout.flush();
  }
  std::cout.flush();
  return 0;
}

#pragma once
// What the fuzz targets share (fuzz/README.md): invariant checks that crash loudly, the input
// conventions, a generator for choices that must not take bytes from the document (split
// points, limits), JSON helpers, and the hook that turns inputs into seeds.
//
// Input convention: targets with several operations read the operation (and its options) from
// the first byte and treat the rest as the document, so a seed is "<byte><document>". Targets
// with one operation take the whole input as the document.

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/api_error.hpp"

namespace e2ee::fuzz {

[[noreturn]] inline void violated(const char* file, int line, const char* what, std::string_view detail) {
  std::fprintf(stderr, "\n%s:%d: fuzz invariant violated: %s\n", file, line, what);
  if (!detail.empty()) std::fprintf(stderr, "  %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::abort();  // libFuzzer reports it as a crash and writes the reproducer
}

}  // namespace e2ee::fuzz

// FUZZ_CHECK(cond) / FUZZ_CHECK_MSG(cond, detail): an invariant of the code under test.
#define FUZZ_CHECK(cond) \
  ((cond) ? void(0) : ::e2ee::fuzz::violated(__FILE__, __LINE__, #cond, {}))
#define FUZZ_CHECK_MSG(cond, detail) \
  ((cond) ? void(0) : ::e2ee::fuzz::violated(__FILE__, __LINE__, #cond, (detail)))

namespace e2ee::fuzz {

inline std::string_view text_of(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

struct Input {
  std::uint8_t mode = 0;   // the first byte (0 for an empty input)
  std::string_view rest;   // everything after it
};

inline Input split_mode(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  return {data[0], text_of(data + 1, size - 1)};
}

// SplitMix64 seeded with FNV-1a of the input: deterministic per input, so a reproducer replays.
class Rng {
 public:
  explicit Rng(std::string_view input) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : input) h = (h ^ static_cast<std::uint8_t>(c)) * 0x100000001b3ULL;
    state_ = h;
  }
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n); 0 when n is 0.
  std::size_t below(std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
  bool coin() { return (next() & 1) != 0; }

 private:
  std::uint64_t state_;
};

// `text` cut at random points: empty pieces, single bytes and long runs all occur.
inline std::vector<std::string_view> random_pieces(std::string_view text, Rng& rng) {
  std::vector<std::string_view> pieces;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t roll = rng.below(8);
    const std::size_t n = roll == 0 ? 0 : roll < 4 ? 1 + rng.below(3) : 1 + rng.below(text.size() - at);
    pieces.push_back(text.substr(at, n));
    at += std::min(n, text.size() - at);
  }
  pieces.push_back(text.substr(text.size()));  // a final empty feed
  return pieces;
}

// Lines split at '\n' (the terminator dropped; a final line without one counts).
inline std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    out.push_back(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

// Well-formed UTF-8 (Unicode Table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    const auto c1 = static_cast<unsigned char>(s[i + (n > 1 ? 1 : 0)]);
    if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
      return false;
    i += n;
  }
  return true;
}

// Boost.JSON's reading of `text` (nesting allowed as deep as any input); nullopt when it is not JSON.
inline std::optional<boost::json::value> parse_json(std::string_view text) {
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 100000;
  auto v = boost::json::parse(text, ec, {}, options);
  if (ec) return std::nullopt;
  return v;
}

// True when Boost.JSON refuses `text` only for an exponent beyond its int range (1e9999999999).
// RFC 8259 and json_text accept such numbers and pass them through as text, so Boost.JSON is no
// oracle for a text that holds one.
inline bool exponent_beyond_boost(std::string_view text) {
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 100000;
  (void)boost::json::parse(text, ec, {}, options);
  return ec == boost::json::error::exponent_overflow;
}

// An object member's value when present, else nullptr.
inline const boost::json::value* member(const boost::json::value& v, std::string_view key) {
  const auto* o = v.if_object();
  return o == nullptr ? nullptr : o->if_contains(key);
}

// A request translation (Messages or Responses → chat), run twice: it must be deterministic, and
// its error must be the client's fault, stated: 400 invalid_request_error with a code and a message.
template <typename Translate>
auto translate_request(Translate translate) {
  auto result = translate();
  const auto again = translate();
  FUZZ_CHECK(result.index() == again.index());
  if (const auto* e = std::get_if<api::ApiError>(&result)) {
    FUZZ_CHECK_MSG(e->status == 400 && e->type == "invalid_request_error" && !e->code.empty() && !e->message.empty(),
                   e->message);
    FUZZ_CHECK(e->message == std::get<api::ApiError>(again).message);
  } else {
    FUZZ_CHECK(std::get<0>(result).chat_json == std::get<0>(again).chat_json);
  }
  return result;
}

// Seed hook: with E2EE_FUZZ_SEED_OUT=<dir> in the environment, a target writes inputs it derives
// (envelopes sealed by our own code from a plaintext seed, header sets naming the fixed keys)
// there as new seeds. scripts/fuzz --seeds uses it; otherwise it does nothing.
inline bool seeds_wanted() { return std::getenv("E2EE_FUZZ_SEED_OUT") != nullptr; }

inline void emit_seed(std::string_view bytes) {
  static const char* const dir = std::getenv("E2EE_FUZZ_SEED_OUT");
  if (dir == nullptr) return;
  Rng rng(bytes);
  char name[32];
  std::snprintf(name, sizeof name, "gen-%016llx", static_cast<unsigned long long>(rng.next()));
  const std::string path = std::string(dir) + "/" + name;
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

inline void emit_seed(std::uint8_t mode, std::string_view payload) {
  if (!seeds_wanted()) return;
  std::string bytes(1, static_cast<char>(mode));
  bytes.append(payload);
  emit_seed(bytes);
}

}  // namespace e2ee::fuzz

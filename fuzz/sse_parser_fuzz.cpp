// SSE parser (src/http/sse.cpp). Input: a raw event stream, as a peer sends it.
// Checks: the events (and whether the size cap was hit) do not depend on how the bytes are cut
// into feeds — whole, random pieces, byte by byte — with a large and a small cap alike; below
// the large cap the parser never fails; no event exceeds the cap; no event's data or type holds
// a line break other than the '\n' joining data lines; and every event written again with
// format_sse parses back to itself.

#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "http/sse.hpp"

namespace {

using e2ee::http::SseEvent;
using e2ee::http::SseParser;

struct Parsed {
  std::vector<SseEvent> events;
  bool ok = true;
  friend bool operator==(const Parsed&, const Parsed&) = default;
};

Parsed parse(const std::vector<std::string_view>& pieces, std::size_t cap) {
  SseParser parser(cap);
  Parsed out;
  for (const auto piece : pieces) {
    if (!parser.feed(piece, out.events)) {
      out.ok = false;
      FUZZ_CHECK(!parser.feed("data: x\n\n", out.events));  // a failed stream stays failed
      FUZZ_CHECK(!parser.finish());
      return out;
    }
  }
  if (auto last = parser.finish()) out.events.push_back(std::move(*last));
  return out;
}

std::vector<std::string_view> bytes_of(std::string_view text) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < text.size(); ++i) pieces.push_back(text.substr(i, 1));
  return pieces;
}

constexpr std::size_t kLargeCap = std::size_t{1} << 20;  // above any -max_len scripts/fuzz uses
constexpr std::size_t kSmallCap = 64;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = e2ee::fuzz::text_of(data, size);
  e2ee::fuzz::Rng rng(text);

  Parsed large;
  for (const std::size_t cap : {kLargeCap, kSmallCap}) {
    const Parsed whole = parse({text}, cap);
    FUZZ_CHECK(parse(e2ee::fuzz::random_pieces(text, rng), cap) == whole);
    if (text.size() <= 512) FUZZ_CHECK(parse(bytes_of(text), cap) == whole);
    for (const auto& e : whole.events) {
      FUZZ_CHECK(e.data.size() + e.event.size() <= cap);
      FUZZ_CHECK(e.data.find('\r') == std::string::npos);
      FUZZ_CHECK(e.event.find_first_of("\r\n") == std::string::npos);
      FUZZ_CHECK(e.id.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
      FUZZ_CHECK(!e.retry || *e.retry >= 0);
    }
    if (cap == kLargeCap) large = whole;
  }
  FUZZ_CHECK(size >= kLargeCap || large.ok);

  for (const auto& e : large.events) {
    const Parsed back = parse({e2ee::http::format_sse(e.data, e.event)}, kLargeCap);
    FUZZ_CHECK(back.ok && back.events.size() == 1);
    FUZZ_CHECK(back.events[0] == (SseEvent{e.event, e.data, {}, {}}));
  }
  return 0;
}

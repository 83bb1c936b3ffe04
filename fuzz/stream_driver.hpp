#pragma once
// Drives a chat-SSE → client-SSE translator (anthropic::StreamTranslator,
// responses::StreamTranslator) the way the proxy's relay does, for the two stream targets.
//
// Input: an optional first line holding the client's request body (it starts with '{'), then the
// engine's SSE stream of chat.completion.chunk events. The byte-derived generator decides where
// the stream is cut into feeds, whether start() comes first (the early message_start during
// prefill), and whether the upstream ends cleanly (on_done) or fails (on_error) after its last
// event. Checked here: once the translator says finished(), every call returns nothing.

#include <string>
#include <string_view>
#include <vector>

#include "api/api_error.hpp"
#include "api/out_event.hpp"
#include "fuzz_support.hpp"
#include "http/sse.hpp"

namespace e2ee::fuzz {

struct StreamInput {
  std::string_view request;  // empty when the input has none
  std::string_view sse;
};

inline StreamInput split_stream_input(std::string_view text) {
  if (text.empty() || text.front() != '{') return {{}, text};
  const auto nl = text.find('\n');
  if (nl == std::string_view::npos) return {text, {}};
  return {text.substr(0, nl), text.substr(nl + 1)};
}

template <typename Translator>
api::OutEvents drive_stream(Translator& translator, std::string_view sse, Rng& rng) {
  api::OutEvents out;
  auto take = [&](api::OutEvents more) {
    for (auto& e : more) out.push_back(std::move(e));
  };
  auto check_finished_stays_quiet = [&] {
    if (!translator.finished()) return;
    FUZZ_CHECK(translator.start().empty());
    FUZZ_CHECK(translator.on_chunk(R"({"choices":[{"index":0,"delta":{"content":"x"}}]})").empty());
    FUZZ_CHECK(translator.on_done().empty());
    FUZZ_CHECK(translator.on_error(api::upstream_error(502, "fuzz", "late")).empty());
  };

  if (rng.coin()) take(translator.start());
  http::SseParser parser;
  std::vector<http::SseEvent> events;
  bool done = false;
  for (const auto piece : random_pieces(sse, rng)) {
    if (!parser.feed(piece, events)) break;
  }
  if (auto last = parser.finish()) events.push_back(std::move(*last));
  for (const auto& event : events) {
    if (event.data == "[DONE]") {
      take(translator.on_done());
      done = true;
      break;
    }
    take(translator.on_chunk(event.data));
    check_finished_stays_quiet();
  }
  if (!done) {
    if (rng.coin()) take(translator.on_done());
    else take(translator.on_error(api::upstream_error(502, "upstream_failed", "the upstream failed")));
  }
  FUZZ_CHECK(translator.finished());
  check_finished_stays_quiet();
  return out;
}

}  // namespace e2ee::fuzz

// Chat SSE → Anthropic Messages SSE (src/api/anthropic/stream.cpp): the engine's stream, which a
// compromised or buggy engine controls, becomes the events Claude Code acts on.
//
// Input: see stream_driver.hpp (optional Messages request line, then the engine's SSE stream).
// Checks, on every event list (the promises of messages.hpp that SDKs depend on): each event's
// data is a JSON object whose type is the event name; message_start comes first and once; blocks
// open one at a time with indexes 0, 1, 2 …; every delta belongs to the open block and fits its
// type; a tool_use block's input_json deltas are never empty; message_delta comes once, after
// every block closed, with a known stop_reason and non-negative usage; the stream ends with
// message_stop or an error event and nothing follows it.

#include <set>

#include "api/anthropic/messages.hpp"
#include "fuzz_support.hpp"
#include "stream_driver.hpp"

namespace {

namespace anthropic = e2ee::api::anthropic;
namespace json = boost::json;

constexpr std::string_view kDefaultRequest =
    R"({"model":"claude-x","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"x"}]})";

bool is_count(const json::value* v) { return v != nullptr && ((v->is_int64() && v->get_int64() >= 0) || v->is_uint64()); }

void check_usage(const json::value* usage) {
  FUZZ_CHECK(usage != nullptr);
  for (const char* k : {"input_tokens", "output_tokens"}) FUZZ_CHECK(is_count(e2ee::fuzz::member(*usage, k)));
}

void validate(const e2ee::api::OutEvents& events) {
  static const std::set<std::string, std::less<>> kStopReasons{"end_turn", "max_tokens", "stop_sequence",
                                                               "tool_use", "refusal",    "pause_turn"};
  bool started = false, delta_seen = false, ended = false;
  int open = -1, next = 0;
  std::string open_type, tool_json;
  for (const auto& ev : events) {
    FUZZ_CHECK_MSG(!ended, ev.data);  // nothing after message_stop or error
    const auto v = e2ee::fuzz::parse_json(ev.data);
    FUZZ_CHECK_MSG(v && v->is_object(), ev.data);
    const auto* type = e2ee::fuzz::member(*v, "type");
    FUZZ_CHECK_MSG(type != nullptr && type->is_string() && type->get_string() == ev.event, ev.data);
    const auto* index_v = e2ee::fuzz::member(*v, "index");
    const int index = index_v != nullptr && index_v->is_int64() ? static_cast<int>(index_v->get_int64()) : -2;

    if (ev.event == "ping") continue;
    if (ev.event == "error") {
      const auto* e = e2ee::fuzz::member(*v, "error");
      FUZZ_CHECK(e != nullptr && e2ee::fuzz::member(*e, "type") != nullptr && e2ee::fuzz::member(*e, "message") != nullptr);
      ended = true;
      continue;
    }
    if (ev.event == "message_start") {
      FUZZ_CHECK(!started);
      started = true;
      const auto* m = e2ee::fuzz::member(*v, "message");
      FUZZ_CHECK(m != nullptr);
      const auto* id = e2ee::fuzz::member(*m, "id");
      FUZZ_CHECK(id != nullptr && id->is_string() && id->get_string().starts_with("msg_"));
      check_usage(e2ee::fuzz::member(*m, "usage"));
      continue;
    }
    FUZZ_CHECK_MSG(started, ev.event);
    if (ev.event == "content_block_start") {
      FUZZ_CHECK(!delta_seen && open == -1 && index == next);
      const auto* block = e2ee::fuzz::member(*v, "content_block");
      FUZZ_CHECK(block != nullptr);
      const auto* bt = e2ee::fuzz::member(*block, "type");
      FUZZ_CHECK(bt != nullptr && bt->is_string());
      open_type = std::string(bt->get_string());
      FUZZ_CHECK_MSG(open_type == "text" || open_type == "thinking" || open_type == "tool_use", open_type);
      if (open_type == "tool_use") {
        const auto* id = e2ee::fuzz::member(*block, "id");
        const auto* name = e2ee::fuzz::member(*block, "name");
        FUZZ_CHECK(id != nullptr && id->is_string() && !id->get_string().empty());
        // The name may be empty: a call whose first fragment never came is still passed on, at the end.
        FUZZ_CHECK(name != nullptr && name->is_string());
        tool_json.clear();
      }
      open = index;
      ++next;
    } else if (ev.event == "content_block_delta") {
      FUZZ_CHECK(open >= 0 && index == open);
      const auto* d = e2ee::fuzz::member(*v, "delta");
      const auto* dt = d == nullptr ? nullptr : e2ee::fuzz::member(*d, "type");
      FUZZ_CHECK(dt != nullptr && dt->is_string());
      if (open_type == "text") {
        FUZZ_CHECK(dt->get_string() == "text_delta");
      } else if (open_type == "thinking") {
        FUZZ_CHECK(dt->get_string() == "thinking_delta" || dt->get_string() == "signature_delta");
      } else {
        FUZZ_CHECK(dt->get_string() == "input_json_delta");
        const auto* partial = e2ee::fuzz::member(*d, "partial_json");
        FUZZ_CHECK(partial != nullptr && partial->is_string());
        tool_json += partial->get_string();
      }
    } else if (ev.event == "content_block_stop") {
      FUZZ_CHECK(open >= 0 && index == open);
      // Never empty ("{}" stands in for no arguments). Whether it is an object is up to the engine:
      // arguments are streamed live as they come, so an engine's broken JSON cannot be held back.
      if (open_type == "tool_use") FUZZ_CHECK(!tool_json.empty());
      open = -1;
    } else if (ev.event == "message_delta") {
      FUZZ_CHECK(open == -1 && !delta_seen);
      delta_seen = true;
      const auto* d = e2ee::fuzz::member(*v, "delta");
      const auto* reason = d == nullptr ? nullptr : e2ee::fuzz::member(*d, "stop_reason");
      FUZZ_CHECK(reason != nullptr && reason->is_string() && kStopReasons.count(reason->get_string()) == 1);
      check_usage(e2ee::fuzz::member(*v, "usage"));
    } else if (ev.event == "message_stop") {
      FUZZ_CHECK(delta_seen);
      ended = true;
    } else {
      e2ee::fuzz::violated(__FILE__, __LINE__, "unknown event", ev.event);
    }
  }
  FUZZ_CHECK(ended);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = e2ee::fuzz::text_of(data, size);
  const auto input = e2ee::fuzz::split_stream_input(text);
  auto request = anthropic::to_chat_request(input.request.empty() ? kDefaultRequest : input.request, {});
  if (!std::holds_alternative<anthropic::TranslatedRequest>(request)) request = anthropic::to_chat_request(kDefaultRequest, {});
  anthropic::StreamTranslator translator(std::get<anthropic::TranslatedRequest>(request));
  e2ee::fuzz::Rng rng(text);
  auto events = e2ee::fuzz::drive_stream(translator, input.sse, rng);
  events.insert(events.begin() + static_cast<std::ptrdiff_t>(rng.below(events.size())), translator.ping());  // keep-alive
  validate(events);
  return 0;
}

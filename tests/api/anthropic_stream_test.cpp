// Chat SSE → Anthropic SSE. Every fixture in fixtures/anthropic/stream/ (<name>.sse as the engine
// sent it, <name>.events.json the events the client must get, optional <name>.request.json) is
//   1. replayed whole and compared event by event with the expectation;
//   2. replayed with its bytes cut at every boundary (and fed byte by byte) through the real SSE
//      parser, which must give exactly the same events;
//   3. replayed with each text/reasoning/arguments delta cut in two at every character, which must
//      give the same message once the deltas are put together (tags and JSON split anywhere);
// and every event list any test produces passes the Anthropic stream validator below.

#include "api/anthropic/messages.hpp"

#include <gtest/gtest.h>
#include <gtest/gtest-spi.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "http/sse.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using e2ee::test::read_file;
using e2ee::test::parse_json;
using namespace e2ee::api;
using namespace e2ee::api::anthropic;

fs::path fixtures() { return fs::path(__FILE__).parent_path() / "fixtures" / "anthropic" / "stream"; }

const char* kDefaultRequest = R"({"model":"claude-x","stream":true,"messages":[{"role":"user","content":"x"}]})";

TranslatedRequest request_for(std::string_view body) {
  auto r = to_chat_request(body, RequestOptions{});
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << e->message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

void append(OutEvents& to, OutEvents from) {
  for (auto& e : from) to.push_back(std::move(e));
}

// ---------------------------------------------------------------------------------------------
// The validator: the invariants Claude Code and the Anthropic SDKs depend on.

bool is_count(const json::value* v) { return v != nullptr && v->is_int64() && v->get_int64() >= 0; }

void validate(const OutEvents& events, bool expect_complete = true) {
  bool started = false, ended = false, delta_seen = false;
  int open = -1, next = 0;
  std::string open_type;
  std::string tool_json;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    SCOPED_TRACE("event " + std::to_string(i) + " " + ev.event + " " + ev.data);
    ASSERT_FALSE(ended) << "nothing may follow message_stop or error";
    json::error_code ec;
    const auto v = json::parse(ev.data, ec);
    ASSERT_FALSE(ec) << "data must be JSON";
    ASSERT_TRUE(v.is_object());
    const auto& o = v.get_object();
    ASSERT_TRUE(o.contains("type") && o.at("type").is_string());
    ASSERT_EQ(o.at("type").get_string(), ev.event) << "event name and data type agree";
    const auto index = [&]() -> int {
      const auto* x = o.if_contains("index");
      if (x == nullptr || !x->is_int64()) {
        ADD_FAILURE() << "index missing";
        return -2;
      }
      return static_cast<int>(x->get_int64());
    };
    if (ev.event == "ping") continue;
    if (ev.event == "error") {
      const auto* e = o.if_contains("error");
      ASSERT_TRUE(e != nullptr && e->is_object());
      EXPECT_TRUE(e->get_object().contains("type") && e->get_object().at("type").is_string());
      EXPECT_TRUE(e->get_object().contains("message") && e->get_object().at("message").is_string());
      ended = true;
      continue;
    }
    if (ev.event == "message_start") {
      ASSERT_FALSE(started) << "one message_start";
      started = true;
      const auto& m = o.at("message").as_object();
      EXPECT_EQ(m.at("id").as_string().subview().substr(0, 4), "msg_");
      EXPECT_EQ(m.at("type"), "message");
      EXPECT_EQ(m.at("role"), "assistant");
      EXPECT_TRUE(m.at("model").is_string());
      EXPECT_TRUE(m.at("content").is_array() && m.at("content").as_array().empty());
      EXPECT_TRUE(m.at("stop_reason").is_null());
      EXPECT_TRUE(m.at("stop_sequence").is_null());
      const auto& u = m.at("usage").as_object();
      for (const char* k : {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}) {
        EXPECT_TRUE(is_count(u.if_contains(k))) << "message_start.usage." << k << " must be a real number";
      }
      continue;
    }
    ASSERT_TRUE(started) << "message_start comes first";
    if (ev.event == "content_block_start") {
      ASSERT_FALSE(delta_seen) << "no block after message_delta";
      ASSERT_EQ(open, -1) << "one open block at a time";
      const int idx = index();
      ASSERT_EQ(idx, next) << "indexes start at 0 and increase by one";
      const auto& b = o.at("content_block").as_object();
      open_type = std::string(b.at("type").as_string());
      if (open_type == "text") {
        EXPECT_EQ(b.at("text"), "");
      } else if (open_type == "thinking") {
        EXPECT_EQ(b.at("thinking"), "");
        EXPECT_TRUE(b.at("signature").is_string());
      } else if (open_type == "tool_use") {
        EXPECT_FALSE(b.at("id").as_string().empty());
        EXPECT_FALSE(b.at("name").as_string().empty());
        EXPECT_TRUE(b.at("input").is_object() && b.at("input").as_object().empty());
        tool_json.clear();
      } else {
        ADD_FAILURE() << "unknown block type " << open_type;
      }
      open = idx;
      ++next;
    } else if (ev.event == "content_block_delta") {
      ASSERT_EQ(index(), open) << "a delta only for the open block";
      const auto& d = o.at("delta").as_object();
      const auto type = d.at("type").as_string();
      if (open_type == "text") {
        EXPECT_EQ(type, "text_delta");
        EXPECT_TRUE(d.at("text").is_string());
      } else if (open_type == "thinking") {
        EXPECT_TRUE(type == "thinking_delta" || type == "signature_delta");
      } else {
        EXPECT_EQ(type, "input_json_delta");
        tool_json += d.at("partial_json").as_string();
      }
    } else if (ev.event == "content_block_stop") {
      ASSERT_EQ(index(), open) << "stop only the open block";
      if (open_type == "tool_use") {
        json::error_code e2;
        const auto input = json::parse(tool_json, e2);
        EXPECT_FALSE(e2) << "tool input must be JSON: " << tool_json;
        EXPECT_TRUE(input.is_object()) << "tool input must be an object, never empty: '" << tool_json << "'";
      }
      open = -1;
    } else if (ev.event == "message_delta") {
      ASSERT_EQ(open, -1) << "all blocks closed before message_delta";
      ASSERT_FALSE(delta_seen) << "one message_delta";
      delta_seen = true;
      const auto& d = o.at("delta").as_object();
      static const std::set<std::string> reasons{"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"};
      EXPECT_TRUE(reasons.count(std::string(d.at("stop_reason").as_string())) == 1);
      EXPECT_TRUE(d.at("stop_sequence").is_null() || d.at("stop_sequence").is_string());
      const auto& u = o.at("usage").as_object();
      for (const char* k : {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"}) {
        EXPECT_TRUE(is_count(u.if_contains(k))) << "message_delta.usage." << k;
      }
    } else if (ev.event == "message_stop") {
      ASSERT_TRUE(delta_seen) << "message_delta before message_stop";
      ended = true;
    } else {
      ADD_FAILURE() << "unknown event " << ev.event;
    }
  }
  if (expect_complete) {
    EXPECT_TRUE(ended) << "a stream ends with message_stop or error";
  }
}

// What the SDK's MessageStream builds from the events: the final message (or the error).
json::value accumulate(const OutEvents& events) {
  json::object message;
  json::array content;
  std::map<std::size_t, std::string> partial;
  for (const auto& ev : events) {
    const auto v = parse_json(ev.data);
    if (!v.is_object()) continue;
    const auto& o = v.get_object();
    if (ev.event == "message_start") {
      message = o.at("message").as_object();
    } else if (ev.event == "content_block_start") {
      content.push_back(o.at("content_block"));
    } else if (ev.event == "content_block_delta") {
      auto& block = content.back().as_object();
      const auto& d = o.at("delta").as_object();
      const auto type = d.at("type").as_string();
      if (type == "text_delta") block["text"].as_string().append(d.at("text").as_string());
      if (type == "thinking_delta") block["thinking"].as_string().append(d.at("thinking").as_string());
      if (type == "input_json_delta") partial[content.size() - 1] += d.at("partial_json").as_string();
    } else if (ev.event == "content_block_stop") {
      const auto i = static_cast<std::size_t>(o.at("index").as_int64());
      if (content[i].as_object().at("type") == "tool_use") content[i].as_object()["input"] = parse_json(partial[i]);
    } else if (ev.event == "message_delta") {
      message["stop_reason"] = o.at("delta").at("stop_reason");
      message["stop_sequence"] = o.at("delta").at("stop_sequence");
      auto& usage = message["usage"].as_object();
      for (const auto& kv : o.at("usage").as_object()) usage[kv.key()] = kv.value();
    } else if (ev.event == "error") {
      message["error"] = o.at("error");
    }
  }
  message["content"] = std::move(content);
  return message;
}

// ---------------------------------------------------------------------------------------------
// Replays.

// Feeds SSE bytes cut at `cuts` through the real SSE parser into a translator; a clean end of
// the bytes counts as the upstream finishing.
OutEvents replay_bytes(std::string_view bytes, const TranslatedRequest& request, const std::vector<std::size_t>& cuts) {
  e2ee::http::SseParser parser;
  StreamTranslator translator(request);
  OutEvents out;
  auto deliver = [&](const e2ee::http::SseEvent& e) {
    if (e.data == "[DONE]") {
      append(out, translator.on_done());
    } else {
      append(out, translator.on_chunk(e.data));
    }
  };
  std::size_t at = 0;
  std::vector<e2ee::http::SseEvent> events;
  auto feed = [&](std::string_view piece) {
    events.clear();
    EXPECT_TRUE(parser.feed(piece, events));
    for (const auto& e : events) deliver(e);
  };
  for (auto cut : cuts) {
    feed(bytes.substr(at, cut - at));
    at = cut;
  }
  feed(bytes.substr(at));
  if (auto last = parser.finish()) deliver(*last);
  append(out, translator.on_done());
  return out;
}

std::vector<std::string> chunk_datas(std::string_view bytes) {
  e2ee::http::SseParser parser;
  std::vector<e2ee::http::SseEvent> events;
  parser.feed(bytes, events);
  if (auto last = parser.finish()) events.push_back(*last);
  std::vector<std::string> out;
  for (auto& e : events) out.push_back(e.data);
  return out;
}

OutEvents replay_datas(const std::vector<std::string>& datas, const TranslatedRequest& request) {
  StreamTranslator translator(request);
  OutEvents out;
  for (const auto& d : datas) append(out, d == "[DONE]" ? translator.on_done() : translator.on_chunk(d));
  append(out, translator.on_done());
  return out;
}

struct Fixture {
  std::string name;
  std::string sse;
  TranslatedRequest request;
  OutEvents expected;
};

std::vector<Fixture> load() {
  std::vector<Fixture> out;
  for (const auto& entry : fs::directory_iterator(fixtures())) {
    const std::string file = entry.path().filename().string();
    if (file.size() < 5 || file.substr(file.size() - 4) != ".sse") continue;
    Fixture f;
    f.name = file.substr(0, file.size() - 4);
    f.sse = read_file(entry.path());
    const auto request_path = fixtures() / (f.name + ".request.json");
    f.request = request_for(fs::exists(request_path) ? read_file(request_path) : std::string(kDefaultRequest));
    const auto expected = parse_json(read_file(fixtures() / (f.name + ".events.json")));
    for (const auto& e : expected.at("events").as_array()) {
      f.expected.push_back(OutEvent{std::string(e.at("event").as_string()), json::serialize(e.at("data"))});
    }
    out.push_back(std::move(f));
  }
  EXPECT_GE(out.size(), 18u) << "fixtures missing";
  return out;
}

void expect_same_events(const OutEvents& got, const OutEvents& expected) {
  ASSERT_EQ(got.size(), expected.size()) << [&] {
    std::string s;
    for (const auto& e : got) s += e.event + " " + e.data + "\n";
    return "got:\n" + s;
  }();
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].event, expected[i].event) << "event " << i;
    EXPECT_EQ(parse_json(got[i].data), parse_json(expected[i].data)) << "event " << i << "\n got:      " << got[i].data
                                                           << "\n expected: " << expected[i].data;
  }
}

TEST(AnthropicStream, GoldenFixtures) {
  for (const auto& f : load()) {
    SCOPED_TRACE(f.name);
    validate(f.expected);  // the expectations themselves must be a valid stream
    const auto got = replay_bytes(f.sse, f.request, {});
    validate(got);
    expect_same_events(got, f.expected);
  }
}

TEST(AnthropicStream, EveryByteBoundaryGivesTheSameEvents) {
  for (const auto& f : load()) {
    SCOPED_TRACE(f.name);
    const auto whole = replay_bytes(f.sse, f.request, {});
    for (std::size_t cut = 1; cut < f.sse.size(); ++cut) {
      const auto split = replay_bytes(f.sse, f.request, {cut});
      ASSERT_EQ(split.size(), whole.size()) << "cut at " << cut;
      for (std::size_t i = 0; i < split.size(); ++i) {
        ASSERT_EQ(split[i].event, whole[i].event) << "cut at " << cut;
        ASSERT_EQ(split[i].data, whole[i].data) << "cut at " << cut;
      }
    }
    std::vector<std::size_t> every;
    for (std::size_t cut = 1; cut < f.sse.size(); ++cut) every.push_back(cut);
    const auto bytewise = replay_bytes(f.sse, f.request, every);
    ASSERT_EQ(bytewise.size(), whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(bytewise[i].data, whole[i].data);
  }
}

// Cuts one string field of one chunk in two chunks; returns false when the chunk has none.
bool split_chunk(const std::string& data, std::size_t at, std::string& first, std::string& second, std::size_t& length) {
  json::error_code ec;
  auto v = json::parse(data, ec);
  if (ec || !v.is_object()) return false;
  auto* choices = v.as_object().if_contains("choices");
  if (choices == nullptr || !choices->is_array() || choices->as_array().empty()) return false;
  auto& delta = choices->as_array()[0].as_object()["delta"].as_object();
  json::string* field = nullptr;
  bool tool = false;
  for (const char* k : {"content", "reasoning_content", "reasoning"}) {
    if (auto* f = delta.if_contains(k); f != nullptr && f->is_string() && f->as_string().size() > 1) field = &f->as_string();
  }
  if (field == nullptr) {
    if (auto* t = delta.if_contains("tool_calls"); t != nullptr && t->as_array().size() == 1) {
      auto& fn = t->as_array()[0].as_object()["function"].as_object();
      if (auto* a = fn.if_contains("arguments"); a != nullptr && a->as_string().size() > 1) {
        field = &a->as_string();
        tool = true;
      }
    }
  }
  if (field == nullptr) return false;
  const std::string text(*field);
  length = text.size();
  if (at == 0 || at >= text.size()) return true;
  if ((static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) return true;  // engines never cut a character
  json::value a = v, b = v;
  auto edit = [&](json::value& x, std::string_view part, bool is_first) {
    auto& c = x.as_object()["choices"].as_array()[0].as_object();
    auto& d = c["delta"].as_object();
    if (tool) {
      auto& call = d["tool_calls"].as_array()[0].as_object();
      call["function"].as_object()["arguments"] = part;
      if (!is_first) {
        call.erase("id");
        call.erase("type");
        call["function"].as_object().erase("name");
      }
    } else {
      for (const char* k : {"content", "reasoning_content", "reasoning"}) {
        if (auto* f = d.if_contains(k); f != nullptr && f->is_string() && f->as_string() == json::string_view(text)) *f = part;
      }
    }
    if (is_first) {
      c["finish_reason"] = nullptr;
      c.erase("stop_reason");
      x.as_object().erase("usage");
    }
  };
  edit(a, std::string_view(text).substr(0, at), true);
  edit(b, std::string_view(text).substr(at), false);
  first = json::serialize(a);
  second = json::serialize(b);
  return true;
}

TEST(AnthropicStream, EveryDeltaCutGivesTheSameMessage) {
  for (const auto& f : load()) {
    SCOPED_TRACE(f.name);
    const auto datas = chunk_datas(f.sse);
    const auto expected = accumulate(f.expected);
    int variants = 0;
    for (std::size_t k = 0; k < datas.size(); ++k) {
      std::string a, b;
      std::size_t length = 0;
      if (!split_chunk(datas[k], 0, a, b, length)) continue;
      for (std::size_t at = 1; at < length; ++at) {
        if (!split_chunk(datas[k], at, a, b, length) || a.empty()) continue;
        auto changed = datas;
        changed[k] = b;
        changed.insert(changed.begin() + static_cast<std::ptrdiff_t>(k), a);
        const auto got = replay_datas(changed, f.request);
        SCOPED_TRACE("chunk " + std::to_string(k) + " cut at " + std::to_string(at));
        validate(got);
        ASSERT_EQ(accumulate(got), expected);
        a.clear();
        ++variants;
      }
    }
    if (f.name != "content_filter" && f.name != "malformed_chunk" && f.name != "empty_args_no_usage") {
      EXPECT_GT(variants, 0) << "every fixture with text should be re-cut";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Behaviours outside the fixtures.

std::string chunk(std::string_view delta_json, std::string_view finish = "null") {
  return R"({"id":"c","choices":[{"index":0,"delta":)" + std::string(delta_json) + R"(,"finish_reason":)" + std::string(finish) + "}]}";
}

TEST(AnthropicStream, StartBeforeTheFirstChunkAndPingAnytime) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  EXPECT_EQ(t.ping().event, "ping");
  EXPECT_EQ(parse_json(t.ping().data).at("type"), "ping");
  append(all, t.start());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].event, "message_start");
  EXPECT_EQ(parse_json(all[0].data).at("message").at("id"), "msg_e2ee") << "no chunk yet: the fallback id";
  EXPECT_TRUE(t.start().empty()) << "only once";
  all.push_back(t.ping());
  append(all, t.on_chunk(chunk(R"({"content":"hi"})")));
  all.push_back(t.ping());
  append(all, t.on_chunk(chunk("{}", "\"stop\"")));
  append(all, t.on_done());
  validate(all);
  EXPECT_TRUE(t.finished());
  EXPECT_EQ(accumulate(all).at("content").at(0).at("text"), "hi");
}

TEST(AnthropicStream, FallbackIdFromOptions) {
  RequestOptions o;
  o.fallback_id = "r-9";
  auto request = std::get<TranslatedRequest>(to_chat_request(kDefaultRequest, o));
  StreamTranslator t(request);
  const auto out = t.start();
  EXPECT_EQ(parse_json(out[0].data).at("message").at("id"), "msg_r-9");
}

TEST(AnthropicStream, NothingAfterTheEnd) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"content":"a"})", "\"stop\"")));
  append(all, t.on_done());
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(t.on_chunk(chunk(R"({"content":"late"})")).empty());
  EXPECT_TRUE(t.on_done().empty());
  EXPECT_TRUE(t.on_error(upstream_error(502, "x", "y")).empty());
  EXPECT_TRUE(t.start().empty());
  validate(all);
}

TEST(AnthropicStream, UpstreamFailureMidStream) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"content":"partial"})")));
  append(all, t.on_error(upstream_error(502, "upstream_disconnected", "the engine connection closed mid-stream")));
  validate(all);
  ASSERT_EQ(all.back().event, "error");
  EXPECT_EQ(parse_json(all.back().data).at("error").at("type"), "api_error");
  EXPECT_EQ(parse_json(all.back().data).at("error").at("message"), "the engine connection closed mid-stream");
  EXPECT_TRUE(t.finished());
  EXPECT_TRUE(t.on_chunk(chunk(R"({"content":"more"})")).empty());
}

TEST(AnthropicStream, FailureBeforeAnythingIsJustTheError) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  const auto out = t.on_error(ApiError{529, "overloaded", "overloaded", "engine overloaded", 0});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].event, "error");
  EXPECT_EQ(parse_json(out[0].data).at("error").at("type"), "overloaded_error");
  validate(out);
}

TEST(AnthropicStream, ContextLengthErrorMidStreamUsesAnthropicWording) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  const auto out = t.on_chunk(R"({"error":{"message":"This model's maximum context length is 8192 tokens.","code":400}})");
  ASSERT_EQ(out.size(), 1u);
  const auto body = parse_json(out[0].data);
  EXPECT_EQ(body.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(std::string(body.at("error").at("message").as_string()).rfind("prompt is too long: ", 0), 0u);
}

TEST(AnthropicStream, EmptyStreamStillEndsProperly) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  const auto out = t.on_done();
  validate(out);
  EXPECT_EQ(out.front().event, "message_start");
  EXPECT_EQ(out.back().event, "message_stop");
}

TEST(AnthropicStream, SecondChoiceIsIgnored) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(R"({"id":"c","choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine"}}]})"));
  append(all, t.on_done());
  validate(all);
  EXPECT_EQ(accumulate(all).at("content").at(0).at("text"), "mine");
}

TEST(AnthropicStream, RepeatedIdAndNameOnEveryFragment) {
  // Some engines repeat id and name on every fragment; that must not open new blocks.
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\""}}]})")));
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"a","type":"function","function":{"name":"f","arguments":":1}"}}]})")));
  append(all, t.on_chunk(chunk("{}", "\"tool_calls\"")));
  append(all, t.on_done());
  validate(all);
  const auto m = accumulate(all);
  ASSERT_EQ(m.at("content").as_array().size(), 1u);
  EXPECT_EQ(m.at("content").at(0).at("input").at("x"), 1);
}

TEST(AnthropicStream, NameArrivingAfterArguments) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":0,"function":{"arguments":"{\"q\":"}}]})")));
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"late","function":{"name":"search","arguments":"\"x\"}"}}]})")));
  append(all, t.on_chunk(chunk("{}", "\"tool_calls\"")));
  append(all, t.on_done());
  validate(all);
  const auto m = accumulate(all);
  EXPECT_EQ(m.at("content").at(0).at("name"), "search");
  EXPECT_EQ(m.at("content").at(0).at("id"), "late");
  EXPECT_EQ(m.at("content").at(0).at("input").at("q"), "x");
}

TEST(AnthropicStream, CallWithoutIdOrNameStillAValidBlock) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":3,"id":"","function":{"name":"f","arguments":""}}]})")));
  append(all, t.on_done());
  validate(all);
  const auto m = accumulate(all);
  EXPECT_EQ(m.at("content").at(0).at("id"), "toolu_c_0");
  EXPECT_EQ(m.at("stop_reason"), "tool_use");
}

TEST(AnthropicStream, PerRequestStateOnly) {
  // Two translators interleaved (as concurrent requests are) do not see each other's state.
  const auto request = request_for(kDefaultRequest);
  StreamTranslator a(request), b(request);
  OutEvents ea, eb;
  append(ea, a.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"A","function":{"name":"fa","arguments":"{}"}}]})")));
  append(eb, b.on_chunk(chunk(R"({"content":"text for b"})")));
  append(ea, a.on_chunk(chunk(R"({"tool_calls":[{"index":1,"id":"A2","function":{"name":"fb","arguments":"{}"}}]})")));
  append(eb, b.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"B","function":{"name":"fc","arguments":"{}"}}]})")));
  append(ea, a.on_done());
  append(eb, b.on_done());
  validate(ea);
  validate(eb);
  EXPECT_EQ(accumulate(ea).at("content").as_array().size(), 2u);
  EXPECT_EQ(accumulate(eb).at("content").as_array().size(), 2u);
}

TEST(AnthropicStream, ValidatorCatchesBrokenStreams) {
  // The validator must be able to fail, or the tests above prove nothing.
  const auto start = OutEvent{"message_start", R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}})"};
  const auto text_start = [](int i) { return OutEvent{"content_block_start", R"({"type":"content_block_start","index":)" + std::to_string(i) + R"(,"content_block":{"type":"text","text":""}})"}; };
  const auto stop = [](int i) { return OutEvent{"content_block_stop", R"({"type":"content_block_stop","index":)" + std::to_string(i) + "}"}; };
  const auto delta = OutEvent{"message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}})"};
  const auto end = OutEvent{"message_stop", R"({"type":"message_stop"})"};
  const auto tool_start = OutEvent{"content_block_start", R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}})"};
  const std::vector<OutEvents> broken = {
      {text_start(0), stop(0), delta, end},                               // no message_start
      {start, text_start(1), stop(1), delta, end},                        // index not starting at 0
      {start, text_start(0), text_start(1), stop(1), delta, end},         // two open blocks
      {start, OutEvent{"content_block_delta", R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})"}, delta, end},  // delta before start
      {start, text_start(0), stop(0), delta, end, OutEvent{"ping", R"({"type":"ping"})"}},  // after message_stop
      {start, text_start(0), delta, end},                                 // block left open
      {start, tool_start, stop(0), delta, end},                           // empty tool input
      {start, delta},                                                     // no message_stop
      {start, OutEvent{"message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}})"}, end},  // missing usage fields
  };
  for (std::size_t i = 0; i < broken.size(); ++i) {
    ::testing::TestPartResultArray failures;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
      validate(broken[i]);
    }
    EXPECT_GT(failures.size(), 0) << "broken stream " << i << " passed the validator";
  }
}

}  // namespace

namespace {

TEST(AnthropicStream, WhitespaceOnlyAnswerBeforeAToolCallIsNoBlock) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"reasoning_content":"plan"})")));
  append(all, t.on_chunk(chunk(R"({"content":"\n\n"})")));
  append(all, t.on_chunk(chunk(R"({"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]})")));
  append(all, t.on_chunk(chunk("{}", "\"tool_calls\"")));
  append(all, t.on_done());
  validate(all);
  const auto m = accumulate(all);
  ASSERT_EQ(m.at("content").as_array().size(), 2u);
  EXPECT_EQ(m.at("content").at(0).at("type"), "thinking");
  EXPECT_EQ(m.at("content").at(1).at("type"), "tool_use");
}

TEST(AnthropicStream, LeadingWhitespaceOfARealAnswerIsKept) {
  const auto request = request_for(kDefaultRequest);
  StreamTranslator t(request);
  OutEvents all;
  append(all, t.on_chunk(chunk(R"({"content":"\n"})")));
  append(all, t.on_chunk(chunk(R"({"content":"  x"})")));
  append(all, t.on_done());
  validate(all);
  EXPECT_EQ(accumulate(all).at("content").at(0).at("text"), "\n  x");
}

}  // namespace

// Messages request → chat-completions request: golden fixtures (fixtures/anthropic/request/
// <name>.in.json → <name>.out.json, compared as parsed JSON because key order is free), byte-exact
// checks where bytes matter (numbers, schemas, tool inputs), options, and every class of bad input.

#include "api/anthropic/messages.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/json_text.hpp"
#include "support/fixtures.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using e2ee::test::read_file;
using e2ee::test::parse_json;
using namespace e2ee::api;
using namespace e2ee::api::anthropic;

fs::path fixtures() { return fs::path(__FILE__).parent_path() / "fixtures" / "anthropic" / "request"; }

TranslatedRequest translate(std::string_view body, const RequestOptions& options = {}) {
  auto r = to_chat_request(body, options);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

ApiError reject(std::string_view body, const RequestOptions& options = {}) {
  auto r = to_chat_request(body, options);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  ADD_FAILURE() << "accepted: " << std::get<TranslatedRequest>(r).chat_json;
  return {};
}

TEST(AnthropicRequest, GoldenFixtures) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fixtures())) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 8 || name.substr(name.size() - 8) != ".in.json") continue;
    const std::string stem = name.substr(0, name.size() - 8);
    SCOPED_TRACE(stem);
    const auto out = translate(read_file(entry.path()));
    // Whatever we send must be strict JSON (what the engine's parser and the envelope expect).
    EXPECT_TRUE(e2ee::json_text::validate(out.chat_json)) << out.chat_json;
    const auto expected = parse_json(read_file(fixtures() / (stem + ".out.json")));
    const auto got = parse_json(out.chat_json);
    EXPECT_EQ(got, expected) << "got:      " << json::serialize(got) << "\nexpected: " << json::serialize(expected);
    ++count;
  }
  EXPECT_GE(count, 15) << "fixtures missing";
}

TEST(AnthropicRequest, NumbersSchemasAndInputsPassThroughByteForByte) {
  // Boost.JSON would print 0.70 as 7E-1 and lose digits of big integers; the engine must see the
  // client's spelling (tool arguments are text in the prompt; caching needs identical bytes).
  const auto sampling = translate(read_file(fixtures() / "sampling_and_thinking.in.json"));
  EXPECT_NE(sampling.chat_json.find("\"temperature\":0.70"), std::string::npos) << sampling.chat_json;
  EXPECT_NE(sampling.chat_json.find("\"top_p\":1e0"), std::string::npos);
  EXPECT_NE(sampling.chat_json.find("\"top_k\":40"), std::string::npos);

  const auto cc = translate(read_file(fixtures() / "claude_code_turn1.in.json"));
  EXPECT_NE(cc.chat_json.find(R"("timeout": {"type": "number", "maximum": 6.0e5})"), std::string::npos)
      << "schemas are copied with their whitespace and number spelling";

  const auto trip = translate(read_file(fixtures() / "tool_round_trip.in.json"));
  EXPECT_NE(trip.chat_json.find(
                R"("arguments":"{\"file_path\": \"/p/README.md\", \"limit\": 2.50, \"offset\": 123456789012345678901234567890}")"),
            std::string::npos)
      << trip.chat_json;

  const auto structured = translate(read_file(fixtures() / "structured_output.in.json"));
  EXPECT_NE(structured.chat_json.find("\"maximum\": 1.5E3"), std::string::npos);
}

TEST(AnthropicRequest, EscapesInClientStringsAreKept) {
  // A description copied as a literal keeps its escapes; decoded text is re-quoted validly.
  const auto r = translate(R"({"model":"m","messages":[{"role":"user","content":"a\u0000b\"c\ud83d\ude00"}],
    "tools":[{"name":"t","description":"line\nnext \u00e9","input_schema":{"type":"object"}}]})");
  EXPECT_NE(r.chat_json.find(R"("description":"line\nnext \u00e9")"), std::string::npos) << r.chat_json;
  const auto v = parse_json(r.chat_json);
  EXPECT_EQ(v.at("messages").at(0).at("content").as_string(), std::string("a\0b\"c\xF0\x9F\x98\x80", 9));
}

TEST(AnthropicRequest, ClaudeCodeTurnMetadata) {
  const auto r = translate(read_file(fixtures() / "claude_code_turn1.in.json"));
  EXPECT_EQ(r.model, "claude-sonnet-4-5-20250929");
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.omit_thinking) << "display: omitted";
  EXPECT_TRUE(r.tool_names.empty());
  EXPECT_EQ(r.chat_json.find("user_0f9e8d7c"), std::string::npos) << "metadata.user_id must never reach the engine";
  EXPECT_EQ(r.chat_json.find("x-anthropic-billing-header"), std::string::npos);
  EXPECT_EQ(r.chat_json.find("cache_control"), std::string::npos);
  EXPECT_EQ(r.chat_json.find("defer_loading"), std::string::npos);
  EXPECT_EQ(r.chat_json.find("context_management"), std::string::npos);
  // Notes are for logs: names of fields and tools, never what the user wrote.
  bool saw_metadata = false, saw_deferred = false, saw_attribution = false;
  for (const auto& n : r.notes) {
    EXPECT_EQ(n.find("say hi"), std::string::npos);
    EXPECT_EQ(n.find("cch="), std::string::npos);
    saw_metadata = saw_metadata || n.find("metadata") != std::string::npos;
    saw_deferred = saw_deferred || n.find("mcp__ide__getDiagnostics") != std::string::npos;
    saw_attribution = saw_attribution || n.find("attribution") != std::string::npos;
  }
  EXPECT_TRUE(saw_metadata && saw_deferred && saw_attribution);
}

TEST(AnthropicRequest, StopSequencesAndToolNamesForTheAnswer) {
  const auto s = translate(read_file(fixtures() / "sampling_and_thinking.in.json"));
  ASSERT_EQ(s.stop_sequences.size(), 2u);
  EXPECT_EQ(s.stop_sequences[0], "###");
  EXPECT_EQ(s.stop_sequences[1], "\nUser:");
  EXPECT_FALSE(s.stream);
  EXPECT_FALSE(s.omit_thinking);

  const auto l = translate(read_file(fixtures() / "long_tool_name.in.json"));
  ASSERT_EQ(l.tool_names.size(), 1u);
  EXPECT_EQ(l.tool_names[0].engine, "mcp__my_very_long_server_name__a_tool_with_an_extremely_7f97252a");
  EXPECT_EQ(l.tool_names[0].client, "mcp__my_very_long_server_name__a_tool_with_an_extremely_long_descriptive_name");
  EXPECT_EQ(l.client_tool_name("mcp__my_very_long_server_name__a_tool_with_an_extremely_7f97252a"),
            "mcp__my_very_long_server_name__a_tool_with_an_extremely_long_descriptive_name");
  EXPECT_EQ(l.client_tool_name("short"), "short");
}

TEST(AnthropicRequest, ShortenedNamesStayDistinctAndValidUtf8) {
  // Two long names sharing a 55-byte prefix must not collide; a multi-byte character at the cut
  // must not be split.
  const std::string prefix(54, 'a');
  const std::string a = prefix + "\xC3\xA9" + "_first_tool_name_that_is_long";
  const std::string b = prefix + "\xC3\xA9" + "_second_tool_name_that_is_long";
  const auto r = translate(R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":")" + a +
                           R"(","input_schema":{"type":"object"}},{"name":")" + b + R"(","input_schema":{"type":"object"}}]})");
  ASSERT_EQ(r.tool_names.size(), 2u);
  EXPECT_NE(r.tool_names[0].engine, r.tool_names[1].engine);
  for (const auto& n : r.tool_names) {
    EXPECT_LE(n.engine.size(), 64u);
    EXPECT_EQ(n.engine.substr(0, 54), prefix) << "the multi-byte character is dropped whole";
    EXPECT_EQ(n.engine[54], '_');
  }
  EXPECT_TRUE(e2ee::json_text::validate(r.chat_json));
}

TEST(AnthropicRequest, ThinkingControlOptions) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "thinking":{"type":"adaptive"},"output_config":{"effort":"medium"}})";
  RequestOptions o;
  o.thinking = ThinkingControl::template_kwargs;
  auto v = parse_json(translate(body, o).chat_json);
  EXPECT_TRUE(v.as_object().contains("chat_template_kwargs"));
  EXPECT_FALSE(v.as_object().contains("reasoning_effort"));
  o.thinking = ThinkingControl::reasoning_effort;
  v = parse_json(translate(body, o).chat_json);
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
  EXPECT_EQ(v.at("reasoning_effort"), "medium");
  o.thinking = ThinkingControl::none;
  v = parse_json(translate(body, o).chat_json);
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
  EXPECT_FALSE(v.as_object().contains("reasoning_effort"));
  // Effort alone (no thinking field) still reaches effort-aware engines.
  v = parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}],"output_config":{"effort":"low"}})").chat_json);
  EXPECT_EQ(v.at("reasoning_effort"), "low");
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
  // An unknown thinking type is ignored, not a 400 (new Anthropic modes must not break clients).
  v = parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}],"thinking":{"type":"turbo"}})").chat_json);
  EXPECT_FALSE(v.as_object().contains("chat_template_kwargs"));
}

TEST(AnthropicRequest, OtherOptions) {
  const std::string body = read_file(fixtures() / "claude_code_turn1.in.json");
  RequestOptions o;
  o.include_deferred_tools = false;
  o.drop_attribution_block = false;
  const auto r = translate(body, o);
  EXPECT_EQ(r.chat_json.find("mcp__ide__getDiagnostics"), std::string::npos);
  EXPECT_NE(r.chat_json.find("x-anthropic-billing-header"), std::string::npos);

  RequestOptions d;
  d.default_max_tokens = 777;
  EXPECT_EQ(parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", d).chat_json).at("max_tokens"), 777);
  EXPECT_FALSE(parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}]})").chat_json).as_object().contains("max_tokens"));
  EXPECT_EQ(parse_json(translate(R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]})", d).chat_json).at("max_tokens"), 5)
      << "the client's value wins";

  RequestOptions n;
  n.max_tool_name_length = 0;
  const auto long_names = translate(read_file(fixtures() / "long_tool_name.in.json"), n);
  EXPECT_TRUE(long_names.tool_names.empty());
  EXPECT_NE(long_names.chat_json.find("a_tool_with_an_extremely_long_descriptive_name"), std::string::npos);

  RequestOptions h;
  h.forward_thinking_history = false;
  EXPECT_EQ(translate(read_file(fixtures() / "thinking_history.in.json"), h).chat_json.find("reasoning_content"), std::string::npos);

  RequestOptions p;
  p.continue_final_assistant = false;
  EXPECT_EQ(translate(read_file(fixtures() / "prefill.in.json"), p).chat_json.find("continue_final_message"), std::string::npos);

  RequestOptions f;
  f.fallback_id = "req123";
  EXPECT_EQ(translate(R"({"model":"m","messages":[{"role":"user","content":"x"}]})", f).fallback_id, "req123");
}

TEST(AnthropicRequest, SignaturesAndRedactedThinkingNeverLeave) {
  const auto r = translate(read_file(fixtures() / "tool_round_trip.in.json"));
  EXPECT_EQ(r.chat_json.find("secret-signature"), std::string::npos);
  const auto h = translate(read_file(fixtures() / "thinking_history.in.json"));
  EXPECT_EQ(h.chat_json.find("EmwKAhgB"), std::string::npos);
  EXPECT_EQ(h.chat_json.find("sig"), std::string::npos);
}

TEST(AnthropicRequest, EmptyFinalAssistantIsNotAPrefill) {
  const auto r = translate(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":[{"type":"redacted_thinking","data":"abc"}]}]})");
  const auto v = parse_json(r.chat_json);
  EXPECT_EQ(v.at("messages").as_array().size(), 1u);
  EXPECT_FALSE(v.as_object().contains("continue_final_message"));
}

TEST(AnthropicRequest, SystemMessageAfterFinalAssistantKeepsThePrefill) {
  const auto v = parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":"Sure:"},{"role":"system","content":"be brief"}]})").chat_json);
  EXPECT_EQ(v.at("continue_final_message"), true);
  EXPECT_EQ(v.at("messages").at(0).at("content"), "be brief");
}

TEST(AnthropicRequest, StreamAsksForUsage) {
  const auto v = parse_json(translate(R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})").chat_json);
  EXPECT_EQ(v.at("stream"), true);
  EXPECT_EQ(v.at("stream_options").at("include_usage"), true);
  const auto n = parse_json(translate(R"({"model":"m","stream":false,"messages":[{"role":"user","content":"x"}]})").chat_json);
  EXPECT_FALSE(n.as_object().contains("stream"));
  EXPECT_FALSE(n.as_object().contains("stream_options"));
}

TEST(AnthropicRequest, LocalTokenEstimate) {
  // The chat body for this request is {"model":"m","messages":[{"role":"user","content":"Hi"}]}:
  // 57 bytes → ceil(57 / 4) = 15.
  const auto r = translate(R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_EQ(r.chat_json, R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})");
  EXPECT_EQ(r.estimated_input_tokens, 15);
  // Image data does not count by size: 1,600 per image instead.
  const std::string big(40000, 'A');
  const auto i = translate(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":")" +
                           big + R"("}}]}]})");
  EXPECT_GE(i.estimated_input_tokens, 1600);
  EXPECT_LT(i.estimated_input_tokens, 1650);
}

struct Bad {
  const char* body;
  const char* needle;  // a part of the message that tells the client what to fix
  const char* code;
};

TEST(AnthropicRequest, BadInputIsAClear400) {
  const Bad cases[] = {
      {"", "not valid JSON", "invalid_json"},
      {"{\"model\":", "not valid JSON", "invalid_json"},
      {"[]", "must be a JSON object", "invalid_request"},
      {R"({"messages":[{"role":"user","content":"x"}]})", "model", "invalid_request"},
      {R"({"model":5,"messages":[{"role":"user","content":"x"}]})", "model", "invalid_request"},
      {R"({"model":""," messages":[]})", "model", "invalid_request"},
      {R"({"model":"m"})", "messages", "invalid_request"},
      {R"({"model":"m","messages":{}})", "messages", "invalid_request"},
      {R"({"model":"m","messages":[]})", "at least one message", "invalid_request"},
      {R"({"model":"m","messages":["hi"]})", "messages.0", "invalid_request"},
      {R"({"model":"m","messages":[{"content":"x"}]})", "messages.0.role", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"tool","content":"x"}]})", "messages.0.role", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":5}]})", "messages.0.content", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":null}]})", "messages.0.content", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"video","data":"SECRET"}]}]})", "'video'", "unsupported_content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"text":"SECRET"}]}]})", "messages.0.content.0.type", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":["SECRET"]}]})", "messages.0.content.0", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":7}]}]})", "messages.0.content.0.text", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AAAA"}}]}]})", "media_type", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]})", "file_id", "unsupported_content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image"}]}]})", "source", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}]}]})", "PDF", "unsupported_content"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","content":"SECRET"}]}]})", "toolu_9", "orphan_tool_result"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"b","content":"x"}]}]})", "'b'", "orphan_tool_result"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"x"}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"a","content":"again"}]}]})", "messages.2.content.0", "orphan_tool_result"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]})", "tool_use_id", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]}]})", "assistant", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"u"}}]}]})", "'image'", "unsupported_content"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]})", "messages.0.content.0.id", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","input":{}}]}]})", "messages.0.content.0.name", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":[1]}]}]})", "input", "invalid_request"},
      {R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})", "max_tokens", "invalid_request"},
      {R"({"model":"m","max_tokens":-5,"messages":[{"role":"user","content":"x"}]})", "max_tokens", "invalid_request"},
      {R"({"model":"m","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]})", "max_tokens", "invalid_request"},
      {R"({"model":"m","max_tokens":"100","messages":[{"role":"user","content":"x"}]})", "max_tokens", "invalid_request"},
      {R"({"model":"m","temperature":"hot","messages":[{"role":"user","content":"x"}]})", "temperature", "invalid_request"},
      {R"({"model":"m","top_p":[],"messages":[{"role":"user","content":"x"}]})", "top_p", "invalid_request"},
      {R"({"model":"m","top_k":1.5,"messages":[{"role":"user","content":"x"}]})", "top_k", "invalid_request"},
      {R"({"model":"m","stop_sequences":"###","messages":[{"role":"user","content":"x"}]})", "stop_sequences", "invalid_request"},
      {R"({"model":"m","stop_sequences":[1],"messages":[{"role":"user","content":"x"}]})", "stop_sequences", "invalid_request"},
      {R"({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]})", "stream", "invalid_request"},
      {R"({"model":"m","tools":{},"messages":[{"role":"user","content":"x"}]})", "tools", "invalid_request"},
      {R"({"model":"m","tools":[{"input_schema":{}}],"messages":[{"role":"user","content":"x"}]})", "tools.0.name", "invalid_request"},
      {R"({"model":"m","tools":[{"name":"a","input_schema":"{}"}],"messages":[{"role":"user","content":"x"}]})", "tools.0.input_schema", "invalid_request"},
      {R"({"model":"m","tools":[{"name":"a"}],"tool_choice":{"type":"tool"},"messages":[{"role":"user","content":"x"}]})", "tool_choice.name", "invalid_request"},
      {R"({"model":"m","tools":[{"name":"a"}],"tool_choice":{"type":"tool","name":"b"},"messages":[{"role":"user","content":"x"}]})", "no tool named 'b'", "invalid_request"},
      {R"({"model":"m","tools":[{"name":"a"}],"tool_choice":{"type":"bogus"},"messages":[{"role":"user","content":"x"}]})", "tool_choice.type", "invalid_request"},
      {R"({"model":"m","tool_choice":7,"messages":[{"role":"user","content":"x"}]})", "tool_choice", "invalid_request"},
      {R"({"model":"m","system":5,"messages":[{"role":"user","content":"x"}]})", "system", "invalid_request"},
      {R"({"model":"m","system":[{"type":"image","source":{}}],"messages":[{"role":"user","content":"x"}]})", "system.0", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"system","content":[{"type":"image"}]},{"role":"user","content":"x"}]})", "messages.0.content.0", "invalid_request"},
      {R"({"model":"m","thinking":"on","messages":[{"role":"user","content":"x"}]})", "thinking", "invalid_request"},
      {R"({"model":"m","messages":[{"role":"system","content":"only a system message"}]})", "no user or assistant", "invalid_request"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    const auto e = reject(c.body);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.code, c.code);
    EXPECT_NE(e.message.find(c.needle), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("SECRET"), std::string::npos) << "errors never echo content";
    const auto rendered = parse_json(anthropic_error_json(e));
    EXPECT_EQ(rendered.at("type"), "error");
    EXPECT_EQ(rendered.at("error").at("type"), "invalid_request_error");
  }
}

TEST(AnthropicRequest, DeepNestingIsRejectedNotACrash) {
  std::string deep = R"({"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"name":"a","input_schema":)";
  for (int i = 0; i < 5000; ++i) deep += "[";
  for (int i = 0; i < 5000; ++i) deep += "]";
  deep += "}]}";
  const auto e = reject(deep);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "invalid_json");
}

TEST(AnthropicRequest, ToolResultsComeRightAfterTheirAssistantMessage) {
  // A system message between the call and its result is hoisted, so adjacency still holds.
  const auto v = parse_json(translate(R"({"model":"m","messages":[
    {"role":"user","content":"x"},
    {"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":{}}]},
    {"role":"system","content":"reminder"},
    {"role":"user","content":[{"type":"text","text":"before"},{"type":"tool_result","tool_use_id":"a","content":[]}]}]})").chat_json);
  const auto& m = v.at("messages").as_array();
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].at("role"), "system");
  EXPECT_EQ(m[2].at("role"), "assistant");
  EXPECT_EQ(m[3].at("role"), "tool");
  EXPECT_EQ(m[3].at("content"), "") << "empty result content is an empty string";
  EXPECT_EQ(m[4].at("role"), "user");
  EXPECT_EQ(m[4].at("content"), "before");
}

TEST(AnthropicRequest, ErrorResultWithoutText) {
  const auto v = parse_json(translate(R"({"model":"m","messages":[
    {"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f"}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"a","is_error":true}]}]})").chat_json);
  EXPECT_EQ(v.at("messages").at(0).at("tool_calls").at(0).at("function").at("arguments"), "{}") << "missing input is {}";
  EXPECT_EQ(v.at("messages").at(1).at("content"), "Error");
}

TEST(AnthropicRequest, HostedToolHistoryIsDroppedNotFatal) {
  // A conversation that started on Anthropic's API may carry hosted-tool blocks.
  const auto v = parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"q"}},
      {"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"Found it."}]},
    {"role":"user","content":"thanks"}]})").chat_json);
  EXPECT_EQ(v.at("messages").at(1).at("content"), "Found it.");
  EXPECT_FALSE(v.at("messages").at(1).as_object().contains("tool_calls"));
}

TEST(AnthropicRequest, DuplicateKeysLastWins) {
  const auto r = translate(R"({"model":"first","model":"second","messages":[{"role":"user","content":"x"}]})");
  EXPECT_EQ(r.model, "second");
  EXPECT_EQ(parse_json(r.chat_json).at("model"), "second");
}

}  // namespace

namespace {

TEST(AnthropicRequest, PdfFromAToolIsANoticeNotAFailure) {
  // Claude Code's Read tool returns a PDF as a document block; a 400 here would break every
  // later turn of the session, so the model is told instead.
  const auto r = translate(R"({"model":"m","messages":[
    {"role":"assistant","content":[{"type":"tool_use","id":"r1","name":"Read","input":{"file_path":"a.pdf"}}]},
    {"role":"user","content":[{"type":"tool_result","tool_use_id":"r1","content":[
      {"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}}]}]}]})");
  const auto v = parse_json(r.chat_json);
  EXPECT_EQ(v.at("messages").at(1).at("content"), "[document omitted: this model cannot read PDF or file documents]");
  EXPECT_EQ(r.chat_json.find("JVBER"), std::string::npos);
  EXPECT_FALSE(r.notes.empty());
}

TEST(AnthropicRequest, ForcingAHostedToolIsExplained) {
  const auto e = reject(R"({"model":"m","messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"web_search_20250305","name":"web_search"},{"name":"f"}],"tool_choice":{"type":"tool","name":"web_search"}})");
  EXPECT_EQ(e.status, 400);
  EXPECT_NE(e.message.find("hosted"), std::string::npos) << e.message;
}

TEST(AnthropicRequest, FinalAssistantWithOnlyThinkingIsDropped) {
  const auto v = parse_json(translate(R"({"model":"m","messages":[{"role":"user","content":"x"},
    {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"s"}]}]})").chat_json);
  EXPECT_EQ(v.at("messages").as_array().size(), 1u);
  EXPECT_FALSE(v.as_object().contains("continue_final_message"));
}

}  // namespace

namespace e2ee::api::anthropic {
namespace {

// With thinking.display "omitted", our answers put the reasoning into the thinking block's
// signature; Claude Code echoes the block back and the reasoning must reach the engine again.
TEST(AnthropicRequestOmittedThinking, ReasoningCarriedInOurSignatureReturnsAsReasoningContent) {
  const std::string body =
      R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"q"},)"
      R"({"role":"assistant","content":[{"type":"thinking","thinking":"","signature":"e2ee-proxy-reasoning-v1:c2VjcmV0IHBsYW4="},)"
      R"({"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]},)"
      R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]})";
  auto r = to_chat_request(body, RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<TranslatedRequest>(r));
  const std::string& chat = std::get<TranslatedRequest>(r).chat_json;
  EXPECT_NE(chat.find(R"("reasoning_content":"secret plan")"), std::string::npos) << chat;
  EXPECT_EQ(chat.find("e2ee-proxy-reasoning-v1"), std::string::npos) << "a signature is never forwarded";
  // Anthropic's own (opaque) signatures carry nothing we can read: nothing is invented.
  std::string foreign = body;
  foreign.replace(foreign.find("e2ee-proxy-reasoning-v1:c2VjcmV0IHBsYW4="), 40, "EqQBCkYIBxgCKkDanthropicopaquesignature=");
  auto f = to_chat_request(foreign, RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<TranslatedRequest>(f));
  EXPECT_EQ(std::get<TranslatedRequest>(f).chat_json.find("reasoning_content"), std::string::npos);
}

}  // namespace
}  // namespace e2ee::api::anthropic

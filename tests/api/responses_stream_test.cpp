// chat-completions stream → OpenAI Responses stream: golden fixtures
// (tests/api/fixtures/responses/stream/), a stream-invariant validator run over every stream,
// re-splitting (SSE bytes at every boundary; text deltas at every character boundary), and the
// non-stream translation of the same answer.
//
// Fixture format (one JSON object per file):
//   "request", "options"   the Responses request (and RequestOptions) the stream answers
//   "chunks"               the engine's stream: chat.completion.chunk objects, or "[DONE]"
//   "end"                  "done" / "eof" (the pipeline calls on_done) or "error" (on_error with
//                          "error": {status, type, code, message, retry_after_seconds})
//   "response_base"        the Response object as created; in "expect_events" an object
//                          {"$base": true, k: v…} stands for response_base with k: v… overlaid
//   "expect_events"        the Responses events, hand-written from the Responses streaming
//                          reference and what Codex / openai-node consume.

#include "api/responses/stream_translator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "api/responses/request_translator.hpp"
#include "api/responses/response_translator.hpp"
#include "support/fixtures.hpp"

namespace e2ee::api::responses {
namespace {

namespace json = boost::json;
using e2ee::test::read_file;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Fixture plumbing

fs::path fixtures_dir() {
#ifdef E2EE_API_FIXTURES_DIR
  return fs::path(E2EE_API_FIXTURES_DIR) / "responses";
#else
  return fs::path(__FILE__).parent_path() / "fixtures" / "responses";
#endif
}

RequestOptions options_from(const json::object& fixture) {
  RequestOptions o;
  o.id_token = "T";
  o.created_at = 1700000000;
  if (const auto* v = fixture.if_contains("options")) {
    const auto& opt = v->as_object();
    if (const auto* x = opt.if_contains("reasoning_output"))
      o.reasoning_output = x->as_string() == "summary" ? ReasoningOutput::summary : ReasoningOutput::raw_text;
    if (const auto* x = opt.if_contains("split_think_tags")) o.split_think_tags = x->as_bool();
  }
  return o;
}

TranslatedRequest translate(const json::object& fixture) {
  auto r = to_chat_request(json::serialize(fixture.at("request")), options_from(fixture));
  if (std::holds_alternative<ApiError>(r)) {
    ADD_FAILURE() << "fixture request rejected: " << std::get<ApiError>(r).message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

ApiError error_from(const json::object& fixture) {
  ApiError e;
  const auto& o = fixture.at("error").as_object();
  e.status = static_cast<int>(o.at("status").as_int64());
  if (const auto* v = o.if_contains("type")) e.type = std::string(v->as_string());
  if (const auto* v = o.if_contains("code")) e.code = std::string(v->as_string());
  e.message = std::string(o.at("message").as_string());
  if (const auto* v = o.if_contains("retry_after_seconds")) e.retry_after_seconds = static_cast<int>(v->as_int64());
  return e;
}

std::vector<std::string> chunk_datas(const json::object& fixture) {
  std::vector<std::string> out;
  for (const auto& c : fixture.at("chunks").as_array())
    out.push_back(c.is_string() ? std::string(c.as_string()) : json::serialize(c));
  return out;
}

// "$base" expansion for expected events.
json::value expand(const json::value& v, const json::object& base) {
  if (v.is_object()) {
    const auto& o = v.as_object();
    json::object out;
    if (o.contains("$base")) out = base;
    for (const auto& kv : o)
      if (kv.key() != "$base") out[kv.key()] = expand(kv.value(), base);
    return out;
  }
  if (v.is_array()) {
    json::array out;
    for (const auto& x : v.as_array()) out.push_back(expand(x, base));
    return out;
  }
  return v;
}

// A minimal SSE reader (data lines, blank-line dispatch): enough to replay an engine stream
// split at arbitrary byte boundaries.
class MiniSse {
 public:
  void feed(std::string_view bytes, std::vector<std::string>& datas) {
    buffer_.append(bytes);
    std::size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) {
        if (has_data_) datas.push_back(data_);
        data_.clear();
        has_data_ = false;
      } else if (line.rfind("data:", 0) == 0) {
        std::string value = line.substr(5);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (has_data_) data_ += '\n';
        data_ += value;
        has_data_ = true;
      }
    }
  }

 private:
  std::string buffer_, data_;
  bool has_data_ = false;
};

std::string sse_bytes(const std::vector<std::string>& datas) {
  std::string out;
  for (const auto& d : datas) out += "data: " + d + "\n\n";
  return out;
}

void append(OutEvents& all, OutEvents more) {
  for (auto& e : more) all.push_back(std::move(e));
}

struct Ending {
  bool error = false;
  ApiError e;
};

Ending ending_of(const json::object& fixture) {
  Ending end;
  if (fixture.at("end").as_string() == "error") {
    end.error = true;
    end.e = error_from(fixture);
  }
  return end;
}

// Drives a translator the way the proxy pipeline does: "[DONE]" → on_done, other data →
// on_chunk, then on_done (end of body) or on_error.
OutEvents run_pieces(const TranslatedRequest& t, const std::vector<std::string_view>& pieces, const Ending& end) {
  StreamTranslator s(t);
  MiniSse sse;
  OutEvents all;
  for (auto piece : pieces) {
    std::vector<std::string> datas;
    sse.feed(piece, datas);
    for (const auto& d : datas) append(all, d == "[DONE]" ? s.on_done() : s.on_chunk(d));
  }
  append(all, end.error ? s.on_error(end.e) : s.on_done());
  EXPECT_TRUE(s.finished());
  // Nothing may follow the terminal event, whatever the pipeline still calls.
  EXPECT_TRUE(s.on_chunk(R"({"choices":[{"index":0,"delta":{"content":"late"}}]})").empty());
  EXPECT_TRUE(s.on_done().empty());
  EXPECT_TRUE(s.on_error(upstream_error(500, "x", "late")).empty());
  EXPECT_TRUE(s.start().empty());
  return all;
}

OutEvents run_datas(const TranslatedRequest& t, const std::vector<std::string>& datas, const Ending& end) {
  const std::string bytes = sse_bytes(datas);
  return run_pieces(t, {bytes}, end);
}

// ---------------------------------------------------------------------------------------------
// The stream-invariant validator. Returns every violation found (empty = valid).

std::vector<std::string> validate(const OutEvents& events) {
  std::vector<std::string> errs;
  auto bad = [&](std::size_t i, const std::string& m) { errs.push_back("event " + std::to_string(i) + ": " + m); };
  struct ItemState {
    json::object added, done;
    std::string id, type;
    std::string text;      // accumulated deltas of the item's one text field
    bool part_added = false, text_done = false, part_done = false, is_done = false;
  };
  std::vector<ItemState> items;
  std::int64_t last_seq = -1;
  int terminals = 0;
  std::string response_id;
  static const std::set<std::string> kFailureCodes = {"context_length_exceeded", "rate_limit_exceeded",
                                                      "insufficient_quota", "usage_not_included", "server_error"};
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    json::error_code ec;
    json::value v = json::parse(ev.data, ec);
    if (ec || !v.is_object()) {
      bad(i, "data is not a JSON object");
      continue;
    }
    const auto& d = v.as_object();
    const auto* type_v = d.if_contains("type");
    if (!type_v || !type_v->is_string()) {
      bad(i, "no type");
      continue;
    }
    const std::string type(type_v->as_string());
    if (type != ev.event) bad(i, "SSE event name '" + ev.event + "' differs from type '" + type + "'");
    const auto* seq = d.if_contains("sequence_number");
    if (!seq || !seq->is_int64()) {
      bad(i, "no integer sequence_number");
    } else {
      if (i == 0 && seq->as_int64() != 0 && seq->as_int64() != 1) bad(i, "sequence_number must start at 0 or 1");
      if (i > 0 && seq->as_int64() != last_seq + 1) bad(i, "sequence_number not strictly consecutive");
      last_seq = seq->as_int64();
    }
    if (terminals > 0) bad(i, "event after the terminal event");

    if (type == "response.created" || type == "response.in_progress") {
      if (i != (type == "response.created" ? 0u : 1u)) bad(i, type + " out of place");
      const auto* r = d.if_contains("response");
      if (!r || !r->is_object()) {
        bad(i, "no response object");
        continue;
      }
      const auto& ro = r->as_object();
      if (ro.at("status") != "in_progress") bad(i, "status must be in_progress");
      if (!ro.at("output").as_array().empty()) bad(i, "output must be empty");
      if (type == "response.created") response_id = std::string(ro.at("id").as_string());
      else if (ro.at("id") != json::value(response_id)) bad(i, "response id changed");
      continue;
    }
    if (i < 2) bad(i, "the stream must open with response.created, response.in_progress");

    const bool is_terminal =
        type == "response.completed" || type == "response.incomplete" || type == "response.failed";
    if (is_terminal) {
      ++terminals;
      const auto* r = d.if_contains("response");
      if (!r || !r->is_object()) {
        bad(i, "terminal without response");
        continue;
      }
      const auto& ro = r->as_object();
      if (ro.at("id") != json::value(response_id)) bad(i, "terminal response id differs from response.created");
      const std::string want = type == "response.completed" ? "completed" : type == "response.incomplete" ? "incomplete" : "failed";
      if (ro.at("status") != json::value(want)) bad(i, "status does not match " + type);
      const auto& output = ro.at("output").as_array();
      if (output.size() != items.size()) bad(i, "final output has " + std::to_string(output.size()) + " items, " +
                                                    std::to_string(items.size()) + " were added");
      for (std::size_t k = 0; k < std::min(output.size(), items.size()); ++k) {
        if (items[k].is_done) {
          if (output[k] != json::value(items[k].done)) bad(i, "final output[" + std::to_string(k) + "] differs from its output_item.done");
        } else if (type == "response.failed" && (items[k].type == "function_call" || items[k].type == "custom_tool_call")) {
          // A tool call cut off by a failure is never completed; it is listed as incomplete.
          if (output[k].as_object().at("status") != "incomplete" || output[k].as_object().at("id") != json::value(items[k].id))
            bad(i, "open tool call in failed output must be the same item with status incomplete");
        } else {
          bad(i, "item " + std::to_string(k) + " was added but never done");
        }
      }
      if (type == "response.incomplete") {
        const auto& det = ro.at("incomplete_details");
        if (!det.is_object() || (det.as_object().at("reason") != "max_output_tokens" &&
                                 det.as_object().at("reason") != "content_filter"))
          bad(i, "incomplete_details.reason missing or unknown");
      }
      if (type == "response.failed") {
        const auto& err = ro.at("error");
        if (!err.is_object() || !err.as_object().at("code").is_string() ||
            !kFailureCodes.count(std::string(err.as_object().at("code").as_string())) ||
            err.as_object().at("message").as_string().empty())
          bad(i, "failed response needs error{code Codex knows, message}");
      } else if (!ro.at("error").is_null()) {
        bad(i, "error must be null unless failed");
      }
      const auto& usage = ro.at("usage");
      if (!usage.is_null()) {
        for (const char* k : {"input_tokens", "output_tokens", "total_tokens"})
          if (!usage.as_object().at(k).is_int64()) bad(i, std::string("usage.") + k + " not an integer");
        if (!usage.as_object().at("input_tokens_details").as_object().at("cached_tokens").is_int64() ||
            !usage.as_object().at("output_tokens_details").as_object().at("reasoning_tokens").is_int64())
          bad(i, "usage details missing");
      }
      continue;
    }

    if (type == "response.output_item.added") {
      const auto& item = d.at("item").as_object();
      if (d.at("output_index") != json::value(items.size())) bad(i, "output_index not the next distinct index");
      ItemState s;
      s.added = item;
      s.id = std::string(item.at("id").as_string());
      s.type = std::string(item.at("type").as_string());
      for (const auto& other : items)
        if (other.id == s.id) bad(i, "duplicate item id");
      if (s.id.empty()) bad(i, "empty item id");
      if (item.at("status") != "in_progress") bad(i, "added item not in_progress");
      if (s.type == "message" && !item.at("content").as_array().empty()) bad(i, "added message must have no content");
      if ((s.type == "function_call" || s.type == "custom_tool_call") &&
          (!item.at("call_id").is_string() || item.at("call_id").as_string().empty() || !item.at("name").is_string()))
        bad(i, "added tool call needs call_id and name");
      if (s.type != "message" && s.type != "reasoning" && s.type != "function_call" && s.type != "custom_tool_call")
        bad(i, "unexpected item type " + s.type);
      items.push_back(std::move(s));
      continue;
    }

    // Every other event refers to an item that was added and is not done.
    const auto* oi = d.if_contains("output_index");
    if (!oi || !oi->is_int64() || oi->as_int64() < 0 || static_cast<std::size_t>(oi->as_int64()) >= items.size()) {
      bad(i, type + " for an output_index that was never added");
      continue;
    }
    auto& it = items[static_cast<std::size_t>(oi->as_int64())];
    if (it.is_done) bad(i, type + " after the item's output_item.done");
    if (type != "response.output_item.done" && d.at("item_id") != json::value(it.id)) bad(i, "item_id does not match output_index");
    auto index_is_zero = [&](const char* key) {
      if (d.at(key) != json::value(0)) bad(i, std::string(key) + " must be 0");
    };
    auto want_type = [&](std::initializer_list<const char*> types) {
      for (const char* t : types)
        if (it.type == t) return;
      bad(i, type + " on a " + it.type + " item");
    };
    if (type == "response.content_part.added" || type == "response.reasoning_summary_part.added") {
      want_type({"message", "reasoning"});
      index_is_zero(type == "response.content_part.added" ? "content_index" : "summary_index");
      if (it.part_added) bad(i, "part added twice");
      if (d.at("part").as_object().at("text") != "") bad(i, "part must start empty");
      it.part_added = true;
    } else if (type == "response.output_text.delta" || type == "response.reasoning_text.delta" ||
               type == "response.reasoning_summary_text.delta") {
      want_type({type == "response.output_text.delta" ? "message" : "reasoning"});
      index_is_zero(type == "response.reasoning_summary_text.delta" ? "summary_index" : "content_index");
      if (!it.part_added || it.text_done) bad(i, "text delta outside an open part");
      it.text += std::string(d.at("delta").as_string());
    } else if (type == "response.output_text.done" || type == "response.reasoning_text.done" ||
               type == "response.reasoning_summary_text.done") {
      if (d.at("text") != json::value(it.text)) bad(i, "done text differs from the concatenated deltas");
      it.text_done = true;
    } else if (type == "response.content_part.done" || type == "response.reasoning_summary_part.done") {
      if (!it.text_done) bad(i, "part done before its text done");
      if (d.at("part").as_object().at("text") != json::value(it.text)) bad(i, "part text differs from the deltas");
      it.part_done = true;
    } else if (type == "response.function_call_arguments.delta" || type == "response.custom_tool_call_input.delta") {
      want_type({type == "response.function_call_arguments.delta" ? "function_call" : "custom_tool_call"});
      if (it.text_done) bad(i, "delta after done");
      it.text += std::string(d.at("delta").as_string());
    } else if (type == "response.function_call_arguments.done") {
      want_type({"function_call"});
      if (d.at("arguments") != json::value(it.text)) bad(i, "arguments differ from the concatenated deltas");
      if (d.at("name") != it.added.at("name")) bad(i, "name differs from the added item");
      it.text_done = true;
    } else if (type == "response.custom_tool_call_input.done") {
      want_type({"custom_tool_call"});
      if (d.at("input") != json::value(it.text)) bad(i, "input differs from the concatenated deltas");
      it.text_done = true;
    } else if (type == "response.output_item.done") {
      const auto& item = d.at("item").as_object();
      if (item.at("id") != json::value(it.id) || item.at("type") != json::value(it.type)) bad(i, "done item is not the added item");
      if (item.at("status") != "completed" && item.at("status") != "incomplete") bad(i, "done item status");
      if (!it.text_done) bad(i, "item done before its text/arguments done");
      if (it.type == "message") {
        if (!it.part_done || item.at("content").as_array().size() != 1 ||
            item.at("content").as_array()[0].as_object().at("text") != json::value(it.text))
          bad(i, "done message content differs from the deltas");
      } else if (it.type == "reasoning") {
        const auto& parts = item.contains("content") ? item.at("content").as_array() : item.at("summary").as_array();
        if (!it.part_done || parts.size() != 1 || parts[0].as_object().at("text") != json::value(it.text))
          bad(i, "done reasoning text differs from the deltas");
      } else if (it.type == "function_call") {
        if (item.at("arguments") != json::value(it.text) || item.at("call_id") != it.added.at("call_id") ||
            item.at("name") != it.added.at("name"))
          bad(i, "done function_call differs from what was streamed");
      } else if (it.type == "custom_tool_call") {
        if (item.at("input") != json::value(it.text) || item.at("call_id") != it.added.at("call_id"))
          bad(i, "done custom_tool_call differs from what was streamed");
      }
      it.done = item;
      it.is_done = true;
    } else {
      // openai-node's accumulator throws on event types it does not know.
      bad(i, "unknown event type " + type);
    }
  }
  if (events.size() < 3) errs.push_back("stream too short");
  if (terminals != 1) errs.push_back("expected exactly one terminal event, got " + std::to_string(terminals));
  return errs;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "  " + x + "\n";
  return s;
}

std::string describe(const OutEvents& events) {
  std::string s;
  for (const auto& e : events) s += e.data + "\n";
  return s;
}

const json::object& terminal_response(const OutEvents& events) {
  static const json::object empty;
  if (events.empty()) return empty;
  static thread_local json::value last;
  last = json::parse(events.back().data);
  return last.as_object().at("response").as_object();
}

// ---------------------------------------------------------------------------------------------
// Fixture tests

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fixtures_dir() / "stream"))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

json::object load(const std::string& name) {
  return json::parse(read_file(fixtures_dir() / "stream" / (name + ".json"))).as_object();
}

class StreamFixture : public testing::TestWithParam<std::string> {};

TEST_P(StreamFixture, EmitsTheExpectedEvents) {
  const auto fixture = load(GetParam());
  const auto t = translate(fixture);
  const auto events = run_datas(t, chunk_datas(fixture), ending_of(fixture));
  const auto errs = validate(events);
  EXPECT_TRUE(errs.empty()) << join(errs) << describe(events);

  const auto& base = fixture.at("response_base").as_object();
  const auto& expected = fixture.at("expect_events").as_array();
  ASSERT_EQ(events.size(), expected.size()) << describe(events);
  for (std::size_t i = 0; i < events.size(); ++i) {
    const json::value want = expand(expected[i], base);
    const json::value got = json::parse(events[i].data);
    EXPECT_EQ(events[i].event, std::string(want.as_object().at("type").as_string()));
    EXPECT_EQ(got, want) << "event " << i << "\nactual:   " << events[i].data << "\nexpected: " << json::serialize(want);
  }
}

// The engine's bytes may arrive cut anywhere: every 2-piece split, and byte by byte, must give
// exactly the events of the unsplit stream.
TEST_P(StreamFixture, EveryByteSplitGivesIdenticalEvents) {
  const auto fixture = load(GetParam());
  const auto t = translate(fixture);
  const auto end = ending_of(fixture);
  const std::string bytes = sse_bytes(chunk_datas(fixture));
  const auto whole = run_pieces(t, {bytes}, end);
  auto same = [&](const OutEvents& other) {
    if (other.size() != whole.size()) return false;
    for (std::size_t i = 0; i < whole.size(); ++i)
      if (other[i].event != whole[i].event || other[i].data != whole[i].data) return false;
    return true;
  };
  for (std::size_t k = 0; k <= bytes.size(); ++k) {
    std::string_view all(bytes);
    ASSERT_TRUE(same(run_pieces(t, {all.substr(0, k), all.substr(k)}, end))) << "split at byte " << k;
  }
  std::vector<std::string_view> singles;
  for (std::size_t k = 0; k < bytes.size(); ++k) singles.push_back(std::string_view(bytes).substr(k, 1));
  EXPECT_TRUE(same(run_pieces(t, singles, end))) << "byte-by-byte";
}

// Engines cut text wherever their tokens end. Splitting any one text delta (content, reasoning,
// tool arguments) in two at every character boundary changes the deltas but must leave a valid
// stream with the same final Response.
TEST_P(StreamFixture, ResplitTextDeltasGiveTheSameResponse) {
  const auto fixture = load(GetParam());
  const auto t = translate(fixture);
  const auto end = ending_of(fixture);
  const auto datas = chunk_datas(fixture);
  const auto reference = run_datas(t, datas, end);
  const json::object want = terminal_response(reference);
  const auto& chunks = fixture.at("chunks").as_array();
  int variants = 0;
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    if (!chunks[c].is_object()) continue;
    const auto* choices = chunks[c].as_object().if_contains("choices");
    if (!choices || choices->as_array().empty()) continue;
    const auto& delta = choices->as_array()[0].as_object().at("delta").as_object();
    // (field, tool index or -1)
    std::vector<std::pair<std::string, int>> fields;
    for (const char* f : {"content", "reasoning_content", "reasoning", "refusal"})
      if (delta.contains(f) && delta.at(f).is_string()) fields.push_back({f, -1});
    if (delta.contains("tool_calls"))
      for (std::size_t k = 0; k < delta.at("tool_calls").as_array().size(); ++k) fields.push_back({"arguments", static_cast<int>(k)});
    if (fields.size() != 1) continue;  // only chunks with one text field (keeps the order unambiguous)
    const auto [field, tool] = fields[0];
    json::value original = chunks[c];
    auto text_of = [&](json::value& chunk) -> json::string* {
      auto& d = chunk.as_object().at("choices").as_array()[0].as_object().at("delta").as_object();
      if (tool < 0) return &d.at(field).as_string();
      auto& fn = d.at("tool_calls").as_array()[static_cast<std::size_t>(tool)].as_object().at("function").as_object();
      return fn.contains("arguments") ? &fn.at("arguments").as_string() : nullptr;
    };
    json::string* full = text_of(original);
    if (!full) continue;
    const std::string text(full->data(), full->size());
    for (std::size_t k = 1; k < text.size(); ++k) {
      if ((static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      // First piece: the chunk with the text cut at k and no finish/usage; second: the rest
      // of the text with the original finish_reason and usage.
      json::value first = original;
      *text_of(first) = text.substr(0, k);
      first.as_object().at("choices").as_array()[0].as_object()["finish_reason"] = nullptr;
      first.as_object().erase("usage");
      json::object rest_delta;
      if (tool < 0) {
        rest_delta[field] = text.substr(k);
      } else {
        const auto& call = delta.at("tool_calls").as_array()[static_cast<std::size_t>(tool)].as_object();
        rest_delta["tool_calls"] = json::array{json::object{
            {"index", call.at("index")}, {"function", json::object{{"arguments", text.substr(k)}}}}};
      }
      json::object second{{"choices", json::array{json::object{
                                          {"index", 0},
                                          {"delta", rest_delta},
                                          {"finish_reason", choices->as_array()[0].as_object().at("finish_reason")}}}}};
      if (const auto* u = chunks[c].as_object().if_contains("usage")) second["usage"] = *u;
      std::vector<std::string> variant(datas.begin(), datas.begin() + static_cast<long>(c));
      variant.push_back(json::serialize(first));
      variant.push_back(json::serialize(second));
      variant.insert(variant.end(), datas.begin() + static_cast<long>(c) + 1, datas.end());
      const auto events = run_datas(t, variant, end);
      const auto errs = validate(events);
      ASSERT_TRUE(errs.empty()) << "chunk " << c << " split at " << k << "\n" << join(errs) << describe(events);
      ASSERT_EQ(json::value(terminal_response(events)), json::value(want))
          << "chunk " << c << " split at " << k << "\n" << describe(events);
      ++variants;
    }
  }
  RecordProperty("variants", variants);
}

// The non-stream translation of the same answer (the chunks accumulated into one
// chat.completion) is the stream's terminal Response: same ids, items, statuses and usage.
// Fixtures whose stream ends without a transport failure or an in-band engine error: those have
// a non-stream twin.
std::vector<std::string> answer_fixture_names() {
  std::vector<std::string> names;
  for (const auto& name : fixture_names()) {
    const auto fixture = load(name);
    bool in_band_error = false;
    for (const auto& c : fixture.at("chunks").as_array())
      if (c.is_object() && c.as_object().contains("object") && c.as_object().at("object") == "error") in_band_error = true;
    if (!ending_of(fixture).error && !in_band_error) names.push_back(name);
  }
  return names;
}

class NonStreamTwin : public testing::TestWithParam<std::string> {};

TEST_P(NonStreamTwin, AnswerMatchesTheStream) {
  const auto fixture = load(GetParam());
  const auto t = translate(fixture);
  std::string content, reasoning;
  bool has_content = false;
  json::value finish = nullptr;
  json::value usage = nullptr;
  std::vector<int> order;
  std::map<int, json::object> calls;  // chat index → {id, type, function{name, arguments}}
  for (const auto& c : fixture.at("chunks").as_array()) {
    if (!c.is_object()) continue;
    const auto& o = c.as_object();
    if (const auto* u = o.if_contains("usage")) usage = *u;
    for (const auto& ch : o.at("choices").as_array()) {
      const auto& d = ch.as_object().at("delta").as_object();
      for (const char* f : {"content", "refusal"})
        if (const auto* x = d.if_contains(f); x && x->is_string()) {
          content += std::string(x->as_string());
          has_content = true;
        }
      for (const char* f : {"reasoning_content", "reasoning"})
        if (const auto* x = d.if_contains(f); x && x->is_string()) reasoning += std::string(x->as_string());
      if (const auto* tcs = d.if_contains("tool_calls")) {
        for (const auto& tc : tcs->as_array()) {
          const auto& call = tc.as_object();
          int index = static_cast<int>(call.at("index").as_int64());
          if (!calls.count(index)) {
            order.push_back(index);
            calls[index] = json::object{{"id", ""}, {"type", "function"}, {"function", json::object{{"name", ""}, {"arguments", ""}}}};
          }
          auto& acc = calls[index];
          if (const auto* id = call.if_contains("id"); id && acc["id"] == "") acc["id"] = *id;
          const auto& fn = call.at("function").as_object();
          auto& afn = acc["function"].as_object();
          if (const auto* n = fn.if_contains("name"); n && afn["name"] == "") afn["name"] = *n;
          if (const auto* a = fn.if_contains("arguments"))
            afn["arguments"] = std::string(afn["arguments"].as_string()) + std::string(a->as_string());
        }
      }
      if (!ch.as_object().at("finish_reason").is_null()) finish = ch.as_object().at("finish_reason");
    }
  }
  json::object message{{"role", "assistant"}, {"content", has_content ? json::value(content) : json::value(nullptr)}};
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!order.empty()) {
    json::array tcs;
    for (int i : order) {
      auto call = calls[i];
      if (call["id"] == "") call.erase("id");
      tcs.push_back(call);
    }
    message["tool_calls"] = tcs;
  }
  json::object completion{{"id", "chatcmpl-1"}, {"object", "chat.completion"}, {"created", 1}, {"model", "m"},
                          {"choices", json::array{json::object{{"index", 0}, {"message", message}, {"finish_reason", finish}}}}};
  if (!usage.is_null()) completion["usage"] = usage;

  const auto stream = run_datas(t, chunk_datas(fixture), ending_of(fixture));
  const auto result = to_response(json::serialize(completion), t);
  ASSERT_TRUE(std::holds_alternative<std::string>(result)) << std::get<ApiError>(result).message;
  EXPECT_EQ(json::parse(std::get<std::string>(result)), json::value(terminal_response(stream)))
      << "non-stream: " << std::get<std::string>(result) << "\nstream:     " << stream.back().data;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StreamFixture, testing::ValuesIn(fixture_names()),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

INSTANTIATE_TEST_SUITE_P(Fixtures, NonStreamTwin, testing::ValuesIn(answer_fixture_names()),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(StreamFixtures, ArePresent) {
  EXPECT_GE(fixture_names().size(), 19u);
  EXPECT_GE(answer_fixture_names().size(), 14u);
}

// ---------------------------------------------------------------------------------------------
// The validator must be able to fail: each broken stream below is rejected for its reason.

OutEvents events_of(std::initializer_list<const char*> datas) {
  OutEvents out;
  for (const char* d : datas) out.push_back(OutEvent{std::string(json::parse(d).as_object().at("type").as_string()), d});
  return out;
}

constexpr const char* kCreated = R"({"type":"response.created","sequence_number":0,"response":{"id":"r","status":"in_progress","output":[]}})";
constexpr const char* kInProgress = R"({"type":"response.in_progress","sequence_number":1,"response":{"id":"r","status":"in_progress","output":[]}})";

bool rejects(const OutEvents& events, const std::string& reason) {
  for (const auto& e : validate(events))
    if (e.find(reason) != std::string::npos) return true;
  ADD_FAILURE() << "not rejected for '" << reason << "'; errors:\n" << join(validate(events));
  return false;
}

TEST(StreamValidator, AcceptsAMinimalStream) {
  auto events = events_of({kCreated, kInProgress,
                           R"({"type":"response.completed","sequence_number":2,"response":{"id":"r","status":"completed","output":[],"error":null,"usage":null}})"});
  EXPECT_TRUE(validate(events).empty()) << join(validate(events));
}

TEST(StreamValidator, RejectsMissingTerminal) {
  EXPECT_TRUE(rejects(events_of({kCreated, kInProgress}), "exactly one terminal"));
}

TEST(StreamValidator, RejectsSequenceGap) {
  EXPECT_TRUE(rejects(events_of({kCreated, kInProgress,
                                 R"({"type":"response.completed","sequence_number":5,"response":{"id":"r","status":"completed","output":[],"error":null,"usage":null}})"}),
                      "strictly consecutive"));
}

TEST(StreamValidator, RejectsDeltaForAnItemNeverAdded) {
  EXPECT_TRUE(rejects(events_of({kCreated, kInProgress,
                                 R"({"type":"response.output_text.delta","sequence_number":2,"item_id":"m","output_index":0,"content_index":0,"delta":"x"})"}),
                      "never added"));
}

TEST(StreamValidator, RejectsAddedButNeverDone) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"m","type":"message","status":"in_progress","role":"assistant","content":[]}})",
                 R"({"type":"response.completed","sequence_number":3,"response":{"id":"r","status":"completed","output":[{"id":"m"}],"error":null,"usage":null}})"}),
      "never done"));
}

TEST(StreamValidator, RejectsDoneTextThatDiffersFromDeltas) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"m","type":"message","status":"in_progress","role":"assistant","content":[]}})",
                 R"({"type":"response.content_part.added","sequence_number":3,"item_id":"m","output_index":0,"content_index":0,"part":{"type":"output_text","text":""}})",
                 R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"ab"})",
                 R"({"type":"response.output_text.done","sequence_number":5,"item_id":"m","output_index":0,"content_index":0,"text":"abc"})"}),
      "differs from the concatenated deltas"));
}

TEST(StreamValidator, RejectsSkippedOutputIndex) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.output_item.added","sequence_number":2,"output_index":1,"item":{"id":"m","type":"message","status":"in_progress","role":"assistant","content":[]}})"}),
      "next distinct index"));
}

TEST(StreamValidator, RejectsEventsAfterTheTerminal) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.completed","sequence_number":2,"response":{"id":"r","status":"completed","output":[],"error":null,"usage":null}})",
                 R"({"type":"response.completed","sequence_number":3,"response":{"id":"r","status":"completed","output":[],"error":null,"usage":null}})"}),
      "after the terminal"));
}

TEST(StreamValidator, RejectsFinalOutputThatDiffersFromDoneItems) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"f","type":"function_call","status":"in_progress","call_id":"c","name":"n","arguments":""}})",
                 R"({"type":"response.function_call_arguments.done","sequence_number":3,"item_id":"f","output_index":0,"name":"n","arguments":""})",
                 R"({"type":"response.output_item.done","sequence_number":4,"output_index":0,"item":{"id":"f","type":"function_call","status":"completed","call_id":"c","name":"n","arguments":""}})",
                 R"({"type":"response.completed","sequence_number":5,"response":{"id":"r","status":"completed","output":[{"id":"f","type":"function_call","status":"completed","call_id":"c","name":"n","arguments":"{}"}],"error":null,"usage":null}})"}),
      "differs from its output_item.done"));
}

TEST(StreamValidator, RejectsUnknownEventTypesAndFailureCodes) {
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"m","type":"message","status":"in_progress","role":"assistant","content":[]}})",
                 R"({"type":"response.output_text.annotation.added","sequence_number":3,"output_index":0,"item_id":"m"})"}),
      "unknown event type"));
  EXPECT_TRUE(rejects(
      events_of({kCreated, kInProgress,
                 R"({"type":"response.failed","sequence_number":2,"response":{"id":"r","status":"failed","output":[],"error":{"code":"oops","message":"m"},"usage":null}})"}),
      "error{code Codex knows"));
}

TEST(StreamValidator, RejectsInvalidJson) {
  OutEvents events = events_of({kCreated, kInProgress});
  events.push_back(OutEvent{"response.completed", "{not json"});
  EXPECT_TRUE(rejects(events, "not a JSON object"));
}

// ---------------------------------------------------------------------------------------------
// Behaviour not covered by a fixture

TranslatedRequest plain_request() {
  RequestOptions o;
  o.id_token = "T";
  auto r = to_chat_request(R"({"model":"m","input":"x","stream":true})", o);
  return std::get<TranslatedRequest>(std::move(r));
}

std::string failure_code(const ApiError& e) {
  const auto t = plain_request();
  StreamTranslator s(t);
  auto events = s.on_error(e);
  EXPECT_TRUE(validate(events).empty()) << join(validate(events));
  auto r = terminal_response(events);
  EXPECT_EQ(events.back().event, "response.failed");
  return std::string(r.at("error").as_object().at("code").as_string());
}

TEST(StreamErrors, MapToTheCodesCodexActsOn) {
  EXPECT_EQ(failure_code(upstream_error(400, "", "This model's maximum context length is 8192 tokens")), "context_length_exceeded");
  EXPECT_EQ(failure_code(upstream_error(400, "context_length_exceeded", "too long")), "context_length_exceeded");
  EXPECT_EQ(failure_code(upstream_error(429, "", "slow down")), "rate_limit_exceeded");
  EXPECT_EQ(failure_code(upstream_error(402, "", "pay")), "insufficient_quota");
  EXPECT_EQ(failure_code(upstream_error(400, "insufficient_quota", "quota")), "insufficient_quota");
  EXPECT_EQ(failure_code(upstream_error(503, "", "overloaded")), "server_error");
  EXPECT_EQ(failure_code(upstream_error(502, "attestation_failed", "bad quote")), "server_error");
}

// Codex's retry regex: (?i)try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)
TEST(StreamErrors, RateLimitMessageCarriesTheRetryDelay) {
  const auto t = plain_request();
  StreamTranslator s(t);
  ApiError e = upstream_error(429, "", "Too many requests");
  e.retry_after_seconds = 7;
  auto events = s.on_error(e);
  EXPECT_TRUE(validate(events).empty()) << join(validate(events));
  EXPECT_EQ(terminal_response(events).at("error").as_object().at("message"), "Too many requests. Please try again in 7s.");
}

TEST(StreamErrors, MalformedChunkFailsTheResponse) {
  const auto t = plain_request();
  StreamTranslator s(t);
  OutEvents all = s.on_chunk(R"({"choices":[{"index":0,"delta":{"content":"a"}}]})");
  append(all, s.on_chunk("{not json"));
  EXPECT_TRUE(s.finished());
  EXPECT_TRUE(validate(all).empty()) << join(validate(all));
  EXPECT_EQ(all.back().event, "response.failed");
  EXPECT_EQ(terminal_response(all).at("error").as_object().at("code"), "server_error");
}

TEST(StreamLifecycle, StartIsIdempotentAndDoneMarkerIsAccepted) {
  const auto t = plain_request();
  StreamTranslator s(t);
  OutEvents all = s.start();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(s.start().empty());
  append(all, s.on_chunk(R"({"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]})"));
  append(all, s.on_chunk(" [DONE] "));
  EXPECT_TRUE(s.finished());
  EXPECT_TRUE(validate(all).empty()) << join(validate(all));
  EXPECT_EQ(all.back().event, "response.completed");
}

// Only choice 0 is an answer (Responses has no n); other choices are ignored, not merged.
TEST(StreamLifecycle, OtherChoicesAreIgnored) {
  const auto t = plain_request();
  StreamTranslator s(t);
  OutEvents all = s.on_chunk(
      R"({"choices":[{"index":1,"delta":{"content":"other"}},{"index":0,"delta":{"content":"mine"},"finish_reason":"stop"}]})");
  append(all, s.on_done());
  EXPECT_TRUE(validate(all).empty()) << join(validate(all));
  const auto& out = terminal_response(all).at("output").as_array();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].as_object().at("content").as_array()[0].as_object().at("text"), "mine");
}

// ---------------------------------------------------------------------------------------------
// Round trips: what the engine answered, as the client (Codex) sends it back in the next turn,
// must reach the engine as the same call. Covers apply_patch (custom), a namespaced function and
// raw reasoning.

TEST(RoundTrip, ItemsSentBackReachTheEngineAsTheSameCalls) {
  const std::string tools =
      R"([{"type":"custom","name":"apply_patch","format":{"type":"grammar","syntax":"lark","definition":"start: x"}},)"
      R"({"type":"namespace","name":"multi_agent_v1","description":"","tools":[{"type":"function","name":"spawn_agent"}]}])";
  RequestOptions o;
  o.id_token = "T";
  auto first = std::get<TranslatedRequest>(to_chat_request(R"({"model":"m","stream":true,"input":"go","tools":)" + tools + "}", o));
  const std::string patch_args = R"({"input":"*** Begin Patch\n*** Add File: x\n+\u00e9\n*** End Patch\n"})";
  StreamTranslator s(first);
  OutEvents events = s.on_chunk(R"({"choices":[{"index":0,"delta":{"reasoning_content":"Plan."}}]})");
  append(events, s.on_chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_p","type":"function","function":{"name":"apply_patch","arguments":)" +
                            json::serialize(json::value(patch_args)) + R"(}}]}}]})"));
  append(events, s.on_chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_s","type":"function","function":{"name":"multi_agent_v1__spawn_agent","arguments":"{\"task\":\"t\"}"}}]},"finish_reason":"tool_calls"}]})"));
  append(events, s.on_done());
  ASSERT_TRUE(validate(events).empty()) << join(validate(events));

  // The client's next request: its history is the output items as received, plus tool outputs.
  json::array input{json::object{{"role", "user"}, {"content", "go"}}};
  for (const auto& item : terminal_response(events).at("output").as_array()) input.push_back(item);
  input.push_back(json::object{{"type", "custom_tool_call_output"}, {"call_id", "call_p"}, {"output", "Done"}});
  input.push_back(json::object{{"type", "function_call_output"}, {"call_id", "call_s"}, {"output", "agent-1"}});
  json::object second{{"model", "m"}, {"input", input}, {"tools", json::parse(tools)}};
  auto next = to_chat_request(json::serialize(second), o);
  ASSERT_TRUE(std::holds_alternative<TranslatedRequest>(next)) << std::get<ApiError>(next).message;
  const auto chat = json::parse(std::get<TranslatedRequest>(next).chat_json).as_object();
  const auto& messages = chat.at("messages").as_array();
  ASSERT_EQ(messages.size(), 4u) << json::serialize(messages);
  const auto& assistant = messages[1].as_object();
  EXPECT_EQ(assistant.at("reasoning_content"), "Plan.");
  const auto& calls = assistant.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  const auto& patch = calls[0].as_object().at("function").as_object();
  EXPECT_EQ(calls[0].as_object().at("id"), "call_p");
  EXPECT_EQ(patch.at("name"), "apply_patch");
  // Same call as the engine made (compared as JSON: escapes may be spelled differently).
  EXPECT_EQ(json::parse(patch.at("arguments").as_string()), json::parse(patch_args));
  const auto& spawn = calls[1].as_object().at("function").as_object();
  EXPECT_EQ(spawn.at("name"), "multi_agent_v1__spawn_agent");
  EXPECT_EQ(json::parse(spawn.at("arguments").as_string()), json::parse(R"({"task":"t"})"));
  EXPECT_EQ(messages[2].as_object().at("tool_call_id"), "call_p");
  EXPECT_EQ(messages[3].as_object().at("tool_call_id"), "call_s");
}

}  // namespace
}  // namespace e2ee::api::responses

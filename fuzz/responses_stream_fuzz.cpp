// Chat SSE → OpenAI Responses SSE (src/api/responses/stream_translator.cpp, output_assembler.cpp):
// the engine's stream becomes the events Codex acts on (it runs a tool on output_item.done).
//
// Input: see stream_driver.hpp (optional Responses request line, then the engine's SSE stream).
// Checks (the guarantees of stream_translator.hpp): each event's data is a JSON object whose type
// is the event name; sequence_number 0, 1, 2 … without gaps; response.created then
// response.in_progress first; every item event refers to an item that was added (output_index
// 0, 1, 2 … in order, unique non-empty ids) and is not done yet; text and argument deltas add up
// to their done events; exactly one terminal event (completed, incomplete or failed) ends the
// stream, carries the status of its type, and lists every added item: the done ones as they were
// done, an unfinished one only in a failed response and only as incomplete.

#include <string>
#include <vector>

#include "api/responses/request_translator.hpp"
#include "api/responses/stream_translator.hpp"
#include "fuzz_support.hpp"
#include "stream_driver.hpp"

namespace {

namespace responses = e2ee::api::responses;
namespace json = boost::json;
using e2ee::fuzz::member;

constexpr std::string_view kDefaultRequest = R"({"model":"m","input":"hi","stream":true})";

std::string str(const json::value* v) { return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string(); }

struct Item {
  std::string id, type;
  std::string text;  // deltas of the item's one text field, concatenated
  bool text_done = false, done = false;
  json::value done_item;
};

void validate(const e2ee::api::OutEvents& events) {
  std::vector<Item> items;
  int terminals = 0;
  std::string response_id;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& ev = events[i];
    FUZZ_CHECK_MSG(terminals == 0, ev.data);  // nothing after the terminal event
    const auto v = e2ee::fuzz::parse_json(ev.data);
    FUZZ_CHECK_MSG(v && v->is_object(), ev.data);
    const std::string type = str(member(*v, "type"));
    FUZZ_CHECK_MSG(type == ev.event, ev.data);
    const auto* seq = member(*v, "sequence_number");
    FUZZ_CHECK_MSG(seq != nullptr && seq->is_int64() && seq->get_int64() == static_cast<std::int64_t>(i), ev.data);

    if (i < 2) {
      FUZZ_CHECK_MSG(type == (i == 0 ? "response.created" : "response.in_progress"), type);
      const auto* r = member(*v, "response");
      FUZZ_CHECK(r != nullptr && str(member(*r, "status")) == "in_progress");
      if (i == 0) response_id = str(member(*r, "id"));
      FUZZ_CHECK(!response_id.empty() && str(member(*r, "id")) == response_id);
      continue;
    }
    if (type == "response.completed" || type == "response.incomplete" || type == "response.failed") {
      ++terminals;
      const auto* r = member(*v, "response");
      FUZZ_CHECK(r != nullptr && str(member(*r, "id")) == response_id);
      FUZZ_CHECK(str(member(*r, "status")) == type.substr(std::string_view("response.").size()));
      const auto* output = member(*r, "output");
      FUZZ_CHECK(output != nullptr && output->is_array() && output->get_array().size() == items.size());
      for (std::size_t k = 0; k < items.size(); ++k) {
        const auto& listed = output->get_array()[k];
        if (items[k].done) {
          FUZZ_CHECK(listed == items[k].done_item);
        } else {
          FUZZ_CHECK_MSG(type == "response.failed" && str(member(listed, "status")) == "incomplete" &&
                             str(member(listed, "id")) == items[k].id,
                         ev.data);
        }
      }
      if (type == "response.failed") {
        const auto* error = member(*r, "error");
        FUZZ_CHECK(error != nullptr && !str(member(*error, "code")).empty() && !str(member(*error, "message")).empty());
      }
      continue;
    }
    if (type == "response.output_item.added") {
      const auto* index = member(*v, "output_index");
      FUZZ_CHECK(index != nullptr && index->is_int64() && index->get_int64() == static_cast<std::int64_t>(items.size()));
      const auto* item = member(*v, "item");
      FUZZ_CHECK(item != nullptr && str(member(*item, "status")) == "in_progress");
      Item it;
      it.id = str(member(*item, "id"));
      it.type = str(member(*item, "type"));
      FUZZ_CHECK(!it.id.empty());
      for (const auto& other : items) FUZZ_CHECK(other.id != it.id);
      FUZZ_CHECK_MSG(it.type == "message" || it.type == "reasoning" || it.type == "function_call" || it.type == "custom_tool_call",
                     it.type);
      items.push_back(std::move(it));
      continue;
    }
    // Every other event refers to an added item that is not done.
    const auto* index = member(*v, "output_index");
    FUZZ_CHECK_MSG(index != nullptr && index->is_int64() && index->get_int64() >= 0 &&
                       static_cast<std::size_t>(index->get_int64()) < items.size(),
                   ev.data);
    Item& it = items[static_cast<std::size_t>(index->get_int64())];
    FUZZ_CHECK_MSG(!it.done, ev.data);
    if (type != "response.output_item.done") FUZZ_CHECK_MSG(str(member(*v, "item_id")) == it.id, ev.data);
    if (type.ends_with(".delta")) {
      FUZZ_CHECK(!it.text_done);
      it.text += str(member(*v, "delta"));
    } else if (type == "response.output_text.done" || type == "response.reasoning_text.done" ||
               type == "response.reasoning_summary_text.done") {
      FUZZ_CHECK(str(member(*v, "text")) == it.text);
      it.text_done = true;
    } else if (type == "response.function_call_arguments.done") {
      FUZZ_CHECK(it.type == "function_call" && str(member(*v, "arguments")) == it.text);
      it.text_done = true;
    } else if (type == "response.custom_tool_call_input.done") {
      FUZZ_CHECK(it.type == "custom_tool_call" && str(member(*v, "input")) == it.text);
      it.text_done = true;
    } else if (type == "response.output_item.done") {
      const auto* item = member(*v, "item");
      FUZZ_CHECK(item != nullptr && str(member(*item, "id")) == it.id && str(member(*item, "type")) == it.type);
      const std::string status = str(member(*item, "status"));
      FUZZ_CHECK(status == "completed" || status == "incomplete");
      FUZZ_CHECK_MSG(it.text_done, ev.data);
      if (it.type == "function_call") FUZZ_CHECK(str(member(*item, "arguments")) == it.text);
      it.done = true;
      it.done_item = *item;
    } else {
      FUZZ_CHECK_MSG(type == "response.content_part.added" || type == "response.content_part.done" ||
                         type == "response.reasoning_summary_part.added" || type == "response.reasoning_summary_part.done",
                     type);
    }
  }
  FUZZ_CHECK(terminals == 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = e2ee::fuzz::text_of(data, size);
  const auto input = e2ee::fuzz::split_stream_input(text);
  responses::RequestOptions options;
  options.id_token = "fuzz";
  options.reasoning_output = (size % 2 == 0) ? responses::ReasoningOutput::raw_text : responses::ReasoningOutput::summary;
  auto request = responses::to_chat_request(input.request.empty() ? kDefaultRequest : input.request, options);
  if (!std::holds_alternative<responses::TranslatedRequest>(request)) request = responses::to_chat_request(kDefaultRequest, options);
  responses::StreamTranslator translator(std::get<responses::TranslatedRequest>(request));
  e2ee::fuzz::Rng rng(text);
  validate(e2ee::fuzz::drive_stream(translator, input.sse, rng));
  return 0;
}

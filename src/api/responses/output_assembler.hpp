#pragma once
// Internal to src/api/responses: the one state machine that turns chat-completion output
// (streamed deltas or a whole message) into Responses output items and events. The stream
// translator drives it chunk by chunk; the non-stream translator feeds it the whole message at
// once and keeps only the terminal Response object. Sharing it is what makes a non-stream answer
// carry exactly the ids and items the stream would have produced.
//
// Item rules:
// - Items get output_index 0, 1, 2 … in order of appearance; at most one reasoning or message
//   item is open at a time, and a new one starts when the kind changes.
// - A reasoning or message item starts at the first non-whitespace text of its kind (leading
//   whitespace, e.g. "\n\n" after reasoning, never creates or opens an item).
// - The first tool call whose name is known is streamed live (added, argument deltas); calls at
//   other chat indexes are buffered and emitted one by one, complete, when the choice finishes,
//   so interleaved parallel-call deltas are never lost or attributed to the wrong item.
// - Custom (freeform) tool calls: the engine's arguments {"input": "..."} are unwrapped when the
//   call completes and sent as one custom_tool_call_input delta + done.
// - On failure before the choice finished, open reasoning/message items are closed as
//   "incomplete", but open tool calls are NOT given an output_item.done: Codex executes a tool on
//   output_item.done, and a call cut off by a failure must never run. They stay in the failed
//   Response's output with status "incomplete".

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <vector>

#include "api/api_error.hpp"
#include "api/chat/chat_model.hpp"
#include "api/chat/think_splitter.hpp"
#include "api/out_event.hpp"
#include "api/responses/translated_request.hpp"

namespace e2ee::api::responses::detail {

// {code, message} for response.failed, in the codes Codex acts on: context_length_exceeded,
// rate_limit_exceeded (message ends "Please try again in Ns." when the delay is known),
// insufficient_quota; everything else server_error.
boost::json::object failure_body(const ApiError& error);

class Assembler {
 public:
  explicit Assembler(const TranslatedRequest& request);

  // response.created and response.in_progress, once.
  void start(OutEvents& out);
  // One choice's delta (or a whole non-stream message). Sets the finish state when the choice
  // carries finish_reason, closing every item.
  void add_choice(const chat::Choice& choice, OutEvents& out);
  void set_usage(const chat::Usage& usage) { usage_ = usage; }
  // Normal end: closes what is open and sends response.completed, or response.incomplete for
  // finish_reason length / content_filter, or response.failed for error / abort.
  void finish(OutEvents& out);
  // Failure. If the choice had already finished (all items closed), the answer is complete and
  // this ends like finish(): only the trailing usage or [DONE] was lost.
  void fail(const ApiError& error, OutEvents& out);

  bool started() const { return started_; }
  bool finished() const { return finished_; }
  // The Response object carried by the terminal event (valid once finished()).
  const boost::json::object& final_response() const { return final_response_; }

 private:
  enum class Kind { reasoning, message, function_call, custom_tool_call };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;  // message / reasoning text; function arguments; custom input
    std::string call_id, name, ns;
    std::string status = "in_progress";
    bool done = false;
  };
  struct ToolSlot {
    int chat_index = 0;
    std::string id, name, arguments;
    int item = -1;  // output_index once added
  };

  void emit(OutEvents& out, std::string type, boost::json::object data);
  boost::json::object response_object(const std::string& status) const;
  boost::json::object item_json(const Item& item) const;
  std::string item_id(const char* prefix, std::size_t index) const;

  void append_text(Kind kind, std::string_view text, OutEvents& out);
  void open_text_item(Kind kind, OutEvents& out);
  void close_text_item(const std::string& status, OutEvents& out);
  void tool_fragment(const chat::ToolCall& call, OutEvents& out);
  void open_tool_item(ToolSlot& slot, OutEvents& out);
  void close_tool_item(ToolSlot& slot, const std::string& status, OutEvents& out);
  void finalize_items(const std::string& status, OutEvents& out);
  void content_pieces(std::vector<chat::ThinkSplitter::Piece>& pieces, OutEvents& out);
  void terminal(const std::string& type, const std::string& status, OutEvents& out);

  const TranslatedRequest& request_;
  boost::json::value metadata_;
  chat::ThinkSplitter splitter_;
  std::vector<Item> items_;
  int open_text_ = -1;
  std::vector<ToolSlot> slots_;
  int active_slot_ = -1;
  std::optional<std::string> finish_reason_;
  bool items_final_ = false;
  std::optional<chat::Usage> usage_;
  long sequence_ = 0;
  bool started_ = false;
  bool finished_ = false;
  boost::json::object final_response_;
};

}  // namespace e2ee::api::responses::detail

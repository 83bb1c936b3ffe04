#pragma once
// Anthropic Messages (POST /v1/messages, /v1/messages/count_tokens) ⇄ OpenAI chat completions as
// vLLM-style engines speak them. Pure: no I/O, no clock, no randomness, no globals; every piece of
// per-request state lives in the objects below. The field-by-field contract (what is translated,
// dropped or rejected, and why) is documented in docs/ (the translation field table).
//
// Byte fidelity: the client's numbers, tool schemas and tool inputs are copied as the client wrote
// them (chat/raw_json.hpp), and tool arguments from the engine are copied into `input` as the
// engine wrote them, so nothing is re-spelled on the way (prefix caching and the model's view of
// its own earlier calls depend on identical bytes).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "api/api_error.hpp"
#include "api/chat/chat_model.hpp"
#include "api/chat/think_splitter.hpp"
#include "api/out_event.hpp"

namespace e2ee::api::anthropic {

// How `thinking` and `output_config.effort` reach the engine (documented in docs/):
//   chat_template_kwargs {"enable_thinking": b, "thinking": b}: Qwen3, GLM, DeepSeek V3.1+, Kimi
//     templates read one of these names (Chutes' router sets both, spec §14);
//   reasoning_effort "low"|"medium"|"high": vLLM/SGLang's request field (gpt-oss and other
//     effort-aware templates).
enum class ThinkingControl {
  template_kwargs_and_effort,  // both (default): engines ignore the one they do not use
  template_kwargs,             // chat_template_kwargs only
  reasoning_effort,            // reasoning_effort only
  none,                        // send neither; the model's default applies
};

struct RequestOptions {
  ThinkingControl thinking = ThinkingControl::template_kwargs_and_effort;
  // Used when the body has no max_tokens (count_tokens bodies, lenient clients); 0 leaves the
  // limit to the engine (the rest of the context window).
  std::int64_t default_max_tokens = 0;
  // Tool names longer than this are shortened to a stable "<prefix>_<8 hex>" and mapped back in
  // answers (OpenAI's limit is 64; vLLM has none). 0 never shortens.
  std::size_t max_tool_name_length = 64;
  // Tools marked defer_loading (tool search) are sent as ordinary tools; false drops them.
  bool include_deferred_tools = true;
  // Assistant `thinking` blocks of the history go to the engine as `reasoning_content`, which
  // Qwen3/GLM/DeepSeek templates render for the current tool loop. Signatures never leave.
  bool forward_thinking_history = true;
  // A final assistant message with text is a prefill: vLLM continues it when asked with
  // continue_final_message:true, add_generation_prompt:false.
  bool continue_final_assistant = true;
  // Claude Code's first system block "x-anthropic-billing-header: …; cch=…;" changes on every
  // request and sits at the very start of the prompt, which defeats the engine's prefix cache.
  // It is metadata for Anthropic's servers, not for the model.
  bool drop_attribution_block = true;
  // The message id when the engine's answer carries none ("msg_" + this); the pipeline passes a
  // random request id. Empty: "msg_e2ee".
  std::string fallback_id;
};

struct ToolName {
  std::string engine;  // the name the engine sees (shortened)
  std::string client;  // the client's name
};

struct TranslatedRequest {
  std::string chat_json;                    // the chat-completions body for the engine
  std::string model;                        // as the client sent it (answers report this)
  bool stream = false;
  std::vector<std::string> stop_sequences;  // to recognise the one that fired
  std::vector<ToolName> tool_names;         // only names that were shortened
  bool omit_thinking = false;               // thinking.display == "omitted": blocks keep no text
  std::int64_t estimated_input_tokens = 0;  // local estimate (see estimate_input_tokens)
  std::string fallback_id;                  // from RequestOptions
  // What was dropped on the way, for a debug log line: field names, tool names, block types;
  // never text the client wrote.
  std::vector<std::string> notes;

  // The client's name for a tool name the engine used (unchanged when it was not shortened).
  std::string client_tool_name(std::string_view engine_name) const;
};

// Messages request body → chat-completions request. Errors are 400s in the client's terms
// ("messages.2.content.0: …"), never quoting text the client wrote except type and tool ids.
std::variant<TranslatedRequest, ApiError> to_chat_request(std::string_view messages_body, const RequestOptions& options);

// Non-stream chat.completion → Anthropic message JSON. An in-band engine error or an unusable
// answer comes back as ApiError (render with anthropic_error_json at its status).
std::variant<std::string, ApiError> to_messages_response(std::string_view chat_completion_json, const TranslatedRequest& request);

// The engine's non-2xx answer (or a proxy-side failure already an ApiError) in Anthropic terms:
// context-length errors get the "prompt is too long: " wording Claude Code recognises.
ApiError to_anthropic_error(ApiError error);

// Chat SSE chunks in, Anthropic SSE events out. One per request; holds only that stream's state.
//
// Sequence: message_start (+ ping) → blocks → message_delta → message_stop. One block is open at a
// time, indexes start at 0 and increase by one, every delta follows its block's start. Thinking
// (reasoning_content / reasoning / "<think>" content) comes before text before tool_use; text or
// thinking that arrives after tool calls started is emitted after the tool blocks. Tool calls are
// streamed live while they arrive in order; a call whose fragments interleave with another's is
// buffered and emitted whole after it. message_delta waits for the trailing usage chunk (or
// on_done). After message_stop or an error event nothing more is emitted.
class StreamTranslator {
 public:
  explicit StreamTranslator(const TranslatedRequest& request);

  // message_start (+ ping) now, if not sent yet: call when the engine accepted the request so the
  // client sees the message begin during a long prefill. Uses the fallback id.
  OutEvents start();
  // One upstream event's data (not "[DONE]"). A malformed chunk or an in-band engine error ends
  // the stream with an error event.
  OutEvents on_chunk(std::string_view chat_chunk_data);
  // Upstream finished ([DONE] seen or clean end of the body).
  OutEvents on_done();
  // Upstream failed mid-stream: `event: error` with the Anthropic error body.
  OutEvents on_error(const ApiError& error);
  // Keep-alive while the engine is silent ({"type":"ping"}; SDKs skip it wherever it appears).
  OutEvent ping() const;
  // message_stop or an error was emitted: emit nothing more.
  bool finished() const noexcept { return finished_; }

 private:
  enum class Block { none, thinking, text, tool };
  struct Tool {
    int chat_index = 0;
    std::string id;
    std::string name;
    std::string arguments;
    std::size_t sent = 0;  // bytes of `arguments` already sent as input_json_delta
    bool closed = false;
  };

  void ensure_started(OutEvents& out, const chat::Completion* first);
  void on_piece(OutEvents& out, chat::ThinkSplitter::Kind kind, const std::string& text);
  void release_held(OutEvents& out);
  void open_block(OutEvents& out, Block kind, const Tool* tool);
  void close_block(OutEvents& out);
  void on_tool_fragment(OutEvents& out, const chat::ToolCall& fragment);
  void pump_tools(OutEvents& out, bool final);
  void end_content(OutEvents& out);
  void emit_end(OutEvents& out);
  void fail(OutEvents& out, const ApiError& error);

  // From the request.
  std::string model_;
  std::vector<std::string> stop_sequences_;
  std::vector<ToolName> tool_names_;
  bool omit_thinking_;
  std::string omitted_thinking_;  // display "omitted": the text of the open thinking block, for its signature
  std::int64_t estimated_input_tokens_;
  std::string fallback_id_;

  std::string message_id_;
  bool started_ = false;
  bool content_done_ = false;
  bool finished_ = false;
  Block open_ = Block::none;
  int next_index_ = 0;
  chat::ThinkSplitter splitter_;
  bool tool_phase_ = false;
  std::vector<Tool> tools_;                         // in order of first appearance
  int live_tool_ = -1;                              // position in tools_ of the open tool block
  std::vector<chat::ThinkSplitter::Piece> late_;    // text/thinking after tool calls began
  std::optional<std::string> finish_reason_;
  std::optional<std::string> matched_stop_;
  std::optional<chat::Usage> usage_;
  bool final_usage_ = false;                        // usage seen in or after the finish chunk
  std::int64_t emitted_bytes_ = 0;                  // for an output estimate when usage never comes
};

// count_tokens. The body is as sensitive as a prompt, so it is counted by the engine's /tokenize
// through the encrypted channel; these build that request and read its answer.
//
// The engine's POST /tokenize body (vLLM/SGLang TokenizeChatRequest): model, messages, tools,
// chat_template_kwargs, add_generation_prompt, as the chat request would render them.
std::variant<std::string, ApiError> to_tokenize_request(std::string_view count_tokens_body, const RequestOptions& options);
// The engine's answer {"count":N,…} (or {"tokens":[…]}) → {"input_tokens":N}.
std::variant<std::string, ApiError> to_count_tokens_response(std::string_view tokenize_answer);
// Local fallback when /tokenize is unavailable, clearly an estimate: ceil(bytes / 4) over the
// translated chat request without image data, plus 1,600 per image (Anthropic's upper bound for
// one image). Errors as to_chat_request. Returns {"input_tokens":N}.
std::variant<std::string, ApiError> estimate_count_tokens_response(std::string_view count_tokens_body, const RequestOptions& options);

}  // namespace e2ee::api::anthropic

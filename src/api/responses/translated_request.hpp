#pragma once
// What the OpenAI Responses translators share: the options the proxy chooses per request, and
// everything the request side learned that the response side needs to answer in the client's
// terms (reversible tool names, which tools are freeform, the ids to use). Per-request state
// only; nothing here outlives the request, and nothing is persisted (`store` is never honoured).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace e2ee::api::responses {

// How reasoning text from the engine (reasoning_content / reasoning / <think> tags) is presented.
enum class ReasoningOutput {
  // A reasoning item with content [{type:"reasoning_text"}] and response.reasoning_text.* events:
  // what the text is (the model's raw chain of thought). Codex shows it only with
  // show_raw_agent_reasoning = true; the OpenAI SDKs accumulate it either way.
  raw_text,
  // A reasoning item with summary [{type:"summary_text"}] and response.reasoning_summary_* events,
  // for clients that display only summaries (Codex's default TUI). The text is still the raw
  // reasoning, not a summary.
  summary,
};

struct RequestOptions {
  // Random, unguessable text (letters/digits) the proxy draws per request; every id in the
  // answer is derived from it: resp_<token>, msg_<token>_<n>, fc_<token>_<n>, rs_<token>_<n>,
  // ctc_<token>_<n>, and call_<token>_<n> when the engine omits a tool-call id. This layer has no
  // randomness of its own, so tests pass a fixed token. Empty → "local" (tests only: ids would
  // repeat across requests).
  std::string id_token;
  std::int64_t created_at = 0;  // unix seconds, from the proxy's clock
  ReasoningOutput reasoning_output = ReasoningOutput::raw_text;
  // Separate a leading "<think>…</think>" in the answer text into a reasoning item (engines
  // without a reasoning parser). Only a tag at the start of the content counts.
  bool split_think_tags = true;
  // reasoning.effort also sets chat_template_kwargs {"thinking","enable_thinking"} (true for any
  // effort but "none", false for "none"): the switch hybrid open models (Qwen3, DeepSeek V3.x,
  // GLM, Kimi) read; templates that do not know the keys ignore them. Unless the client sent its
  // own chat_template_kwargs.
  bool effort_sets_thinking_switch = true;
  // Plain-text reasoning found in input history (reasoning items with reasoning_text content or
  // summary text) is carried as `reasoning_content` on the following assistant message, which
  // interleaved-thinking chat templates (Kimi K2, GLM-4.6+, MiniMax M2) render; others ignore it.
  // encrypted_content is always dropped.
  bool forward_reasoning_history = true;
};

// A client tool as the client named it. `chat_name` (the key in TranslatedRequest::tools) is what
// the engine sees.
struct ToolRef {
  std::string name;
  std::string ns;       // the namespace tool it was nested in; "" for top-level tools
  bool custom = false;  // a freeform `custom` tool: answered as custom_tool_call with `input`
};

struct TranslatedRequest {
  std::string chat_json;  // the chat-completions request body for the engine
  std::string model;      // as the client asked (echoed in the Response object)
  bool stream = false;

  std::string response_id;  // resp_<token>
  std::string id_token;
  std::int64_t created_at = 0;

  std::map<std::string, ToolRef> tools;  // chat function name → client tool

  ReasoningOutput reasoning_output = ReasoningOutput::raw_text;
  bool split_think_tags = true;

  // Echoed in Response objects (client-side only; none of these go upstream).
  std::optional<std::int64_t> max_output_tokens;
  bool parallel_tool_calls = true;
  std::string metadata_json = "{}";  // the client's `metadata`, as JSON text

  // The client's prompt_cache_key (Codex: its session id). Never forwarded upstream; the proxy may
  // use it locally, e.g. to keep a conversation on one engine instance for prefix-cache hits.
  std::string prompt_cache_key;

  // What was dropped or rewritten, as field names and tool types only (never content), for
  // debug logs: "dropped field include", "dropped hosted tool web_search", …
  std::vector<std::string> notes;
};

}  // namespace e2ee::api::responses

// Chat-completions SSE chunks → Anthropic Messages SSE events (see StreamTranslator in messages.hpp).

#include <algorithm>

#include "api/anthropic/detail.hpp"

namespace e2ee::api::anthropic {

using detail::put_string;
using Kind = chat::ThinkSplitter::Kind;

namespace {

std::string block_event_head(const char* type, int index) {
  return std::string("{\"type\":\"") + type + "\",\"index\":" + std::to_string(index);
}

OutEvent delta_event(int index, const char* delta_type, const char* field, std::string_view text) {
  std::string data = block_event_head("content_block_delta", index) + ",\"delta\":{\"type\":\"" + delta_type + "\",\"" + field + "\":";
  put_string(data, text);
  data += "}}";
  return OutEvent{"content_block_delta", std::move(data)};
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

StreamTranslator::StreamTranslator(const TranslatedRequest& request)
    : model_(request.model),
      stop_sequences_(request.stop_sequences),
      tool_names_(request.tool_names),
      omit_thinking_(request.omit_thinking),
      estimated_input_tokens_(request.estimated_input_tokens),
      fallback_id_(request.fallback_id) {}

OutEvent StreamTranslator::ping() const { return OutEvent{"ping", "{\"type\":\"ping\"}"}; }

void StreamTranslator::ensure_started(OutEvents& out, const chat::Completion* first) {
  if (started_) return;
  started_ = true;
  message_id_ = detail::message_id(first != nullptr ? first->id : std::string_view(), fallback_id_);
  // The prompt's real size arrives with the final usage; until then the engine's early usage (if
  // it streams usage continuously) or our estimate. Claude Code needs every field present.
  std::int64_t prompt = estimated_input_tokens_, cached = 0;
  if (first != nullptr && first->usage && first->usage->prompt_tokens > 0) {
    prompt = first->usage->prompt_tokens;
    cached = first->usage->cached_tokens;
  }
  std::string data = "{\"type\":\"message_start\",\"message\":{\"id\":";
  put_string(data, message_id_);
  data += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  put_string(data, model_);
  // output_tokens 1 as Anthropic's own message_start reports; message_delta carries the count.
  data += ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" +
          detail::usage_json(prompt, cached, 1, true) + "}}";
  out.push_back(OutEvent{"message_start", std::move(data)});
  out.push_back(ping());
}

OutEvents StreamTranslator::start() {
  OutEvents out;
  if (!finished_) ensure_started(out, nullptr);
  return out;
}

void StreamTranslator::open_block(OutEvents& out, Block kind, const Tool* tool) {
  const int index = next_index_++;
  open_ = kind;
  std::string data = block_event_head("content_block_start", index) + ",\"content_block\":";
  switch (kind) {
    case Block::thinking: data += "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}"; break;
    case Block::text: data += "{\"type\":\"text\",\"text\":\"\"}"; break;
    case Block::tool: {
      data += "{\"type\":\"tool_use\",\"id\":";
      put_string(data, tool->id);
      data += ",\"name\":";
      std::string name = tool->name;
      for (const auto& n : tool_names_) {
        if (n.engine == tool->name) name = n.client;
      }
      put_string(data, name);
      data += ",\"input\":{}}";
      break;
    }
    case Block::none: break;
  }
  data += "}";
  out.push_back(OutEvent{"content_block_start", std::move(data)});
}

void StreamTranslator::close_block(OutEvents& out) {
  if (open_ == Block::none) return;
  if (open_ == Block::thinking && omit_thinking_) {
    // Anthropic sends a thinking block's signature last, as a signature_delta; ours carries the
    // omitted reasoning back to us on the next turn (detail::reasoning_signature).
    std::string data = block_event_head("content_block_delta", next_index_ - 1) + ",\"delta\":{\"type\":\"signature_delta\",\"signature\":";
    put_string(data, detail::reasoning_signature(omitted_thinking_));
    data += "}}";
    out.push_back(OutEvent{"content_block_delta", std::move(data)});
    omitted_thinking_.clear();
  }
  out.push_back(OutEvent{"content_block_stop", block_event_head("content_block_stop", next_index_ - 1) + "}"});
  open_ = Block::none;
}

void StreamTranslator::on_piece(OutEvents& out, Kind kind, const std::string& text) {
  if (text.empty()) return;
  if (tool_phase_) {  // one block at a time: text after tool calls waits until they are closed
    if (!late_.empty() && late_.back().kind == kind) {
      late_.back().text += text;
    } else {
      late_.push_back({kind, text});
    }
    return;
  }
  const Block want = kind == Kind::thinking ? Block::thinking : Block::text;
  if (open_ != want) {
    close_block(out);
    open_block(out, want, nullptr);
  }
  emitted_bytes_ += static_cast<std::int64_t>(text.size());
  if (want == Block::text) {
    out.push_back(delta_event(next_index_ - 1, "text_delta", "text", text));
  } else if (!omit_thinking_) {
    out.push_back(delta_event(next_index_ - 1, "thinking_delta", "thinking", text));
  } else {
    omitted_thinking_ += text;
  }
}

void StreamTranslator::release_held(OutEvents& out) {
  std::vector<chat::ThinkSplitter::Piece> pieces;
  splitter_.finish(pieces);
  for (const auto& p : pieces) {
    // Whitespace the splitter held at the start is all the answer had (e.g. the "\n\n" a
    // reasoning parser leaves before a tool call): not worth a block Anthropic would reject.
    if (p.kind == Kind::text && open_ != Block::text && blank(p.text)) continue;
    on_piece(out, p.kind, p.text);
  }
}

void StreamTranslator::on_tool_fragment(OutEvents& out, const chat::ToolCall& fragment) {
  if (!tool_phase_) {
    // Release what the think splitter held back and close the text block: tool blocks follow.
    release_held(out);
    close_block(out);
    tool_phase_ = true;
  }
  auto it = std::find_if(tools_.begin(), tools_.end(), [&](const Tool& t) { return t.chat_index == fragment.index; });
  if (it == tools_.end()) {
    tools_.push_back(Tool{});
    it = std::prev(tools_.end());
    it->chat_index = fragment.index;
  }
  // Some engines repeat the id and name on every fragment: the first one counts.
  if (it->id.empty()) it->id = fragment.id;
  if (it->name.empty()) it->name = fragment.name;
  if (!it->closed) it->arguments += fragment.arguments;  // after a complete object nothing can be added
  pump_tools(out, false);
}

void StreamTranslator::pump_tools(OutEvents& out, bool final) {
  for (;;) {
    if (live_tool_ >= 0) {
      Tool& live = tools_[static_cast<std::size_t>(live_tool_)];
      if (live.arguments.size() > live.sent) {
        const std::string_view fresh = std::string_view(live.arguments).substr(live.sent);
        out.push_back(delta_event(next_index_ - 1, "input_json_delta", "partial_json", fresh));
        emitted_bytes_ += static_cast<std::int64_t>(fresh.size());
        live.sent = live.arguments.size();
      }
      const bool others = std::any_of(tools_.begin(), tools_.end(), [&](const Tool& t) { return !t.closed && &t != &live; });
      // Another call has begun: this one is done once its arguments form a whole object.
      if (!(final || (others && detail::is_json_object(live.arguments)))) return;
      if (blank(live.arguments)) out.push_back(delta_event(next_index_ - 1, "input_json_delta", "partial_json", "{}"));
      live.closed = true;
      close_block(out);
      live_tool_ = -1;
    }
    int next = -1;
    for (std::size_t i = 0; i < tools_.size(); ++i) {
      if (tools_[i].closed) continue;
      if (next < 0 || tools_[i].chat_index < tools_[static_cast<std::size_t>(next)].chat_index) next = static_cast<int>(i);
    }
    if (next < 0) return;
    Tool& tool = tools_[static_cast<std::size_t>(next)];
    if (tool.name.empty() && !final) return;  // a block starts with its name
    if (tool.id.empty()) tool.id = detail::tool_use_id(message_id_, next);
    open_block(out, Block::tool, &tool);
    live_tool_ = next;
  }
}

void StreamTranslator::end_content(OutEvents& out) {
  if (content_done_) return;
  content_done_ = true;
  release_held(out);
  if (tool_phase_) {
    pump_tools(out, true);
    tool_phase_ = false;
    for (const auto& p : late_) {
      if (p.kind == Kind::text && blank(p.text)) continue;  // the newline models put after a call
      on_piece(out, p.kind, p.text);
    }
    late_.clear();
  }
  close_block(out);
}

void StreamTranslator::emit_end(OutEvents& out) {
  const auto stop = detail::map_stop(finish_reason_, matched_stop_, stop_sequences_, !tools_.empty());
  std::int64_t prompt = estimated_input_tokens_, cached = 0, output = (emitted_bytes_ + 3) / 4;
  if (usage_) {
    prompt = usage_->prompt_tokens;
    cached = usage_->cached_tokens;
    output = usage_->completion_tokens;
  }
  std::string data = "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":";
  put_string(data, stop.reason);
  data += ",\"stop_sequence\":";
  if (stop.sequence) {
    put_string(data, *stop.sequence);
  } else {
    data += "null";
  }
  data += "},\"usage\":" + detail::usage_json(prompt, cached, output, false) + "}";
  out.push_back(OutEvent{"message_delta", std::move(data)});
  out.push_back(OutEvent{"message_stop", "{\"type\":\"message_stop\"}"});
  finished_ = true;
}

void StreamTranslator::fail(OutEvents& out, const ApiError& error) {
  out.push_back(detail::error_event(error));
  finished_ = true;
}

OutEvents StreamTranslator::on_chunk(std::string_view chat_chunk_data) {
  OutEvents out;
  if (finished_) return out;
  auto parsed = chat::parse_chunk(chat_chunk_data);
  if (!parsed) {
    fail(out, upstream_error(502, "bad_engine_response", "the engine sent a malformed stream chunk"));
    return out;
  }
  const chat::Completion& chunk = *parsed;
  if (chunk.error_message) {
    fail(out, chat::engine_error(chunk));
    return out;
  }
  ensure_started(out, &chunk);
  if (chunk.usage) {
    usage_ = chunk.usage;
    if (content_done_) final_usage_ = true;
  }
  const chat::Choice* choice = nullptr;
  for (const auto& c : chunk.choices) {
    if (c.index == 0) {
      choice = &c;
      break;
    }
  }
  if (choice != nullptr && !content_done_) {
    // Within one chunk: reasoning, then content, then tool calls, then the finish (a chunk may
    // carry content and finish_reason together).
    on_piece(out, Kind::thinking, choice->reasoning);
    if (!choice->content.empty()) {
      std::vector<chat::ThinkSplitter::Piece> pieces;
      splitter_.feed(choice->content, pieces);
      for (const auto& p : pieces) on_piece(out, p.kind, p.text);
    }
    on_piece(out, Kind::text, choice->refusal);
    for (const auto& fragment : choice->tool_calls) on_tool_fragment(out, fragment);
    if (choice->finish_reason) {
      finish_reason_ = choice->finish_reason;
      matched_stop_ = choice->matched_stop;
      if (chunk.usage) final_usage_ = true;  // engines that stream usage put the final one here
      end_content(out);
    }
  }
  if (content_done_ && final_usage_) emit_end(out);
  return out;
}

OutEvents StreamTranslator::on_done() {
  OutEvents out;
  if (finished_) return out;
  ensure_started(out, nullptr);
  end_content(out);
  emit_end(out);
  return out;
}

OutEvents StreamTranslator::on_error(const ApiError& error) {
  OutEvents out;
  if (!finished_) fail(out, error);
  return out;
}

}  // namespace e2ee::api::anthropic

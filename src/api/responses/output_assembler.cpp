#include "api/responses/output_assembler.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace e2ee::api::responses::detail {

namespace json = boost::json;

namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool mentions(const std::string& haystack, std::string_view needle) { return haystack.find(needle) != std::string::npos; }

// The finish_reason values that end an answer early, and what the client is told.
std::optional<std::string> incomplete_reason(const std::optional<std::string>& finish) {
  if (finish == "length") return std::string("max_output_tokens");
  if (finish == "content_filter") return std::string("content_filter");
  return std::nullopt;
}

bool failed_finish(const std::optional<std::string>& finish) { return finish == "error" || finish == "abort"; }

// A freeform tool's input from the engine's function arguments: {"input": "..."} unwrapped;
// anything else (the model wrote the raw text, or other keys) is passed on as the text itself
// rather than lost.
std::string custom_input(const std::string& arguments) {
  json::error_code ec;
  json::value v = json::parse(arguments, ec);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (const auto* input = o.if_contains("input"); input && input->is_string())
      return std::string(input->as_string());
    if (o.size() == 1 && o.begin()->value().is_string()) return std::string(o.begin()->value().as_string());
  }
  return arguments;
}

}  // namespace

json::object failure_body(const ApiError& error) {
  const std::string text = lower(error.message);
  const std::string code = lower(error.code);
  std::string out_code = "server_error";
  std::string message = error.message.empty() ? "the engine failed" : error.message;
  if (code == "context_length_exceeded" || mentions(text, "context length") || mentions(text, "context_length") ||
      mentions(text, "maximum context") || mentions(text, "context window") || mentions(text, "prompt is too long")) {
    out_code = "context_length_exceeded";
  } else if (error.status == 429 || code == "rate_limit_exceeded" || error.type == "rate_limit_error") {
    out_code = "rate_limit_exceeded";
    // Codex reads the retry delay from this phrase ("try again in <n>s").
    if (error.retry_after_seconds > 0)
      message += (message.empty() || message.back() == '.' ? " " : ". ") + std::string("Please try again in ") +
                 std::to_string(error.retry_after_seconds) + "s.";
  } else if (error.status == 402 || code == "insufficient_quota") {
    out_code = "insufficient_quota";
  }
  return json::object{{"code", out_code}, {"message", message}};
}

Assembler::Assembler(const TranslatedRequest& request) : request_(request) {
  json::error_code ec;
  metadata_ = json::parse(request.metadata_json, ec);
  if (ec || !metadata_.is_object()) metadata_ = json::object{};
}

std::string Assembler::item_id(const char* prefix, std::size_t index) const {
  return std::string(prefix) + "_" + request_.id_token + "_" + std::to_string(index);
}

void Assembler::emit(OutEvents& out, std::string type, json::object data) {
  json::object event;
  event["type"] = type;
  event["sequence_number"] = sequence_++;
  for (auto& kv : data) event[kv.key()] = std::move(kv.value());
  out.push_back(OutEvent{std::move(type), json::serialize(event)});
}

json::object Assembler::response_object(const std::string& status) const {
  json::array output;
  for (const auto& item : items_) output.push_back(item_json(item));
  json::object r;
  r["id"] = request_.response_id;
  r["object"] = "response";
  r["created_at"] = request_.created_at;
  r["status"] = status;
  r["error"] = nullptr;
  r["incomplete_details"] = nullptr;
  r["model"] = request_.model;
  r["output"] = std::move(output);
  r["parallel_tool_calls"] = request_.parallel_tool_calls;
  r["max_output_tokens"] = request_.max_output_tokens ? json::value(*request_.max_output_tokens) : json::value(nullptr);
  r["store"] = false;  // never persisted, whatever the client asked
  r["metadata"] = metadata_;
  if (usage_ && status != "in_progress") {
    r["usage"] = json::object{
        {"input_tokens", usage_->prompt_tokens},  // OpenAI's input_tokens include the cached ones
        {"input_tokens_details", json::object{{"cached_tokens", usage_->cached_tokens}}},
        {"output_tokens", usage_->completion_tokens},
        {"output_tokens_details", json::object{{"reasoning_tokens", usage_->reasoning_tokens}}},
        {"total_tokens", usage_->total_tokens}};
  } else {
    r["usage"] = nullptr;
  }
  return r;
}

json::object Assembler::item_json(const Item& item) const {
  json::object j;
  j["id"] = item.id;
  switch (item.kind) {
    case Kind::reasoning: {
      j["type"] = "reasoning";
      json::array parts;
      if (item.done) {
        // Until done the parts are announced by their own *_part.added events.
        const char* type = request_.reasoning_output == ReasoningOutput::summary ? "summary_text" : "reasoning_text";
        parts.push_back(json::object{{"type", type}, {"text", item.text}});
      }
      if (request_.reasoning_output == ReasoningOutput::summary) {
        j["summary"] = std::move(parts);
      } else {
        j["summary"] = json::array{};
        j["content"] = std::move(parts);
      }
      j["status"] = item.status;
      break;
    }
    case Kind::message: {
      j["type"] = "message";
      j["status"] = item.status;
      j["role"] = "assistant";
      json::array content;
      if (item.done)
        content.push_back(json::object{
            {"type", "output_text"}, {"text", item.text}, {"annotations", json::array{}}, {"logprobs", json::array{}}});
      j["content"] = std::move(content);
      break;
    }
    case Kind::function_call:
      j["type"] = "function_call";
      j["status"] = item.status;
      j["call_id"] = item.call_id;
      j["name"] = item.name;
      if (!item.ns.empty()) j["namespace"] = item.ns;
      j["arguments"] = item.text;
      break;
    case Kind::custom_tool_call:
      j["type"] = "custom_tool_call";
      j["status"] = item.status;
      j["call_id"] = item.call_id;
      j["name"] = item.name;
      if (!item.ns.empty()) j["namespace"] = item.ns;
      j["input"] = item.text;
      break;
  }
  return j;
}

void Assembler::start(OutEvents& out) {
  if (started_) return;
  started_ = true;
  emit(out, "response.created", json::object{{"response", response_object("in_progress")}});
  emit(out, "response.in_progress", json::object{{"response", response_object("in_progress")}});
}

// ---------------------------------------------------------------------------------------------
// Reasoning and message text

void Assembler::open_text_item(Kind kind, OutEvents& out) {
  close_text_item("completed", out);
  const std::size_t index = items_.size();
  Item item{kind, item_id(kind == Kind::message ? "msg" : "rs", index), {}, {}, {}, {}, "in_progress", false};
  items_.push_back(item);
  open_text_ = static_cast<int>(index);
  emit(out, "response.output_item.added",
       json::object{{"output_index", index}, {"item", item_json(items_.back())}});
  const auto& id = items_.back().id;
  if (kind == Kind::message) {
    emit(out, "response.content_part.added",
         json::object{{"item_id", id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"part", json::object{{"type", "output_text"},
                                            {"text", ""},
                                            {"annotations", json::array{}},
                                            {"logprobs", json::array{}}}}});
  } else if (request_.reasoning_output == ReasoningOutput::summary) {
    emit(out, "response.reasoning_summary_part.added",
         json::object{{"item_id", id},
                      {"output_index", index},
                      {"summary_index", 0},
                      {"part", json::object{{"type", "summary_text"}, {"text", ""}}}});
  } else {
    emit(out, "response.content_part.added",
         json::object{{"item_id", id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"part", json::object{{"type", "reasoning_text"}, {"text", ""}}}});
  }
}

void Assembler::append_text(Kind kind, std::string_view text, OutEvents& out) {
  if (text.empty()) return;
  if (open_text_ < 0 || items_[static_cast<std::size_t>(open_text_)].kind != kind) {
    // A new item starts at its first non-whitespace byte.
    std::size_t lead = 0;
    while (lead < text.size() && is_space(text[lead])) ++lead;
    text.remove_prefix(lead);
    if (text.empty()) return;
    open_text_item(kind, out);
  }
  const auto index = static_cast<std::size_t>(open_text_);
  auto& item = items_[index];
  item.text.append(text);
  if (kind == Kind::message) {
    emit(out, "response.output_text.delta",
         json::object{{"item_id", item.id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"delta", text},
                      {"logprobs", json::array{}}});
  } else if (request_.reasoning_output == ReasoningOutput::summary) {
    emit(out, "response.reasoning_summary_text.delta",
         json::object{{"item_id", item.id}, {"output_index", index}, {"summary_index", 0}, {"delta", text}});
  } else {
    emit(out, "response.reasoning_text.delta",
         json::object{{"item_id", item.id}, {"output_index", index}, {"content_index", 0}, {"delta", text}});
  }
}

void Assembler::close_text_item(const std::string& status, OutEvents& out) {
  if (open_text_ < 0) return;
  const auto index = static_cast<std::size_t>(open_text_);
  open_text_ = -1;
  auto& item = items_[index];
  if (item.kind == Kind::message) {
    emit(out, "response.output_text.done",
         json::object{{"item_id", item.id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"text", item.text},
                      {"logprobs", json::array{}}});
    emit(out, "response.content_part.done",
         json::object{{"item_id", item.id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"part", json::object{{"type", "output_text"},
                                            {"text", item.text},
                                            {"annotations", json::array{}},
                                            {"logprobs", json::array{}}}}});
  } else if (request_.reasoning_output == ReasoningOutput::summary) {
    emit(out, "response.reasoning_summary_text.done",
         json::object{{"item_id", item.id}, {"output_index", index}, {"summary_index", 0}, {"text", item.text}});
    emit(out, "response.reasoning_summary_part.done",
         json::object{{"item_id", item.id},
                      {"output_index", index},
                      {"summary_index", 0},
                      {"part", json::object{{"type", "summary_text"}, {"text", item.text}}}});
  } else {
    emit(out, "response.reasoning_text.done",
         json::object{{"item_id", item.id}, {"output_index", index}, {"content_index", 0}, {"text", item.text}});
    emit(out, "response.content_part.done",
         json::object{{"item_id", item.id},
                      {"output_index", index},
                      {"content_index", 0},
                      {"part", json::object{{"type", "reasoning_text"}, {"text", item.text}}}});
  }
  item.status = status;
  item.done = true;
  emit(out, "response.output_item.done", json::object{{"output_index", index}, {"item", item_json(item)}});
}

void Assembler::content_pieces(std::vector<chat::ThinkSplitter::Piece>& pieces, OutEvents& out) {
  for (const auto& piece : pieces)
    append_text(piece.kind == chat::ThinkSplitter::Kind::thinking ? Kind::reasoning : Kind::message, piece.text, out);
  pieces.clear();
}

// ---------------------------------------------------------------------------------------------
// Tool calls

void Assembler::open_tool_item(ToolSlot& slot, OutEvents& out) {
  close_text_item("completed", out);
  const std::size_t index = items_.size();
  Item item;
  item.kind = Kind::function_call;
  item.name = slot.name;
  if (auto it = request_.tools.find(slot.name); it != request_.tools.end()) {
    item.name = it->second.name;
    item.ns = it->second.ns;
    if (it->second.custom) item.kind = Kind::custom_tool_call;
  }
  item.id = item_id(item.kind == Kind::custom_tool_call ? "ctc" : "fc", index);
  item.call_id = slot.id.empty() ? item_id("call", index) : slot.id;
  items_.push_back(std::move(item));
  slot.item = static_cast<int>(index);
  emit(out, "response.output_item.added", json::object{{"output_index", index}, {"item", item_json(items_.back())}});
}

void Assembler::tool_fragment(const chat::ToolCall& call, OutEvents& out) {
  auto it = std::find_if(slots_.begin(), slots_.end(), [&](const ToolSlot& s) { return s.chat_index == call.index; });
  if (it == slots_.end()) {
    slots_.push_back(ToolSlot{call.index, {}, {}, {}, -1});
    it = std::prev(slots_.end());
  }
  const int slot_index = static_cast<int>(it - slots_.begin());
  ToolSlot& slot = *it;
  if (slot.id.empty() && !call.id.empty()) slot.id = call.id;
  if (slot.name.empty() && !call.name.empty()) slot.name = call.name;  // engines that repeat it: first wins
  slot.arguments += call.arguments;

  if (slot.item < 0 && active_slot_ < 0 && !slot.name.empty()) {
    open_tool_item(slot, out);
    active_slot_ = slot_index;
    auto& item = items_[static_cast<std::size_t>(slot.item)];
    if (item.kind == Kind::function_call && !slot.arguments.empty()) {
      item.text = slot.arguments;
      emit(out, "response.function_call_arguments.delta",
           json::object{{"item_id", item.id}, {"output_index", slot.item}, {"delta", slot.arguments}});
    }
    return;
  }
  if (slot_index == active_slot_ && !call.arguments.empty()) {
    auto& item = items_[static_cast<std::size_t>(slot.item)];
    if (item.kind == Kind::function_call) {
      item.text += call.arguments;
      emit(out, "response.function_call_arguments.delta",
           json::object{{"item_id", item.id}, {"output_index", slot.item}, {"delta", call.arguments}});
    }
  }
}

void Assembler::close_tool_item(ToolSlot& slot, const std::string& status, OutEvents& out) {
  if (slot.item < 0) open_tool_item(slot, out);
  const auto index = static_cast<std::size_t>(slot.item);
  auto& item = items_[index];
  if (item.done) return;
  if (item.kind == Kind::function_call) {
    // Arguments that never streamed (sent only at the end, or not at all) go out as one delta;
    // an empty argument string becomes "{}" so the client never sees an unparsable call.
    std::string full = slot.arguments.empty() ? "{}" : slot.arguments;
    if (item.text.size() < full.size() && full.compare(0, item.text.size(), item.text) == 0) {
      std::string rest = full.substr(item.text.size());
      emit(out, "response.function_call_arguments.delta",
           json::object{{"item_id", item.id}, {"output_index", index}, {"delta", rest}});
    }
    item.text = full;
    emit(out, "response.function_call_arguments.done",
         json::object{{"item_id", item.id}, {"output_index", index}, {"name", item.name}, {"arguments", item.text}});
  } else {
    item.text = custom_input(slot.arguments);
    if (!item.text.empty())
      emit(out, "response.custom_tool_call_input.delta",
           json::object{{"item_id", item.id}, {"output_index", index}, {"delta", item.text}});
    emit(out, "response.custom_tool_call_input.done",
         json::object{{"item_id", item.id}, {"output_index", index}, {"input", item.text}});
  }
  item.status = status;
  item.done = true;
  emit(out, "response.output_item.done", json::object{{"output_index", index}, {"item", item_json(item)}});
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void Assembler::add_choice(const chat::Choice& choice, OutEvents& out) {
  start(out);
  if (finished_ || items_final_) return;  // nothing may follow the end of the choice
  if (!choice.reasoning.empty()) append_text(Kind::reasoning, choice.reasoning, out);
  // A refusal is answer text to the client: Codex's message parser knows no "refusal" part and
  // would drop the whole message.
  std::string text = choice.content + choice.refusal;
  if (!text.empty()) {
    if (request_.split_think_tags) {
      std::vector<chat::ThinkSplitter::Piece> pieces;
      splitter_.feed(text, pieces);
      content_pieces(pieces, out);
    } else {
      append_text(Kind::message, text, out);
    }
  }
  for (const auto& call : choice.tool_calls) tool_fragment(call, out);
  if (choice.finish_reason) {
    finish_reason_ = choice.finish_reason;
    if (failed_finish(finish_reason_)) {
      // The engine gave up mid-answer: fail now, before any open tool call could be completed.
      fail(ApiError{502, "upstream_error", "server_error",
                    "the engine stopped the generation (finish_reason " + *finish_reason_ + ")", 0},
           out);
      return;
    }
    finalize_items(incomplete_reason(finish_reason_) ? "incomplete" : "completed", out);
  }
}

void Assembler::finalize_items(const std::string& status, OutEvents& out) {
  if (items_final_) return;
  items_final_ = true;
  if (request_.split_think_tags) {
    std::vector<chat::ThinkSplitter::Piece> pieces;
    splitter_.finish(pieces);
    content_pieces(pieces, out);
  }
  close_text_item(status, out);
  if (active_slot_ >= 0) close_tool_item(slots_[static_cast<std::size_t>(active_slot_)], status, out);
  for (auto& slot : slots_) close_tool_item(slot, status, out);
}

void Assembler::terminal(const std::string& type, const std::string& status, OutEvents& out) {
  final_response_ = response_object(status);
  if (type == "response.incomplete")
    final_response_["incomplete_details"] = json::object{{"reason", *incomplete_reason(finish_reason_)}};
  emit(out, type, json::object{{"response", final_response_}});
  finished_ = true;
}

void Assembler::finish(OutEvents& out) {
  if (finished_) return;
  start(out);
  bool incomplete = incomplete_reason(finish_reason_).has_value();
  finalize_items(incomplete ? "incomplete" : "completed", out);
  if (incomplete) terminal("response.incomplete", "incomplete", out);
  else terminal("response.completed", "completed", out);
}

void Assembler::fail(const ApiError& error, OutEvents& out) {
  if (finished_) return;
  start(out);
  if (items_final_) {
    finish(out);
    return;
  }
  close_text_item("incomplete", out);
  for (auto& item : items_)
    if (!item.done) item.status = "incomplete";  // open tool calls: listed, never handed over as done
  final_response_ = response_object("failed");
  final_response_["error"] = failure_body(error);
  emit(out, "response.failed", json::object{{"response", final_response_}});
  finished_ = true;
}

}  // namespace e2ee::api::responses::detail

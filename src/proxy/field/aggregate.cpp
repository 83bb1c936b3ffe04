#include "proxy/field/aggregate.hpp"

#include <boost/json.hpp>
#include <chrono>

namespace e2ee::proxy::field {

namespace json = boost::json;

Status ChunkAggregator::add(std::string_view chunk_json) {
  auto chunk = api::chat::parse_chunk(chunk_json);
  if (!chunk) return make_error(Errc::malformed, "a stream chunk is not a chat completion chunk: " + chunk.error().message);
  if (chunk->error_message) return make_error(Errc::unavailable, *chunk->error_message);
  if (!started_) {
    id_ = chunk->id;
    model_ = chunk->model;
    created_ = chunk->created;
    started_ = true;
  }
  for (auto& c : chunk->choices) {
    Choice& out = choices_[c.index];
    if (c.has_content) {
      out.content += c.content;
      out.has_content = true;
    }
    out.reasoning += c.reasoning;
    out.refusal += c.refusal;
    for (auto& call : c.tool_calls) {
      Call& acc = out.calls[call.index];
      if (!call.id.empty()) acc.id = call.id;
      // Engines send the name once; some repeat it in every fragment, which must not double it.
      if (!call.name.empty() && acc.name != call.name) acc.name += call.name;
      acc.arguments += call.arguments;
    }
    if (c.finish_reason) out.finish_reason = c.finish_reason;
    if (c.matched_stop) out.stop_reason = c.matched_stop;
  }
  if (chunk->usage) usage_ = chunk->usage;
  return {};
}

std::string ChunkAggregator::finish(std::string_view fallback_model) const {
  json::object doc;
  doc["id"] = id_.empty() ? std::string("chatcmpl-e2ee") : id_;
  doc["object"] = "chat.completion";
  doc["created"] = created_ != 0 ? created_
                                 : static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                                                 std::chrono::system_clock::now().time_since_epoch())
                                                                 .count());
  doc["model"] = model_.empty() ? std::string(fallback_model) : model_;
  json::array choices;
  for (const auto& [index, c] : choices_) {
    json::object message;
    message["role"] = "assistant";
    if (c.has_content || c.calls.empty()) message["content"] = c.content;
    else message["content"] = nullptr;
    if (!c.reasoning.empty()) message["reasoning_content"] = c.reasoning;
    if (!c.refusal.empty()) message["refusal"] = c.refusal;
    if (!c.calls.empty()) {
      json::array calls;
      for (const auto& [call_index, call] : c.calls) {
        json::object fn;
        fn["name"] = call.name;
        fn["arguments"] = call.arguments;
        json::object entry;
        entry["id"] = call.id;
        entry["type"] = "function";
        entry["function"] = std::move(fn);
        calls.push_back(std::move(entry));
      }
      message["tool_calls"] = std::move(calls);
    }
    json::object choice;
    choice["index"] = index;
    choice["message"] = std::move(message);
    choice["logprobs"] = nullptr;
    if (c.finish_reason) choice["finish_reason"] = *c.finish_reason;
    else choice["finish_reason"] = nullptr;
    if (c.stop_reason) choice["stop_reason"] = *c.stop_reason;
    choices.push_back(std::move(choice));
  }
  doc["choices"] = std::move(choices);
  if (usage_) {
    json::object usage;
    usage["prompt_tokens"] = usage_->prompt_tokens;
    usage["completion_tokens"] = usage_->completion_tokens;
    usage["total_tokens"] = usage_->total_tokens;
    if (usage_->cached_tokens > 0) usage["prompt_tokens_details"] = json::object{{"cached_tokens", usage_->cached_tokens}};
    if (usage_->reasoning_tokens > 0)
      usage["completion_tokens_details"] = json::object{{"reasoning_tokens", usage_->reasoning_tokens}};
    doc["usage"] = std::move(usage);
  }
  return json::serialize(doc);
}

}  // namespace e2ee::proxy::field

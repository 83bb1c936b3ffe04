// OpenAI Responses requests → chat completions (src/api/responses/request_translator.cpp): the
// Codex path; every byte a client posts to /v1/responses reaches it.
//
// Input: mode byte (the RequestOptions), then the request body.
// Checks: a 400 invalid_request_error with a code and a message, or a chat request that is a
// JSON object with the client's model, a messages array of objects with a role, the stream
// flag, and every function offered to the engine mapping back to a client tool; ids derive
// from the token;
// the metadata echoed later is JSON; translation is deterministic.

#include "api/responses/request_translator.hpp"
#include "fuzz_support.hpp"

namespace {

namespace responses = e2ee::api::responses;
using e2ee::api::ApiError;

responses::RequestOptions options_of(std::uint8_t mode) {
  responses::RequestOptions o;
  o.id_token = "fuzzTOKEN";
  o.created_at = 1700000000;
  o.reasoning_output = (mode & 1) == 0 ? responses::ReasoningOutput::raw_text : responses::ReasoningOutput::summary;
  o.split_think_tags = (mode & 2) == 0;
  o.effort_sets_thinking_switch = (mode & 4) == 0;
  o.forward_reasoning_history = (mode & 8) == 0;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = e2ee::fuzz::split_mode(data, size);  // not a structured binding: clang 14 cannot capture one
  const auto options = options_of(input.mode);
  const auto result = e2ee::fuzz::translate_request([&] { return responses::to_chat_request(input.rest, options); });
  if (const auto* e = std::get_if<ApiError>(&result)) {
    FUZZ_CHECK(e2ee::fuzz::parse_json(e2ee::api::openai_error_json(*e)).has_value());
    return 0;
  }
  const auto& t = std::get<responses::TranslatedRequest>(result);
  FUZZ_CHECK(t.response_id == "resp_" + options.id_token && t.id_token == options.id_token);
  FUZZ_CHECK(t.created_at == options.created_at);

  const auto chat = e2ee::fuzz::parse_json(t.chat_json);
  FUZZ_CHECK_MSG(chat && chat->is_object(), t.chat_json);
  const auto* model = e2ee::fuzz::member(*chat, "model");
  FUZZ_CHECK(model != nullptr && model->is_string() && model->get_string() == t.model);
  const auto* stream = e2ee::fuzz::member(*chat, "stream");
  FUZZ_CHECK(stream != nullptr && stream->is_bool() && stream->get_bool() == t.stream);
  const auto* messages = e2ee::fuzz::member(*chat, "messages");
  FUZZ_CHECK(messages != nullptr && messages->is_array());
  for (const auto& m : messages->get_array()) {
    const auto* role = e2ee::fuzz::member(m, "role");
    FUZZ_CHECK(role != nullptr && role->is_string());
  }
  // Every function the engine is offered maps back to a client tool (tools may also list client
  // tools that were not offered, e.g. outside allowed_tools).
  if (const auto* tools = e2ee::fuzz::member(*chat, "tools"); tools != nullptr) {
    FUZZ_CHECK(tools->is_array());
    for (const auto& tool : tools->get_array()) {
      const auto* fn = e2ee::fuzz::member(tool, "function");
      const auto* name = fn == nullptr ? nullptr : e2ee::fuzz::member(*fn, "name");
      FUZZ_CHECK(name != nullptr && name->is_string());
      const auto ref = t.tools.find(std::string(name->get_string()));
      FUZZ_CHECK_MSG(ref != t.tools.end() && !ref->second.name.empty(), std::string(name->get_string()));
    }
  }
  FUZZ_CHECK(e2ee::fuzz::parse_json(t.metadata_json).has_value());
  return 0;
}

#include "api/responses/response_translator.hpp"

#include <boost/json.hpp>

#include "api/chat/chat_model.hpp"
#include "api/responses/output_assembler.hpp"

namespace e2ee::api::responses {

std::variant<std::string, ApiError> to_response(std::string_view chat_completion_json,
                                                const TranslatedRequest& request) {
  auto completion = chat::parse_completion(chat_completion_json);
  if (!completion)
    return upstream_error(502, "malformed_upstream_response", "the engine's answer is not a chat completion");
  if (completion->error_message) {
    // Not started yet, so the client gets an HTTP error in the OpenAI shape, with the code it
    // would have seen in response.failed.
    ApiError error = upstream_error(completion->error_status ? completion->error_status : 502,
                                    completion->error_code, "the engine reported an error: " + *completion->error_message);
    error.type = completion->error_type.empty() ? "upstream_error" : completion->error_type;
    error.code = std::string(detail::failure_body(error).at("code").as_string());
    return error;
  }
  detail::Assembler assembler(request);
  OutEvents discarded;  // the same events the stream would send; only the final object is kept
  assembler.start(discarded);
  if (completion->usage) assembler.set_usage(*completion->usage);
  for (const auto& choice : completion->choices) {
    if (choice.index != 0) continue;
    chat::Choice whole = choice;
    // A whole message ends here even if the engine left finish_reason out.
    if (!whole.finish_reason) whole.finish_reason = "stop";
    assembler.add_choice(whole, discarded);
  }
  assembler.finish(discarded);
  return boost::json::serialize(assembler.final_response());
}

}  // namespace e2ee::api::responses

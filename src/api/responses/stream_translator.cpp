#include "api/responses/stream_translator.hpp"

#include "api/chat/chat_model.hpp"

namespace e2ee::api::responses {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\r' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

StreamTranslator::StreamTranslator(const TranslatedRequest& request) : assembler_(request) {}

OutEvents StreamTranslator::start() {
  OutEvents out;
  if (!assembler_.finished()) assembler_.start(out);
  return out;
}

OutEvents StreamTranslator::on_chunk(std::string_view chat_chunk_data) {
  OutEvents out;
  if (assembler_.finished()) return out;
  auto data = trim(chat_chunk_data);
  if (data == "[DONE]") return on_done();
  if (data.empty()) return out;  // a keep-alive with no payload
  auto chunk = chat::parse_chunk(data);
  if (!chunk) {
    assembler_.fail(upstream_error(502, "malformed_upstream_response",
                                   "the engine sent a stream chunk that is not a chat completion chunk"),
                    out);
    return out;
  }
  if (chunk->error_message) {
    ApiError error = upstream_error(chunk->error_status ? chunk->error_status : 502, chunk->error_code,
                                    "the engine reported an error: " + *chunk->error_message);
    error.type = chunk->error_type;
    assembler_.fail(error, out);
    return out;
  }
  assembler_.start(out);
  if (chunk->usage) assembler_.set_usage(*chunk->usage);
  // Responses has one answer per request: only choice 0 is read (the request never asks for n>1).
  for (const auto& choice : chunk->choices)
    if (choice.index == 0) assembler_.add_choice(choice, out);
  return out;
}

OutEvents StreamTranslator::on_done() {
  OutEvents out;
  assembler_.finish(out);
  return out;
}

OutEvents StreamTranslator::on_error(const ApiError& error) {
  OutEvents out;
  assembler_.fail(error, out);
  return out;
}

}  // namespace e2ee::api::responses

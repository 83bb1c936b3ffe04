#pragma once
// Chat-completions SSE chunks in, OpenAI Responses SSE events out (event name = the payload's
// `type`). An incremental state machine with per-request state only; see output_assembler.hpp
// for the item rules.
//
// Guarantees, whatever the engine does: events carry `sequence_number` 0, 1, 2 … with no gaps;
// response.created then response.in_progress come first; every delta belongs to an item that
// was added and is not yet done; exactly one terminal event (response.completed,
// response.incomplete or response.failed) ends the stream, and nothing follows it.

#include <string_view>

#include "api/api_error.hpp"
#include "api/out_event.hpp"
#include "api/responses/output_assembler.hpp"
#include "api/responses/translated_request.hpp"

namespace e2ee::api::responses {

class StreamTranslator {
 public:
  // `request` must outlive the translator.
  explicit StreamTranslator(const TranslatedRequest& request);

  // response.created + response.in_progress, if not sent yet. Optional: the pipeline may call it
  // as soon as the engine accepted the request, so the client sees progress during prefill.
  OutEvents start();
  // The data of one chat.completion.chunk event. "[DONE]" is accepted and acts as on_done().
  // A chunk that is not a chat chunk, or an in-band engine error, ends the stream with
  // response.failed.
  OutEvents on_chunk(std::string_view chat_chunk_data);
  // The engine's stream ended normally ([DONE] or end of body). Ends with response.completed or
  // response.incomplete (finish_reason length / content_filter).
  OutEvents on_done();
  // The upstream failed (transport, decryption, HTTP error after the stream began, timeout).
  // Ends with response.failed carrying an error.code Codex understands — unless the engine had
  // already finished its answer, in which case only the trailing usage was lost and the stream
  // ends normally.
  OutEvents on_error(const ApiError& error);
  // A terminal event has been produced; every further call returns no events.
  bool finished() const { return assembler_.finished(); }

 private:
  detail::Assembler assembler_;
};

}  // namespace e2ee::api::responses

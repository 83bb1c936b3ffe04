#pragma once
// One chat.completion built from the decrypted chunks of a stream, for a client that did not ask
// to stream from a provider that only streams under E2EE (Venice, venice-protocol.md §8).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/chat/chat_model.hpp"
#include "common/result.hpp"

namespace e2ee::proxy::field {

class ChunkAggregator {
 public:
  // One decrypted chat.completion.chunk (not "[DONE]"). An engine error inside the stream is an
  // error here (Errc::unavailable, with the engine's message).
  Status add(std::string_view chunk_json);
  // The completion: id, created, model of the first chunk; per choice the joined content,
  // reasoning (as reasoning_content), refusal, tool calls assembled by index, the last
  // finish_reason (and vLLM's stop_reason); the last usage seen.
  std::string finish(std::string_view fallback_model) const;

 private:
  struct Call {
    std::string id, name, arguments;
  };
  struct Choice {
    std::string content, reasoning, refusal;
    bool has_content = false;
    std::map<int, Call> calls;
    std::optional<std::string> finish_reason, stop_reason;
  };
  std::string id_, model_;
  std::int64_t created_ = 0;
  bool started_ = false;
  std::map<int, Choice> choices_;
  std::optional<api::chat::Usage> usage_;
};

}  // namespace e2ee::proxy::field

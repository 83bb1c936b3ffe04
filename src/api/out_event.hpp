#pragma once
// One server-sent event a translator wants written to the client, in order. The pipeline formats
// it ("event: <event>\n" when named, "data: <data>\n\n") and flushes it; translators never do I/O.

#include <string>
#include <vector>

namespace e2ee::api {

struct OutEvent {
  std::string event;  // "" for unnamed events (OpenAI chat); "message_start", … for Anthropic
  std::string data;   // JSON text
};

using OutEvents = std::vector<OutEvent>;

}  // namespace e2ee::api

#pragma once
// Server-sent events (WHATWG HTML, "Server-sent events" section 9.2): an incremental parser that
// accepts input split at any byte, and the writer side.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2ee::http {

struct SseEvent {
  std::string event;  // "event:" field; empty means the default "message"
  std::string data;   // "data:" lines joined with '\n'
  std::string id;     // "id:" field
  std::optional<long> retry;  // "retry:" field
};

// Feed bytes as they arrive; complete events come out in order. Handles CRLF, CR and LF line
// endings (also split between feeds), a leading UTF-8 BOM, comment lines, fields without a colon
// and the optional space after the colon. Enforces a cap on a single event's size.
class SseParser {
 public:
  explicit SseParser(std::size_t max_event_bytes = 16 * 1024 * 1024);

  // Returns false when an event exceeded the cap (the stream is then unusable).
  bool feed(std::string_view bytes, std::vector<SseEvent>& out);
  // At end of stream: a final event without its terminating blank line is dispatched here
  // (the WHATWG algorithm discards it; LLM servers that forget the last blank line exist, and
  // dropping their last chunk silently would be worse). Returns it if any.
  std::optional<SseEvent> finish();

 private:
  void process_line(std::string_view line, std::vector<SseEvent>& out);
  std::string line_;
  SseEvent pending_;
  bool has_data_ = false;
  bool has_fields_ = false;
  bool saw_cr_ = false;
  bool bom_checked_ = false;
  std::size_t max_event_bytes_;
  bool failed_ = false;
};

// "event: <name>\n" (when named) + one "data: " line per line of data + "\n".
std::string format_sse(std::string_view data, std::string_view event = {});

}  // namespace e2ee::http

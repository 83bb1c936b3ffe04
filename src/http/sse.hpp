#pragma once
// Server-sent events (WHATWG HTML, "Server-sent events" section 9.2): an incremental parser that
// accepts input split at any byte, and the writer side.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2ee::http {

struct SseEvent {
  std::string event;  // "event:" field; empty means the default "message"
  std::string data;   // "data:" lines joined with '\n'
  std::string id;     // the last event ID: the latest "id:" field, which persists across events (WHATWG)
  std::optional<long> retry;  // the latest valid "retry:" value seen since the previous event, if any

  friend bool operator==(const SseEvent&, const SseEvent&) = default;
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
  void dispatch(std::vector<SseEvent>& out);
  bool within_cap(std::size_t extra) const noexcept;

  std::string line_;            // a line not yet terminated, carried over between feeds
  std::string data_;            // the data buffer: each "data:" value followed by '\n'
  std::string event_;           // the event type buffer
  std::string last_id_;         // the last event ID buffer; persists across events (WHATWG)
  std::optional<long> retry_;   // the latest valid "retry:" since the previous dispatched event
  bool saw_cr_ = false;         // the previous feed ended in CR, so a leading LF belongs to it
  bool bom_checked_ = false;    // the first bytes of the stream have been checked for a BOM
  std::size_t bom_matched_ = 0; // BOM bytes matched so far (the BOM itself may be split)
  std::size_t max_event_bytes_;
  bool failed_ = false;
};

// "event: <name>\n" (when named) + one "data: " line per line of data + "\n".
std::string format_sse(std::string_view data, std::string_view event = {});
// The same appended to `out`, for writers that batch several events into one write.
void append_sse(std::string& out, std::string_view data, std::string_view event = {});

}  // namespace e2ee::http

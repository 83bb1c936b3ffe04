#include "http/sse.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

namespace e2ee::http {

namespace {

constexpr char kBom[] = "\xEF\xBB\xBF";
constexpr std::size_t kBomSize = 3;

// The first CR or LF at or after `from`, or npos. string_view::find_first_of("\r\n") calls
// memchr on the two-byte set once per input byte, which made it the largest single cost of a
// relayed stream (perf: 9 % of the proxy). Two bounded memchr scans instead: LF over the rest,
// then CR over the line that LF ends, so every byte is looked at about twice, vectorised.
std::size_t find_line_break(std::string_view text, std::size_t from) {
  if (from >= text.size()) return std::string_view::npos;
  const char* begin = text.data() + from;
  const std::size_t rest = text.size() - from;
  const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', rest));
  const std::size_t line = lf != nullptr ? static_cast<std::size_t>(lf - begin) : rest;
  const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', line));
  if (cr != nullptr) return from + static_cast<std::size_t>(cr - begin);
  return lf != nullptr ? from + line : std::string_view::npos;
}

}  // namespace

SseParser::SseParser(std::size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

bool SseParser::within_cap(std::size_t extra) const noexcept {
  return line_.size() + data_.size() + event_.size() + extra <= max_event_bytes_;
}

bool SseParser::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  if (failed_) return false;
  std::size_t i = 0;
  const std::size_t n = bytes.size();

  // The BOM is stripped only at the very start of the stream, and it may arrive split; bytes
  // that turn out not to be a BOM are ordinary content of the first line.
  while (!bom_checked_ && i < n) {
    if (bytes[i] == kBom[bom_matched_]) {
      ++i;
      if (++bom_matched_ == kBomSize) bom_checked_ = true;
    } else {
      line_.append(kBom, bom_matched_);
      bom_checked_ = true;
    }
  }

  // CRLF split across two feeds is one line ending, not two.
  if (saw_cr_ && i < n) {
    if (bytes[i] == '\n') ++i;
    saw_cr_ = false;
  }

  while (i < n) {
    const std::size_t end = find_line_break(bytes, i);
    if (end == std::string_view::npos) {
      if (!within_cap(n - i)) {
        failed_ = true;
        return false;
      }
      line_.append(bytes.substr(i));
      break;
    }
    std::string_view line = bytes.substr(i, end - i);
    if (!within_cap(line.size())) {
      failed_ = true;
      return false;
    }
    if (!line_.empty()) {
      line_.append(line);
      line = line_;
    }
    process_line(line, out);
    line_.clear();
    if (failed_) return false;

    i = end + 1;
    if (bytes[end] == '\r') {
      if (i < n) {
        if (bytes[i] == '\n') ++i;
      } else {
        saw_cr_ = true;
      }
    }
  }
  return true;
}

std::optional<SseEvent> SseParser::finish() {
  if (failed_) return std::nullopt;
  if (!bom_checked_) {
    line_.append(kBom, bom_matched_);
    bom_checked_ = true;
  }
  std::vector<SseEvent> out;
  if (!line_.empty()) {
    const std::string line = std::move(line_);
    line_.clear();
    process_line(line, out);
    if (failed_) return std::nullopt;
  }
  dispatch(out);
  saw_cr_ = false;
  if (out.empty()) return std::nullopt;
  return std::move(out.front());
}

void SseParser::process_line(std::string_view line, std::vector<SseEvent>& out) {
  if (line.empty()) {
    dispatch(out);
    return;
  }
  if (line.front() == ':') return;  // comment

  const std::size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }

  if (field == "data") {
    // The line was already counted against the cap while it sat in the input; the data buffer
    // keeps growing across lines, so check the total again.
    if (data_.size() + event_.size() + value.size() + 1 > max_event_bytes_) {
      failed_ = true;
      return;
    }
    // The buffer is moved out with each event, so it starts empty: size it for the line and
    // its '\n' at once (append would size it for the line alone, and push_back reallocate).
    if (data_.empty()) data_.reserve(value.size() + 1);
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    // Only ASCII digits count; anything else (sign, space, overflow) makes the field ignored.
    long parsed = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    const bool digits_only = !value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos;
    if (digits_only && ec == std::errc() && end == value.data() + value.size()) retry_ = parsed;
  }
  // Any other field name is ignored, as the standard says.
}

void SseParser::dispatch(std::vector<SseEvent>& out) {
  if (data_.empty()) {
    // No data lines: nothing to dispatch, and the event type does not carry over.
    event_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  SseEvent event;
  event.event = std::move(event_);
  event.data = std::move(data_);
  event.id = last_id_;
  event.retry = retry_;
  retry_.reset();
  event_.clear();
  data_.clear();
  out.push_back(std::move(event));
}

std::string format_sse(std::string_view data, std::string_view event) {
  std::string out;
  append_sse(out, data, event);
  return out;
}

void append_sse(std::string& out, std::string_view data, std::string_view event) {
  const std::size_t needed = data.size() + event.size() + 16;  // one "data: " line is 7 bytes more
  if (out.capacity() - out.size() < needed) out.reserve(std::max(out.size() + needed, 2 * out.capacity()));
  if (!event.empty()) {
    // A line break in the name would start a new field; drop them rather than emit a broken frame.
    out += "event: ";
    for (char c : event) {
      if (c != '\r' && c != '\n') out.push_back(c);
    }
    out.push_back('\n');
  }
  // CR, LF and CRLF all end a line for the parser, so each of them must start a new data line.
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = find_line_break(data, start);
    out += "data: ";
    out.append(data.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    out.push_back('\n');
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out.push_back('\n');
}

}  // namespace e2ee::http

#include "common/json_text.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

namespace e2ee::json_text {
namespace {

constexpr std::size_t kDefaultMaxDepth = 512;

// Container kinds on the scanner's stack. Depth is bounded by the caller, but the bound may be
// large, so kinds live in a bit stack: 1024 levels inline (no allocation for any sane document),
// heap words only beyond that.
class KindStack {
 public:
  void set(std::size_t index, bool is_object) {
    std::uint64_t* word = nullptr;
    if (index < kInlineBits) {
      word = &inline_[index / 64];
    } else {
      const std::size_t w = (index - kInlineBits) / 64;
      if (w >= heap_.size()) heap_.resize(w + 1, 0);
      word = &heap_[w];
    }
    const std::uint64_t bit = std::uint64_t{1} << (index % 64);
    *word = is_object ? (*word | bit) : (*word & ~bit);
  }
  bool is_object(std::size_t index) const {
    const std::uint64_t word = index < kInlineBits ? inline_[index / 64] : heap_[(index - kInlineBits) / 64];
    return ((word >> (index % 64)) & 1u) != 0;
  }

 private:
  static constexpr std::size_t kInlineBits = 1024;
  std::array<std::uint64_t, kInlineBits / 64> inline_{};
  std::vector<std::uint64_t> heap_;
};

// True when any of the 8 bytes of `w` needs the slow path inside a string: a control character
// (< 0x20), '"', '\\' or a non-ASCII byte (>= 0x80, the start or middle of a UTF-8 sequence).
// Word-at-a-time ("SWAR") tests: for bytes below 0x80, (x - k*0x01..) & ~x & 0x80.. flags a byte
// below k, and a byte equal to c is a zero byte of x ^ c*0x01... A 450 KB agent context is almost
// all string content, and the byte-at-a-time loop was a quarter of the CPU of a 450 KB request
// on both sides (perf, docs/performance.md history).
inline bool word_needs_attention(std::uint64_t x) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  const std::uint64_t below_space = (x - ones * 0x20) & ~x;
  const std::uint64_t q = x ^ (ones * '"');
  const std::uint64_t quote = (q - ones) & ~q;
  const std::uint64_t b = x ^ (ones * '\\');
  const std::uint64_t backslash = (b - ones) & ~b;
  return ((x | below_space | quote | backslash) & highs) != 0;
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
std::uint8_t byte(char c) { return static_cast<std::uint8_t>(c); }

int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the well-formed UTF-8 sequence at p (Unicode Table 3-7), or 0. This is the table
// that excludes overlong forms (C0, C1, E0 80..9F, F0 80..8F), encoded surrogates (ED A0..BF) and
// code points above U+10FFFF (F4 90.., F5..FF).
std::size_t utf8_sequence_length(const char* p, const char* end) {
  const std::uint8_t b0 = byte(*p);
  const auto avail = static_cast<std::size_t>(end - p);
  auto cont = [&](std::size_t i, std::uint8_t lo = 0x80, std::uint8_t hi = 0xBF) {
    return i < avail && byte(p[i]) >= lo && byte(p[i]) <= hi;
  };
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 == 0xE0) return cont(1, 0xA0, 0xBF) && cont(2) ? 3 : 0;
  if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (b0 == 0xF0) return cont(1, 0x90, 0xBF) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

void append_utf8(std::uint32_t cp, char* out, std::size_t& n) {
  if (cp < 0x80) {
    out[n++] = static_cast<char>(cp);
  } else if (cp < 0x800) {
    out[n++] = static_cast<char>(0xC0 | (cp >> 6));
    out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out[n++] = static_cast<char>(0xE0 | (cp >> 12));
    out[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out[n++] = static_cast<char>(0xF0 | (cp >> 18));
    out[n++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out[n++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[n++] = static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::uint32_t read_hex4(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 4) | static_cast<std::uint32_t>(hex_nibble(p[i]));
  return v;
}

// Decodes the body of a string literal that the scanner has already validated (between, not
// including, the quotes), calling emit(const char*, size_t) for each run of decoded bytes.
template <typename Emit>
void decode_validated(const char* p, const char* end, Emit&& emit) {
  while (p < end) {
    const char* run = p;
    while (p < end && *p != '\\') ++p;
    if (p > run) emit(run, static_cast<std::size_t>(p - run));
    if (p == end) break;
    char buf[4];
    std::size_t n = 0;
    const char e = p[1];
    p += 2;
    switch (e) {
      case '"': buf[n++] = '"'; break;
      case '\\': buf[n++] = '\\'; break;
      case '/': buf[n++] = '/'; break;
      case 'b': buf[n++] = '\b'; break;
      case 'f': buf[n++] = '\f'; break;
      case 'n': buf[n++] = '\n'; break;
      case 'r': buf[n++] = '\r'; break;
      case 't': buf[n++] = '\t'; break;
      default: {  // 'u': validation guaranteed a BMP scalar or a high+low surrogate pair
        std::uint32_t cp = read_hex4(p);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          const std::uint32_t low = read_hex4(p + 2);
          p += 6;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        append_utf8(cp, buf, n);
      }
    }
    emit(buf, n);
  }
}

// Compares a validated literal body with `key` without materialising the decoded string. Keys
// without escapes (nearly all) compare with one memcmp.
bool key_equals(const char* body, const char* body_end, std::string_view key) {
  const auto raw_len = static_cast<std::size_t>(body_end - body);
  if (std::memchr(body, '\\', raw_len) == nullptr) {
    return raw_len == key.size() && (raw_len == 0 || std::memcmp(body, key.data(), raw_len) == 0);
  }
  if (key.size() > raw_len) return false;  // escapes only ever shorten
  std::size_t matched = 0;
  bool equal = true;
  decode_validated(body, body_end, [&](const char* s, std::size_t n) {
    if (!equal) return;
    if (n > key.size() - matched || std::memcmp(s, key.data() + matched, n) != 0) {
      equal = false;
      return;
    }
    matched += n;
  });
  return equal && matched == key.size();
}

// A strict RFC 8259 scanner over [begin, end). Every scan_* function starts at the first byte
// of its production and leaves `p` one past its last byte, or records an error and returns false.
class Scanner {
 public:
  Scanner(std::string_view text, std::size_t max_depth)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  const char* begin() const { return begin_; }
  const char* pos() const { return p_; }
  std::size_t offset() const { return static_cast<std::size_t>(p_ - begin_); }
  bool at_end() const { return p_ == end_; }
  bool peek_is(char c) const { return p_ < end_ && *p_ == c; }
  void advance() { ++p_; }

  void skip_ws() {
    while (p_ < end_ && is_ws(*p_)) ++p_;
  }

  bool fail(const char* what, Errc code = Errc::invalid_argument) {
    if (error_what_ == nullptr) {
      error_what_ = what;
      error_at_ = p_;
      error_code_ = code;
    }
    return false;
  }

  Error error() const {
    if (error_what_ == nullptr) return make_error(Errc::internal, "JSON scanner failed without a reason");
    return make_error(error_code_, "invalid JSON at byte " + std::to_string(error_at_ - begin_) + ": " + error_what_);
  }
  // fail() then error(), for callers that return the Error directly.
  Error error_here(const char* what) {
    fail(what);
    return error();
  }

  bool expect(char c, const char* what) {
    if (!peek_is(c)) return fail(what);
    ++p_;
    return true;
  }

  bool scan_string() {
    ++p_;  // opening quote
    for (;;) {
      // Fast path: printable ASCII that needs no attention, eight bytes at a time, then bytewise.
      while (end_ - p_ >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p_, sizeof word);
        if (word_needs_attention(word)) break;
        p_ += 8;
      }
      while (p_ < end_) {
        const std::uint8_t b = byte(*p_);
        if (b < 0x20 || b == '"' || b == '\\' || b >= 0x80) break;
        ++p_;
      }
      if (p_ == end_) return fail("unterminated string");
      const std::uint8_t b = byte(*p_);
      if (b == '"') {
        ++p_;
        return true;
      }
      if (b == '\\') {
        if (!scan_escape()) return false;
      } else if (b < 0x20) {
        return fail("unescaped control character in string");
      } else {
        const std::size_t n = utf8_sequence_length(p_, end_);
        if (n == 0) return fail("invalid UTF-8");
        p_ += n;
      }
    }
  }

  // A complete value whose containers start at nesting level `depth0` (0 for a document, 1 for a
  // member of the top-level object). Iterative, so nesting costs heap-free bits, not stack frames.
  bool scan_value(std::size_t depth0) {
    KindStack kinds;
    std::size_t depth = depth0;
    auto open = [&](bool is_object) {
      if (depth >= max_depth_) return fail("nesting deeper than the limit", Errc::limit_exceeded);
      kinds.set(depth - depth0, is_object);
      ++depth;
      ++p_;
      return true;
    };
    for (;;) {
      // Expecting a value.
      skip_ws();
      if (p_ == end_) return fail("unexpected end of input");
      bool complete = true;  // false when a container was opened and its first element follows
      switch (*p_) {
        case '{':
          if (!open(true)) return false;
          skip_ws();
          if (peek_is('}')) {
            ++p_;
            --depth;
          } else {
            if (!scan_key_and_colon()) return false;
            complete = false;
          }
          break;
        case '[':
          if (!open(false)) return false;
          skip_ws();
          if (peek_is(']')) {
            ++p_;
            --depth;
          } else {
            complete = false;
          }
          break;
        case '"':
          if (!scan_string()) return false;
          break;
        case 't':
          if (!scan_literal("true")) return false;
          break;
        case 'f':
          if (!scan_literal("false")) return false;
          break;
        case 'n':
          if (!scan_literal("null")) return false;
          break;
        default:
          if (*p_ == '-' || is_digit(*p_)) {
            if (!scan_number()) return false;
          } else {
            return fail("unexpected character");
          }
      }
      if (!complete) continue;
      // After a value: close finished containers until one continues with ','.
      for (;;) {
        if (depth == depth0) return true;
        skip_ws();
        if (p_ == end_) return fail("unexpected end of input");
        const bool in_object = kinds.is_object(depth - depth0 - 1);
        if (*p_ == ',') {
          ++p_;
          if (in_object) {
            skip_ws();
            if (!scan_key_and_colon()) return false;
          }
          break;
        }
        if (*p_ == (in_object ? '}' : ']')) {
          ++p_;
          --depth;
          continue;
        }
        return fail(in_object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
  }

 private:
  bool scan_key_and_colon() {
    if (!peek_is('"')) return fail("expected a string key");
    if (!scan_string()) return false;
    skip_ws();
    return expect(':', "expected ':'");
  }

  bool scan_escape() {
    if (end_ - p_ < 2) return fail("unterminated escape");
    switch (p_[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        p_ += 2;
        return true;
      case 'u': break;
      default: return fail("invalid escape");
    }
    if (!hex4_at(p_ + 2)) return fail("invalid \\u escape");
    const std::uint32_t unit = read_hex4(p_ + 2);
    if (unit >= 0xDC00 && unit <= 0xDFFF) return fail("unpaired low surrogate escape");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      const char* q = p_ + 6;
      if (end_ - q < 6 || q[0] != '\\' || q[1] != 'u' || !hex4_at(q + 2)) {
        return fail("unpaired high surrogate escape");
      }
      const std::uint32_t low = read_hex4(q + 2);
      if (low < 0xDC00 || low > 0xDFFF) return fail("unpaired high surrogate escape");
      p_ += 12;
      return true;
    }
    p_ += 6;
    return true;
  }

  bool hex4_at(const char* q) const {
    if (end_ - q < 4) return false;
    for (int i = 0; i < 4; ++i) {
      if (hex_nibble(q[i]) < 0) return false;
    }
    return true;
  }

  bool scan_literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
      return fail("invalid literal");
    }
    p_ += word.size();
    return true;
  }

  // -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?  — kept as text, never converted, so
  // any magnitude or precision passes through unchanged.
  bool scan_number() {
    if (*p_ == '-') ++p_;
    if (p_ == end_ || !is_digit(*p_)) return fail("invalid number");
    if (*p_ == '0') {
      ++p_;  // a leading zero stands alone; a digit after it is caught by the caller as garbage
    } else {
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (peek_is('.')) {
      ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail("invalid number: digit expected after '.'");
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    if (peek_is('e') || peek_is('E')) {
      ++p_;
      if (peek_is('+') || peek_is('-')) ++p_;
      if (p_ == end_ || !is_digit(*p_)) return fail("invalid number: digit expected in exponent");
      while (p_ < end_ && is_digit(*p_)) ++p_;
    }
    return true;
  }

  const char* begin_;
  const char* p_;
  const char* end_;
  std::size_t max_depth_;
  const char* error_what_ = nullptr;
  const char* error_at_ = nullptr;
  Errc error_code_ = Errc::invalid_argument;
};

// Appends the JSON string literal for `text` (see quote() in the header).
void append_quoted(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const std::uint8_t b = byte(*p);
    if (b >= 0x80) {
      const std::size_t n = utf8_sequence_length(p, end);
      if (n == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD for one bad byte, then resynchronise
        ++p;
      } else {
        out.append(p, n);
        p += n;
      }
      continue;
    }
    switch (b) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (b < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xF]};
          out.append(esc, sizeof esc);
        } else {
          out.push_back(static_cast<char>(b));
        }
    }
    ++p;
  }
  out.push_back('"');
}

// What walk_object saw besides the members.
struct ObjectShape {
  std::size_t close_brace = 0;  // offset of the top-level object's '}'
  std::size_t members = 0;
  std::size_t last_member_end = 0;
};

// Walks the members of the top-level object, validating the whole document on the way, and
// calls on_member(const MemberSpan&, const char* key_body, const char* key_body_end) for each,
// in order (the key's literal without its quotes, still escaped). Callers that build
// output as they go discard it when this fails later.
template <typename OnMember>
Result<ObjectShape> walk_object(std::string_view text, OnMember&& on_member) {
  Scanner s(text, kDefaultMaxDepth);
  ObjectShape shape;
  s.skip_ws();
  if (!s.peek_is('{')) {
    if (s.at_end()) return make_error(Errc::invalid_argument, "invalid JSON: empty document");
    // Tell "valid JSON but not an object" apart from garbage: the former is a caller's question.
    Scanner v(text, kDefaultMaxDepth);
    v.skip_ws();
    if (v.scan_value(0)) {
      v.skip_ws();
      if (v.at_end()) return make_error(Errc::invalid_argument, "JSON top level is not an object");
    }
    return v.error();
  }
  s.advance();
  s.skip_ws();
  if (!s.peek_is('}')) {
    for (;;) {
      if (!s.peek_is('"')) return s.error_here("expected a string key");
      const char* key_begin = s.pos();
      if (!s.scan_string()) return s.error();
      const char* key_end = s.pos();
      s.skip_ws();
      if (!s.expect(':', "expected ':'")) return s.error();
      s.skip_ws();
      const std::size_t value_begin = s.offset();
      if (!s.scan_value(1)) return s.error();
      const std::size_t value_end = s.offset();
      const MemberSpan span{static_cast<std::size_t>(key_begin - s.begin()), value_end, value_begin, value_end};
      on_member(span, key_begin + 1, key_end - 1);
      ++shape.members;
      shape.last_member_end = value_end;
      s.skip_ws();
      if (s.peek_is(',')) {
        s.advance();
        s.skip_ws();
        continue;
      }
      if (s.peek_is('}')) break;
      return s.error_here(s.at_end() ? "unexpected end of input" : "expected ',' or '}'");
    }
  }
  shape.close_brace = s.offset();
  s.advance();
  s.skip_ws();
  if (!s.at_end()) return s.error_here("unexpected data after the JSON value");
  return shape;
}

}  // namespace

Status validate(std::string_view text, std::size_t max_depth) {
  Scanner s(text, max_depth);
  s.skip_ws();
  if (s.at_end()) return make_error(Errc::invalid_argument, "invalid JSON: empty document");
  if (!s.scan_value(0)) return s.error();
  s.skip_ws();
  if (!s.at_end()) return s.error_here("unexpected data after the JSON value");
  return {};
}

Result<std::optional<MemberSpan>> find_member(std::string_view object_text, std::string_view key) {
  std::optional<MemberSpan> found;
  auto shape = walk_object(object_text, [&](const MemberSpan& span, const char* kb, const char* ke) {
    const bool matches = key_equals(kb, ke, key);
    if (matches) found = span;  // the last duplicate wins
  });
  if (!shape) return std::move(shape).error();
  return found;
}

Result<ObjectMembers> ObjectMembers::index(std::string_view object_text) {
  ObjectMembers members;
  members.text_ = object_text;
  auto shape = walk_object(object_text, [&](const MemberSpan& span, const char* kb, const char* ke) {
    members.entries_.push_back(Entry{static_cast<std::size_t>(kb - object_text.data()),
                                     static_cast<std::size_t>(ke - object_text.data()), span});
  });
  if (!shape) return std::move(shape).error();
  members.close_brace_ = shape->close_brace;
  members.last_member_end_ = shape->last_member_end;
  return members;
}

ObjectMembers ObjectMembers::moved_to(std::string_view same_text) const {
  ObjectMembers moved = *this;
  moved.text_ = same_text;
  return moved;
}

std::optional<MemberSpan> ObjectMembers::find(std::string_view key) const {
  // Backwards: the last duplicate wins, as in find_member.
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it)
    if (key_equals(text_.data() + it->key_begin, text_.data() + it->key_end, key)) return it->span;
  return std::nullopt;
}

std::string_view ObjectMembers::value(std::string_view key) const {
  const auto span = find(key);
  return span ? text_.substr(span->value_begin, span->value_end - span->value_begin) : std::string_view{};
}

std::string_view member_value(std::string_view object_text, std::string_view key) {
  auto span = find_member(object_text, key);
  if (!span || !*span) return {};
  return object_text.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
}

namespace {

// set_member's output, built as the members go by: fed by walk_object (one pass over the text,
// the output its only allocation) or by an ObjectMembers index (no pass at all).
class MemberSetter {
 public:
  MemberSetter(std::string_view text, std::string_view key, std::string_view value_json)
      : text_(text), key_(key), value_(value_json) {
    // One allocation: a quoted key is at most 6 bytes per input byte ("\u001f") plus the quotes,
    // then ':' and ','.
    out_.reserve(text.size() + value_json.size() + 6 * key.size() + 4);
  }
  void on_member(const MemberSpan& span, const char* kb, const char* ke) {
    if (!key_equals(kb, ke, key_)) return;
    out_.append(text_, copied_to_, span.value_begin - copied_to_);
    out_.append(value_);
    copied_to_ = span.value_end;
    replaced_ = true;
  }
  std::string finish(const ObjectShape& shape) && {
    if (replaced_) {
      out_.append(text_, copied_to_);
      return std::move(out_);
    }
    // Append as the last member: right after the last value (so the whitespace before '}' stays
    // where it was), or just before '}' in an empty object.
    const std::size_t at = shape.members == 0 ? shape.close_brace : shape.last_member_end;
    out_.append(text_, 0, at);
    if (shape.members != 0) out_.push_back(',');
    append_quoted(out_, key_);
    out_.push_back(':');
    out_.append(value_);
    out_.append(text_, at);
    return std::move(out_);
  }

 private:
  std::string_view text_, key_, value_;
  std::string out_;
  std::size_t copied_to_ = 0;
  bool replaced_ = false;
};

// remove_member's output, fed like MemberSetter. A run of consecutive removed members i..j is cut as
//   [begin_i, begin_{j+1})  when a kept member follows (its leading comma and spacing go too),
//   [end_{i-1}, end_j)      when the run is at the end (the comma after member i-1 goes),
//   [begin_i, end_j)        when every member goes.
// These cuts are disjoint, so one forward pass can emit the output.
class MemberRemover {
 public:
  MemberRemover(std::string_view text, std::string_view key) : text_(text), key_(key) { out_.reserve(text.size()); }
  void on_member(const MemberSpan& span, const char* kb, const char* ke) {
    if (key_equals(kb, ke, key_)) {
      if (!in_run_) {
        in_run_ = true;
        run_begin_ = span.member_begin;
        run_has_before_ = have_prev_;
        before_run_end_ = prev_end_;
      }
      run_end_ = span.member_end;
    } else if (in_run_) {
      out_.append(text_, copied_to_, run_begin_ - copied_to_);
      copied_to_ = span.member_begin;
      in_run_ = false;
    }
    prev_end_ = span.member_end;
    have_prev_ = true;
  }
  std::string finish() && {
    if (in_run_) {
      const std::size_t cut = run_has_before_ ? before_run_end_ : run_begin_;
      out_.append(text_, copied_to_, cut - copied_to_);
      copied_to_ = run_end_;
    }
    out_.append(text_, copied_to_);
    return std::move(out_);
  }

 private:
  std::string_view text_, key_;
  std::string out_;
  std::size_t copied_to_ = 0;
  bool in_run_ = false;
  std::size_t run_begin_ = 0;       // begin of the run's first member
  std::size_t before_run_end_ = 0;  // end of the member before the run, if any
  bool run_has_before_ = false;
  std::size_t prev_end_ = 0;
  bool have_prev_ = false;
  std::size_t run_end_ = 0;
};

Status check_value(std::string_view value_json) {
  // The contract says value_json is valid JSON; checking costs little and guarantees the output is.
  if (auto ok = validate(value_json); !ok) {
    return make_error(Errc::invalid_argument, "set_member: value: " + ok.error().message);
  }
  return {};
}

}  // namespace

Result<std::string> ObjectMembers::with_member(std::string_view key, std::string_view value_json) const {
  if (auto ok = check_value(value_json); !ok) return std::move(ok).error();
  MemberSetter setter(text_, key, value_json);
  for (const Entry& e : entries_) setter.on_member(e.span, text_.data() + e.key_begin, text_.data() + e.key_end);
  return std::move(setter).finish(ObjectShape{close_brace_, entries_.size(), last_member_end_});
}

std::string ObjectMembers::without_member(std::string_view key) const {
  MemberRemover remover(text_, key);
  for (const Entry& e : entries_) remover.on_member(e.span, text_.data() + e.key_begin, text_.data() + e.key_end);
  return std::move(remover).finish();
}

Result<std::string> set_member(std::string_view object_text, std::string_view key, std::string_view value_json) {
  if (auto ok = check_value(value_json); !ok) return std::move(ok).error();
  MemberSetter setter(object_text, key, value_json);
  auto shape = walk_object(object_text, [&](const MemberSpan& span, const char* kb, const char* ke) {
    setter.on_member(span, kb, ke);
  });
  if (!shape) return std::move(shape).error();
  return std::move(setter).finish(*shape);
}

Result<std::string> remove_member(std::string_view object_text, std::string_view key) {
  MemberRemover remover(object_text, key);
  auto shape = walk_object(object_text, [&](const MemberSpan& span, const char* kb, const char* ke) {
    remover.on_member(span, kb, ke);
  });
  if (!shape) return std::move(shape).error();
  return std::move(remover).finish();
}

std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  append_quoted(out, text);
  return out;
}

Result<std::string> unquote(std::string_view literal) {
  Scanner s(literal, kDefaultMaxDepth);
  if (!s.peek_is('"')) return make_error(Errc::invalid_argument, "invalid JSON string: no opening quote");
  if (!s.scan_string()) return s.error();
  if (!s.at_end()) return make_error(Errc::invalid_argument, "invalid JSON string: data after the closing quote");
  std::string out;
  out.reserve(literal.size() - 2);
  decode_validated(literal.data() + 1, literal.data() + literal.size() - 1,
                   [&](const char* p, std::size_t n) { out.append(p, n); });
  return out;
}

}  // namespace e2ee::json_text

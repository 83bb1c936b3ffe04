// The field walkers of fields.hpp. Each operation parses the body once into a byte-exact index
// (RawJson), walks the covered fields, and collects edits — a value's span replaced by new JSON
// text, or a member removed — which are applied in one pass at the end. So every byte outside
// the edited fields is the caller's own, and an error anywhere means no output at all.

#include "protocol/field/fields.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <utility>
#include <vector>

#include "common/json_text.hpp"
#include "common/raw_json.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::protocol::field {
namespace {

// ---- small helpers -----------------------------------------------------------------------------

void wipe(std::string& s) noexcept {
  if (!s.empty()) crypto::secure_wipe(s.data(), s.size());
}
void wipe(Bytes& b) noexcept {
  if (!b.empty()) crypto::secure_wipe(b.data(), b.size());
}

// Holds a value that may be plaintext and wipes it when it goes out of scope.
template <typename T>
class Wiped {
 public:
  explicit Wiped(T value) : value_(std::move(value)) {}
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;
  ~Wiped() { wipe(value_); }
  T& operator*() noexcept { return value_; }
  T* operator->() noexcept { return &value_; }

 private:
  T value_;
};

// What the client may leave unencrypted in a response: nothing, or formatting whitespace.
bool is_blank(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; });
}

bool is_hex_text(std::string_view s) noexcept {
  return !s.empty() && s.size() % 2 == 0 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// Well-formed UTF-8 (Unicode Table 3-7): no overlong forms, no encoded surrogates, nothing above
// U+10FFFF. Envelopes carry bytes; the protocols say the plaintext is UTF-8 text, and a JSON
// string cannot hold anything else.
bool valid_utf8(ByteView b) noexcept {
  std::size_t i = 0;
  const std::size_t n = b.size();
  while (i < n) {
    const std::uint8_t c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c == 0xE0) {
      len = 3, lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      len = 3, hi = 0x9F;
    } else if (c == 0xF0) {
      len = 4, lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      len = 4, hi = 0x8F;
    } else {
      return false;
    }
    if (n - i < len || b[i + 1] < lo || b[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k)
      if (b[i + k] < 0x80 || b[i + k] > 0xBF) return false;
    i += len;
  }
  return true;
}

// True when `text` is a JSON document (whitespace around it allowed) whose value is an array.
bool is_json_array(std::string_view text) {
  if (!json_text::validate(text, 256)) return false;
  const auto first = text.find_first_not_of(" \t\n\r");
  return first != std::string_view::npos && text[first] == '[';
}

// RawJson keeps its own copy of the text (a non-const string it owns). When that copy is
// plaintext — the client's request, the engine's response — it is wiped before it is freed.
class WipeTextOnExit {
 public:
  explicit WipeTextOnExit(const RawJson& doc) : text_(doc.text()) {}
  WipeTextOnExit(const WipeTextOnExit&) = delete;
  WipeTextOnExit& operator=(const WipeTextOnExit&) = delete;
  ~WipeTextOnExit() {
    if (!text_.empty()) crypto::secure_wipe(const_cast<char*>(text_.data()), text_.size());
  }

 private:
  std::string_view text_;
};

Error at(std::string_view where, const Error& e) { return make_error(e.code, std::string(where) + ": " + e.message); }
Error at(std::string_view where, Errc code, std::string_view message) {
  return make_error(code, std::string(where) + ": " + std::string(message));
}

std::string item(std::string_view base, std::size_t i) { return std::string(base) + "[" + std::to_string(i) + "]"; }
std::string dot(std::string_view base, std::string_view key) {
  return base.empty() ? std::string(key) : std::string(base) + "." + std::string(key);
}

// The member `key` of an object; nullopt when absent. A key present twice is refused: parsers
// disagree on which duplicate wins, and the one not walked would travel unencrypted.
Result<std::optional<RawValue>> member(const RawValue& object, std::string_view key, std::string_view where) {
  std::optional<RawValue> found;
  for (const RawMember& m : object.members()) {
    if (m.key != key) continue;
    if (found) return at(dot(where, key), Errc::malformed, "duplicate key");
    found = m.value;
  }
  return found;
}

// ---- edits -------------------------------------------------------------------------------------

// Replacements of byte spans of the original text, applied in one pass.
class Editor {
 public:
  explicit Editor(std::string_view text) : text_(text) {}
  Editor(const Editor&) = delete;
  Editor& operator=(const Editor&) = delete;
  ~Editor() {
    for (Edit& e : edits_) wipe(e.text);  // decrypted plaintext on the client and server sides
  }

  std::size_t offset(std::string_view span) const noexcept { return static_cast<std::size_t>(span.data() - text_.data()); }
  void replace(const RawValue& value, std::string text) {
    const std::size_t begin = offset(value.raw());
    edits_.push_back(Edit{begin, begin + value.raw().size(), std::move(text)});
  }
  void erase(std::size_t begin, std::size_t end) { edits_.push_back(Edit{begin, end, {}}); }

  Result<std::string> apply() const {
    std::vector<std::size_t> order(edits_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return edits_[a].begin < edits_[b].begin; });
    std::size_t size = text_.size();
    for (const Edit& e : edits_) size = size - (e.end - e.begin) + e.text.size();
    std::string out;
    out.reserve(size);
    std::size_t pos = 0;
    for (const std::size_t i : order) {
      const Edit& e = edits_[i];
      if (e.begin < pos) return make_error(Errc::internal, "field walker produced overlapping edits");
      out.append(text_.substr(pos, e.begin - pos));
      out.append(e.text);
      pos = e.end;
    }
    out.append(text_.substr(pos));
    return out;
  }

 private:
  struct Edit {
    std::size_t begin, end;
    std::string text;
  };
  std::string_view text_;
  std::vector<Edit> edits_;
};

// Where the key of the member whose value starts at `value_begin` starts: back over ':' and
// whitespace to the key's closing quote, then to the first quote before it that is not escaped
// (in valid JSON a quote inside a string always follows an odd run of backslashes).
std::size_t key_begin(std::string_view text, std::size_t value_begin) {
  std::size_t p = value_begin;
  auto skip_back_ws = [&] {
    while (p > 0 && (text[p - 1] == ' ' || text[p - 1] == '\t' || text[p - 1] == '\n' || text[p - 1] == '\r')) --p;
  };
  skip_back_ws();
  --p;  // ':'
  skip_back_ws();
  --p;  // closing quote
  for (;;) {
    --p;
    if (text[p] != '"') continue;
    std::size_t slashes = 0;
    while (p - slashes > 0 && text[p - slashes - 1] == '\\') ++slashes;
    if (slashes % 2 == 0) return p;
  }
}

// Removes member `index` of `members` (an object's members in order) with its comma.
void erase_member(Editor& ed, std::string_view text, const std::vector<RawMember>& members, std::size_t index) {
  auto value_begin = [&](std::size_t i) { return ed.offset(members[i].value.raw()); };
  auto value_end = [&](std::size_t i) { return value_begin(i) + members[i].value.raw().size(); };
  if (index > 0) {
    ed.erase(value_end(index - 1), value_end(index));  // ", "key": value"
  } else if (members.size() > 1) {
    ed.erase(key_begin(text, value_begin(0)), key_begin(text, value_begin(1)));  // ""key": value, "
  } else {
    ed.erase(key_begin(text, value_begin(0)), value_end(0));
  }
}

std::string quoted_hex(const std::string& hex) { return "\"" + hex + "\""; }

// ---- AAD ---------------------------------------------------------------------------------------

std::string aad_tail(const V2Context& v2) { return "|n=" + v2.nonce + "|ts=" + std::to_string(v2.timestamp); }

// A top-level member as dstack puts it into the AAD: str(payload.get(key, "")). Only strings
// (and absence) are accepted here; dstack would stringify other types Python's way.
Result<std::string> aad_member(const RawValue& root, std::string_view key) {
  auto v = member(root, key, "");
  if (!v) return std::move(v).error();
  if (!*v) return std::string();
  if (!(*v)->is_string()) return at(key, Errc::malformed, "must be a string for the v2 AAD");
  return (*v)->str();
}

Status check_policy(const FieldPolicy& policy, Algo key_algo) {
  if (algo_of(policy.scheme) != key_algo) return make_error(Errc::invalid_argument, "field scheme and key algorithm differ");
  if (policy.v2 && policy.scheme == Scheme::ed25519_box)
    return make_error(Errc::invalid_argument, "v2 AAD needs an AEAD scheme, not ed25519_box");
  return {};
}

Result<RawJson> parse_object(std::string_view json, std::string_view what) {
  auto doc = RawJson::parse(json);
  if (!doc) return make_error(Errc::invalid_argument, std::string(what) + " is not valid JSON: " + doc.error().message);
  if (!doc->root().is_object()) return make_error(Errc::invalid_argument, std::string(what) + " is not a JSON object");
  return doc;
}

// ---- request fields ----------------------------------------------------------------------------

// One optional request field (everything but messages[].content): its value, the AAD path,
// the JSON path for errors, and whether it holds JSON text (tools[].function.parameters).
struct Extra {
  RawValue value;
  std::optional<std::size_t> message;
  std::string path;
  std::string where;
  bool json = false;
};
using ExtraVisitor = std::function<Status(const Extra&)>;

// Descends into `key` of `object` when it is an object/array (per `want_array`); absent and
// null give nullopt. A value of another type is an error in strict mode (the client: what it
// cannot walk it cannot encrypt) and skipped otherwise (the server passes it on as it came).
Result<std::optional<RawValue>> container(const RawValue& object, std::string_view key, std::string_view where,
                                          bool want_array, bool strict) {
  auto v = member(object, key, where);
  if (!v) return std::move(v).error();
  if (!*v || (*v)->is_null()) return std::optional<RawValue>();
  if (want_array ? (*v)->is_array() : (*v)->is_object()) return v;
  if (strict) return at(dot(where, key), Errc::invalid_argument, want_array ? "expected an array" : "expected an object");
  return std::optional<RawValue>();
}

// Visits a leaf `key` of `object` when present and not null.
Status leaf(const RawValue& object, std::string_view key, std::optional<std::size_t> message, std::string_view path_base,
            std::string_view where, const ExtraVisitor& visit, bool json = false) {
  auto v = member(object, key, where);
  if (!v) return std::move(v).error();
  if (!*v || (*v)->is_null()) return {};
  return visit(Extra{**v, message, dot(path_base, key), dot(where, key), json});
}

Status name_and_arguments(const RawValue& object, std::optional<std::size_t> message, std::string_view path,
                          std::string_view where, const ExtraVisitor& visit) {
  if (auto s = leaf(object, "name", message, path, where, visit); !s) return s;
  return leaf(object, "arguments", message, path, where, visit);
}

// The optional fields of message `i`: the history group (reasoning, audio) when `history`, the
// rest when `all`.
Status message_extras(const RawValue& msg, std::size_t i, bool history, bool all, bool strict, const ExtraVisitor& visit) {
  const std::string where = item("messages", i);
  if (all) {
    for (const std::string_view key : {"name", "refusal"})
      if (auto s = leaf(msg, key, i, "", where, visit); !s) return s;
  }
  if (history) {
    for (const std::string_view key : {"reasoning_content", "reasoning"})
      if (auto s = leaf(msg, key, i, "", where, visit); !s) return s;
    auto audio = container(msg, "audio", where, false, strict);
    if (!audio) return std::move(audio).error();
    if (*audio)
      if (auto s = leaf(**audio, "data", i, "audio", dot(where, "audio"), visit); !s) return s;
  }
  if (!all) return {};
  auto calls = container(msg, "tool_calls", where, true, strict);
  if (!calls) return std::move(calls).error();
  if (*calls) {
    const auto list = (*calls)->elements();
    for (std::size_t j = 0; j < list.size(); ++j) {
      const std::string call_where = item(dot(where, "tool_calls"), j);
      if (!list[j].is_object()) {
        if (strict) return at(call_where, Errc::invalid_argument, "expected an object");
        continue;
      }
      auto fn = container(list[j], "function", call_where, false, strict);
      if (!fn) return std::move(fn).error();
      if (!*fn) continue;
      const std::string path = "tool_calls." + std::to_string(j) + ".function";
      if (auto s = name_and_arguments(**fn, i, path, dot(call_where, "function"), visit); !s) return s;
    }
  }
  auto fc = container(msg, "function_call", where, false, strict);
  if (!fc) return std::move(fc).error();
  if (*fc)
    if (auto s = name_and_arguments(**fc, i, "function_call", dot(where, "function_call"), visit); !s) return s;
  return {};
}

// The optional top-level fields (all_fields): tool definitions and the forced tool's name.
Status top_level_extras(const RawValue& root, bool strict, const ExtraVisitor& visit) {
  auto tools = container(root, "tools", "", true, strict);
  if (!tools) return std::move(tools).error();
  if (*tools) {
    const auto list = (*tools)->elements();
    for (std::size_t t = 0; t < list.size(); ++t) {
      const std::string where = item("tools", t);
      if (!list[t].is_object()) {
        if (strict) return at(where, Errc::invalid_argument, "expected an object");
        continue;
      }
      // Tools without a function (NEAR's {"type":"web_context_search"}) have nothing to hide.
      auto fn = container(list[t], "function", where, false, strict);
      if (!fn) return std::move(fn).error();
      if (!*fn) continue;
      const std::string path = "tools." + std::to_string(t) + ".function";
      const std::string fn_where = dot(where, "function");
      for (const std::string_view key : {"name", "description"})
        if (auto s = leaf(**fn, key, std::nullopt, path, fn_where, visit); !s) return s;
      if (auto s = leaf(**fn, "parameters", std::nullopt, path, fn_where, visit, true); !s) return s;
    }
  }
  // tool_choice and the deprecated function_call are strings ("auto", "none", …) or objects.
  auto choice = container(root, "tool_choice", "", false, false);
  if (!choice) return std::move(choice).error();
  if (*choice) {
    auto fn = container(**choice, "function", "tool_choice", false, strict);
    if (!fn) return std::move(fn).error();
    if (*fn)
      if (auto s = leaf(**fn, "name", std::nullopt, "tool_choice.function", "tool_choice.function", visit); !s) return s;
  }
  auto fc = container(root, "function_call", "", false, false);
  if (!fc) return std::move(fc).error();
  if (*fc)
    if (auto s = leaf(**fc, "name", std::nullopt, "function_call", "function_call", visit); !s) return s;
  return {};
}

class RequestAad {
 public:
  static Result<RequestAad> make(const FieldPolicy& policy, const RawValue& root) {
    RequestAad a;
    a.algo_ = algo_of(policy.scheme);
    if (policy.v2) {
      a.v2_ = &*policy.v2;
      auto model = aad_member(root, "model");
      if (!model) return std::move(model).error();
      a.model_ = std::move(model).value();
    }
    return a;
  }
  std::string content(std::size_t message, std::optional<std::size_t> part) const {
    return v2_ ? request_aad(algo_, *v2_, model_, message, part) : std::string();
  }
  std::string extra(const Extra& e) const {
    return v2_ ? request_aad_field(algo_, *v2_, model_, e.message, e.path) : std::string();
  }

 private:
  Algo algo_ = Algo::ecdsa;
  const V2Context* v2_ = nullptr;
  std::string model_;
};

// ---- response fields ---------------------------------------------------------------------------

struct Site {
  RawValue value;
  std::size_t choice;
  std::string field;  // AAD field name
  std::string where;  // JSON path for errors
  bool bytes = false; // logprobs bytes: a JSON array travelling as encrypted text
  // delta.content only: the delta's members and this member's position, so the server can drop "".
  const std::vector<RawMember>* delta_members = nullptr;
  std::size_t member_index = 0;
};
using SiteVisitor = std::function<Status(const Site&)>;

Status site_leaf(const RawValue& object, std::string_view key, std::size_t k, std::string_view field_base,
                 std::string_view where, const SiteVisitor& visit, bool bytes = false) {
  auto v = member(object, key, where);
  if (!v) return std::move(v).error();
  if (!*v || (*v)->is_null()) return {};
  return visit(Site{**v, k, dot(field_base, key), dot(where, key), bytes});
}

Status logprob_entries(const RawValue& list, std::size_t k, const std::string& field, const std::string& where,
                       const SiteVisitor& visit, bool top) {
  const auto entries = list.elements();
  for (std::size_t e = 0; e < entries.size(); ++e) {
    const std::string f = field + "." + std::to_string(e);
    const std::string w = item(where, e);
    if (!entries[e].is_object()) return at(w, Errc::malformed, "expected an object");
    if (auto s = site_leaf(entries[e], "token", k, f, w, visit); !s) return s;
    if (auto s = site_leaf(entries[e], "bytes", k, f, w, visit, true); !s) return s;
    if (top) continue;
    auto tops = container(entries[e], "top_logprobs", w, true, true);
    if (!tops) return std::move(tops).error();
    if (*tops)
      if (auto s = logprob_entries(**tops, k, f + ".top_logprobs", dot(w, "top_logprobs"), visit, true); !s) return s;
  }
  return {};
}

// Calls `visit` for every covered field of a chat.completion or chat.completion.chunk. The
// shape is checked strictly on both sides: the server must not leave text it cannot place in
// plaintext, the client must not accept it.
Status walk_response(const RawValue& root, const FieldPolicy& policy, const SiteVisitor& visit) {
  auto choices = container(root, "choices", "", true, true);
  if (!choices) return std::move(choices).error();
  if (!*choices) return {};
  const auto list = (*choices)->elements();
  for (std::size_t k = 0; k < list.size(); ++k) {
    const std::string where = item("choices", k);
    if (!list[k].is_object()) return at(where, Errc::malformed, "expected an object");
    for (const std::string_view holder : {"message", "delta"}) {
      auto msg = container(list[k], holder, where, false, true);
      if (!msg) return std::move(msg).error();
      if (!*msg) continue;
      const std::string mw = dot(where, holder);
      const std::vector<RawMember> members = (*msg)->members();

      auto content = member(**msg, "content", mw);
      if (!content) return std::move(content).error();
      if (*content && (*content)->is_string()) {
        std::size_t index = 0;
        while (members[index].key != "content") ++index;
        Site site{**content, k, "content", dot(mw, "content")};
        if (holder == "delta") site.delta_members = &members, site.member_index = index;
        if (auto s = visit(site); !s) return s;
      } else if (*content && (*content)->is_array()) {
        const auto parts = (*content)->elements();
        for (std::size_t p = 0; p < parts.size(); ++p) {
          const std::string pw = item(dot(mw, "content"), p);
          if (!parts[p].is_object()) return at(pw, Errc::malformed, "expected an object");
          auto text = member(parts[p], "text", pw);
          if (!text) return std::move(text).error();
          if (!*text) continue;  // a non-text part
          if (!(*text)->is_string()) return at(dot(pw, "text"), Errc::malformed, "expected a string");
          if (auto s = visit(Site{**text, k, "content." + std::to_string(p), dot(pw, "text")}); !s) return s;
        }
      } else if (*content && !(*content)->is_null()) {
        return at(dot(mw, "content"), Errc::malformed, "expected a string, an array or null");
      }

      if (auto s = site_leaf(**msg, "reasoning_content", k, "", mw, visit); !s) return s;
      if (policy.reasoning_field)
        if (auto s = site_leaf(**msg, "reasoning", k, "", mw, visit); !s) return s;
      auto audio = container(**msg, "audio", mw, false, true);
      if (!audio) return std::move(audio).error();
      if (*audio)
        if (auto s = site_leaf(**audio, "data", k, "audio", dot(mw, "audio"), visit); !s) return s;

      if (!policy.all_fields) continue;
      if (auto s = site_leaf(**msg, "refusal", k, "", mw, visit); !s) return s;
      auto calls = container(**msg, "tool_calls", mw, true, true);
      if (!calls) return std::move(calls).error();
      if (*calls) {
        const auto items = (*calls)->elements();
        for (std::size_t j = 0; j < items.size(); ++j) {
          const std::string cw = item(dot(mw, "tool_calls"), j);
          if (!items[j].is_object()) return at(cw, Errc::malformed, "expected an object");
          auto fn = container(items[j], "function", cw, false, true);
          if (!fn) return std::move(fn).error();
          if (!*fn) continue;
          const std::string field = "tool_calls." + std::to_string(j) + ".function";
          for (const std::string_view key : {"name", "arguments"})
            if (auto s = site_leaf(**fn, key, k, field, dot(cw, "function"), visit); !s) return s;
        }
      }
      auto fc = container(**msg, "function_call", mw, false, true);
      if (!fc) return std::move(fc).error();
      if (*fc) {
        for (const std::string_view key : {"name", "arguments"})
          if (auto s = site_leaf(**fc, key, k, "function_call", dot(mw, "function_call"), visit); !s) return s;
      }
    }
    if (!policy.all_fields) continue;
    auto logprobs = container(list[k], "logprobs", where, false, true);
    if (!logprobs) return std::move(logprobs).error();
    if (!*logprobs) continue;
    for (const std::string_view key : {"content", "refusal"}) {
      const std::string lw = dot(where, "logprobs");
      auto entries = container(**logprobs, key, lw, true, true);
      if (!entries) return std::move(entries).error();
      if (*entries)
        if (auto s = logprob_entries(**entries, k, "logprobs." + std::string(key), dot(lw, key), visit, false); !s)
          return s;
    }
  }
  return {};
}

class ResponseAad {
 public:
  static Result<ResponseAad> make(const FieldPolicy& policy, const RawValue& root) {
    ResponseAad a;
    a.algo_ = algo_of(policy.scheme);
    if (policy.v2) {
      a.v2_ = &*policy.v2;
      auto model = aad_member(root, "model");
      if (!model) return std::move(model).error();
      auto id = aad_member(root, "id");
      if (!id) return std::move(id).error();
      a.model_ = std::move(model).value();
      a.id_ = std::move(id).value();
    }
    return a;
  }
  std::string of(const Site& s) const {
    return v2_ ? response_aad(algo_, *v2_, model_, id_, s.choice, s.field) : std::string();
  }

 private:
  Algo algo_ = Algo::ecdsa;
  const V2Context* v2_ = nullptr;
  std::string model_, id_;
};

// ---- opening one field -------------------------------------------------------------------------

// Opens `hex` and checks that the plaintext is UTF-8; errors name `where`.
Result<std::string> open_text(Scheme scheme, const KeyPair& key, std::string_view hex, const std::string& aad,
                              std::string_view where) {
  auto plain = open_hex(scheme, key, hex, as_bytes(aad));
  if (!plain) return at(where, plain.error());
  Wiped<Bytes> bytes(std::move(plain).value());
  if (!valid_utf8(*bytes)) return at(where, Errc::malformed, "decrypted text is not valid UTF-8");
  return std::string(as_text(*bytes));
}

}  // namespace

// ---- AAD strings -------------------------------------------------------------------------------

std::string request_aad(Algo algo, const V2Context& v2, std::string_view model, std::size_t message,
                        std::optional<std::size_t> part) {
  return "v2|req|algo=" + std::string(algo_name(algo)) + "|model=" + std::string(model) + "|m=" + std::to_string(message) +
         "|c=" + (part ? std::to_string(*part) : std::string("-")) + aad_tail(v2);
}

std::string request_aad_field(Algo algo, const V2Context& v2, std::string_view model, std::optional<std::size_t> message,
                              std::string_view path) {
  return "v2|req|algo=" + std::string(algo_name(algo)) + "|model=" + std::string(model) +
         "|m=" + (message ? std::to_string(*message) : std::string("-")) + "|c=" + std::string(path) + aad_tail(v2);
}

std::string response_aad(Algo algo, const V2Context& v2, std::string_view model, std::string_view id, std::size_t choice,
                         std::string_view field) {
  return "v2|resp|algo=" + std::string(algo_name(algo)) + "|model=" + std::string(model) + "|id=" + std::string(id) +
         "|choice=" + std::to_string(choice) + "|field=" + std::string(field) + aad_tail(v2);
}

// ---- client: encrypt the request ---------------------------------------------------------------

Result<std::string> encrypt_request(std::string_view chat_json, const FieldPolicy& policy, const PeerKey& model_key) {
  if (auto ok = check_policy(policy, model_key.algo()); !ok) return std::move(ok).error();
  auto doc = parse_object(chat_json, "request body");
  if (!doc) return std::move(doc).error();
  const WipeTextOnExit wipe_input(*doc);
  const RawValue root = doc->root();
  auto aad = RequestAad::make(policy, root);
  if (!aad) return std::move(aad).error();
  Sealer sealer(policy.scheme, model_key);  // a fresh ephemeral key per field
  Editor ed(doc->text());

  auto seal = [&](const RawValue& target, std::string_view plaintext, const std::string& aad_text,
                  std::string_view where) -> Status {
    auto hex = sealer.seal_hex(as_bytes(plaintext), as_bytes(aad_text));
    if (!hex) return at(where, hex.error());
    ed.replace(target, quoted_hex(*hex));
    return {};
  };
  auto seal_string = [&](const RawValue& target, const std::string& aad_text, std::string_view where) -> Status {
    Wiped<std::string> text(target.str());
    return seal(target, *text, aad_text, where);
  };

  const ExtraVisitor seal_extra = [&](const Extra& e) -> Status {
    if (e.json) return seal(e.value, e.value.raw(), aad->extra(e), e.where);  // parameters: its JSON text
    if (!e.value.is_string()) return at(e.where, Errc::invalid_argument, "expected a string");
    return seal_string(e.value, aad->extra(e), e.where);
  };

  auto messages = member(root, "messages", "");
  if (!messages) return std::move(messages).error();
  if (!*messages || !(*messages)->is_array())
    return make_error(Errc::invalid_argument, "messages: expected an array of messages");
  const auto list = (*messages)->elements();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string where = item("messages", i);
    if (!list[i].is_object()) return at(where, Errc::invalid_argument, "expected an object");
    auto content = member(list[i], "content", where);
    if (!content) return std::move(content).error();
    const std::string cw = dot(where, "content");
    if (!*content || (*content)->is_null()) {
      // nothing to hide (an assistant turn with only tool calls)
    } else if ((*content)->is_string()) {
      if (auto s = seal_string(**content, aad->content(i, std::nullopt), cw); !s) return std::move(s).error();
    } else if ((*content)->is_array() && policy.arrays_as_json) {
      // The array's own bytes are the JSON text the server parses back (dstack PR #7, NEAR).
      if (auto s = seal(**content, (*content)->raw(), aad->content(i, std::nullopt), cw); !s) return std::move(s).error();
    } else if ((*content)->is_array()) {
      const auto parts = (*content)->elements();
      for (std::size_t j = 0; j < parts.size(); ++j) {
        const std::string pw = item(cw, j);
        if (!parts[j].is_object()) return at(pw, Errc::invalid_argument, "expected an object");
        auto text = member(parts[j], "text", pw);
        if (!text) return std::move(text).error();
        if (!*text) continue;  // image_url and other parts travel as they are in this mode
        if (!(*text)->is_string()) return at(dot(pw, "text"), Errc::invalid_argument, "expected a string");
        // dstack opens only parts of type "text"; any other part's text would reach it in plaintext.
        auto type = parts[j].get_string("type");
        if (!type || *type != "text") return at(pw, Errc::invalid_argument, "a part with text must have type \"text\"");
        if (auto s = seal_string(**text, aad->content(i, j), dot(pw, "text")); !s) return std::move(s).error();
      }
    } else {
      return at(cw, Errc::invalid_argument, "expected a string, an array or null");
    }
    if (!policy.all_fields) continue;
    if (auto s = message_extras(list[i], i, true, true, true, seal_extra); !s) return std::move(s).error();
  }
  if (policy.all_fields)
    if (auto s = top_level_extras(root, true, seal_extra); !s) return std::move(s).error();
  return ed.apply();
}

// ---- server: decrypt the request ---------------------------------------------------------------

Result<std::string> decrypt_request(std::string_view chat_json, const FieldPolicy& policy, const KeyPair& model_key) {
  if (auto ok = check_policy(policy, model_key.algo()); !ok) return std::move(ok).error();
  auto doc = parse_object(chat_json, "request body");
  if (!doc) return std::move(doc).error();
  const RawValue root = doc->root();
  auto aad = RequestAad::make(policy, root);
  if (!aad) return std::move(aad).error();
  Editor ed(doc->text());

  // A field the client must have encrypted: hex, opening, UTF-8.
  auto open_required = [&](const RawValue& value, const std::string& aad_text,
                           std::string_view where) -> Result<std::string> {
    Wiped<std::string> text(value.str());
    if (!is_hex_text(*text)) return at(where, Errc::invalid_argument, "encrypted field must be hex-encoded");
    return open_text(policy.scheme, model_key, *text, aad_text, where);
  };

  // Optional fields: what looks like an envelope must open; anything else is the client's own
  // plaintext and passes (NEAR's lenient reading, see fields.hpp).
  const ExtraVisitor open_extra = [&](const Extra& e) -> Status {
    if (!e.value.is_string()) return {};
    Wiped<std::string> text(e.value.str());
    if (!looks_like_envelope(policy.scheme, *text)) return {};
    auto plain = open_text(policy.scheme, model_key, *text, aad->extra(e), e.where);
    if (!plain) return std::move(plain).error();
    Wiped<std::string> opened(std::move(plain).value());
    // NEAR restores the JSON value of tools[].function.parameters; text that is not JSON stays text.
    const bool raw_json = e.json && json_text::validate(*opened, 256);
    ed.replace(e.value, raw_json ? *opened : json_text::quote(*opened));
    return {};
  };

  auto messages = member(root, "messages", "");
  if (!messages) return std::move(messages).error();
  if (*messages && (*messages)->is_array()) {
    const auto list = (*messages)->elements();
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (!list[i].is_object()) continue;  // nothing of ours in it; the engine judges it
      const std::string where = item("messages", i);
      auto content = member(list[i], "content", where);
      if (!content) return std::move(content).error();
      const std::string cw = dot(where, "content");
      if (*content && (*content)->is_string()) {
        if ((*content)->raw() == "\"\"") {
          // NEAR's clients leave "" unencrypted; in v2 every content must be authenticated.
          if (policy.v2) return at(cw, Errc::invalid_argument, "empty content must be encrypted in v2");
        } else {
          auto plain = open_required(**content, aad->content(i, std::nullopt), cw);
          if (!plain) return std::move(plain).error();
          Wiped<std::string> text(std::move(plain).value());
          // The multimodal convention (dstack PR #7, NEAR): a JSON array becomes the content array.
          ed.replace(**content, is_json_array(*text) ? *text : json_text::quote(*text));
        }
      } else if (*content && (*content)->is_array()) {
        const auto parts = (*content)->elements();
        for (std::size_t j = 0; j < parts.size(); ++j) {
          if (!parts[j].is_object()) continue;
          const std::string pw = item(cw, j);
          auto text = member(parts[j], "text", pw);
          if (!text) return std::move(text).error();
          auto type = parts[j].get_string("type");
          if (!*text || !(*text)->is_string() || !type || *type != "text") continue;  // passed through, as dstack does
          auto plain = open_required(**text, aad->content(i, j), dot(pw, "text"));
          if (!plain) return std::move(plain).error();
          Wiped<std::string> opened(std::move(plain).value());
          ed.replace(**text, json_text::quote(*opened));
        }
      }
      if (auto s = message_extras(list[i], i, true, policy.all_fields, false, open_extra); !s)
        return std::move(s).error();
    }
  }
  if (policy.all_fields)
    if (auto s = top_level_extras(root, false, open_extra); !s) return std::move(s).error();
  return ed.apply();
}

// ---- client: decrypt the response --------------------------------------------------------------

Result<std::string> decrypt_response(std::string_view completion_json, const FieldPolicy& policy, const KeyPair& client_key) {
  if (auto ok = check_policy(policy, client_key.algo()); !ok) return std::move(ok).error();
  auto doc = parse_object(completion_json, "response");
  if (!doc) return std::move(doc).error();
  const RawValue root = doc->root();
  auto aad = ResponseAad::make(policy, root);
  if (!aad) return std::move(aad).error();
  Editor ed(doc->text());

  auto visit = [&](const Site& site) -> Status {
    if (!site.value.is_string()) return at(site.where, Errc::malformed, "expected an encrypted string");
    Wiped<std::string> text(site.value.str());
    // Venice sends formatting whitespace in plaintext; nothing else may arrive unencrypted.
    if (!site.bytes && is_blank(*text)) return {};
    auto plain = open_text(policy.scheme, client_key, *text, aad->of(site), site.where);
    if (!plain) return std::move(plain).error();
    Wiped<std::string> opened(std::move(plain).value());
    if (site.bytes) {
      if (!is_json_array(*opened)) return at(site.where, Errc::malformed, "decrypted bytes are not a JSON array");
      ed.replace(site.value, *opened);
    } else {
      ed.replace(site.value, json_text::quote(*opened));
    }
    return {};
  };
  if (auto s = walk_response(root, policy, visit); !s) return std::move(s).error();
  return ed.apply();
}

// ---- server: encrypt the response --------------------------------------------------------------

struct ResponseSealer::Impl {
  Impl(FieldPolicy p, PeerKey client, bool one_ephemeral)
      : policy(std::move(p)), key_algo(client.algo()), sealer(policy.scheme, std::move(client), one_ephemeral) {}
  FieldPolicy policy;
  Algo key_algo;
  Sealer sealer;
};

ResponseSealer::ResponseSealer(FieldPolicy policy, PeerKey client_key, bool one_ephemeral)
    : impl_(std::make_unique<Impl>(std::move(policy), std::move(client_key), one_ephemeral)) {}

ResponseSealer::~ResponseSealer() = default;

Result<std::string> ResponseSealer::encrypt(std::string_view completion_json) {
  const FieldPolicy& policy = impl_->policy;
  if (auto ok = check_policy(policy, impl_->key_algo); !ok) return std::move(ok).error();
  auto doc = parse_object(completion_json, "response");
  if (!doc) return std::move(doc).error();
  const WipeTextOnExit wipe_input(*doc);
  const RawValue root = doc->root();
  auto aad = ResponseAad::make(policy, root);
  if (!aad) return std::move(aad).error();
  Editor ed(doc->text());

  auto visit = [&](const Site& site) -> Status {
    std::optional<Wiped<std::string>> text;
    std::string_view plaintext;
    if (site.bytes && site.value.is_array()) {
      plaintext = site.value.raw();  // the bytes array's JSON text, as NEAR encrypts it
    } else if (site.value.is_string() && !site.bytes) {
      if (site.delta_members != nullptr && site.value.raw() == "\"\"") {
        // vLLM's role-only first chunk: dropped rather than encrypted (dstack PR #6).
        erase_member(ed, doc->text(), *site.delta_members, site.member_index);
        return {};
      }
      text.emplace(site.value.str());
      plaintext = **text;
    } else {
      return at(site.where, Errc::malformed, "unexpected value type; cannot encrypt it");
    }
    auto hex = impl_->sealer.seal_hex(as_bytes(plaintext), as_bytes(aad->of(site)));
    if (!hex) return at(site.where, hex.error());
    ed.replace(site.value, quoted_hex(*hex));
    return {};
  };
  if (auto s = walk_response(root, policy, visit); !s) return std::move(s).error();
  return ed.apply();
}

}  // namespace e2ee::protocol::field

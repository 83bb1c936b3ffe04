#include "common/raw_json.hpp"

#include <limits>

#include "common/json_text.hpp"

namespace e2ee {

namespace {
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
}

struct RawValue::Doc {
  struct Node {
    Type type;
    std::uint32_t begin, end;          // the value's bytes
    std::uint32_t key_begin, key_end;  // the key's literal, quotes included (members only)
    std::uint32_t first_child = kNone;
    std::uint32_t next = kNone;
    std::uint32_t count = 0;
  };
  std::string text;
  std::vector<Node> nodes;

  // The text was validated, so the scanner below only has to find boundaries.
  void skip_space(std::size_t& p) const {
    while (p < text.size() && (text[p] == ' ' || text[p] == '\t' || text[p] == '\n' || text[p] == '\r')) ++p;
  }
  std::size_t string_end(std::size_t p) const {  // p at the opening quote; returns one past the closing
    ++p;
    while (text[p] != '"') p += text[p] == '\\' ? 2 : 1;
    return p + 1;
  }
  std::uint32_t scan(std::size_t& p) {
    skip_space(p);
    const auto index = static_cast<std::uint32_t>(nodes.size());
    nodes.push_back(Node{Type::null, static_cast<std::uint32_t>(p), 0, 0, 0});
    const char c = text[p];
    if (c == '{' || c == '[') {
      const bool object = c == '{';
      nodes[index].type = object ? Type::object : Type::array;
      ++p;
      skip_space(p);
      std::uint32_t last = kNone;
      while (text[p] != (object ? '}' : ']')) {
        std::size_t key_begin = 0, key_end = 0;
        if (object) {
          key_begin = p;
          key_end = string_end(p);
          p = key_end;
          skip_space(p);
          ++p;  // ':'
        }
        const std::uint32_t child = scan(p);
        nodes[child].key_begin = static_cast<std::uint32_t>(key_begin);
        nodes[child].key_end = static_cast<std::uint32_t>(key_end);
        if (last == kNone) {
          nodes[index].first_child = child;
        } else {
          nodes[last].next = child;
        }
        last = child;
        ++nodes[index].count;
        skip_space(p);
        if (text[p] == ',') {
          ++p;
          skip_space(p);
        }
      }
      ++p;
    } else if (c == '"') {
      nodes[index].type = Type::string;
      p = string_end(p);
    } else if (c == 't' || c == 'f') {
      nodes[index].type = Type::boolean;
      p += c == 't' ? 4 : 5;
    } else if (c == 'n') {
      p += 4;
    } else {
      nodes[index].type = Type::number;
      while (p < text.size() && (text[p] == '-' || text[p] == '+' || text[p] == '.' || text[p] == 'e' ||
                                 text[p] == 'E' || (text[p] >= '0' && text[p] <= '9'))) {
        ++p;
      }
    }
    nodes[index].end = static_cast<std::uint32_t>(p);
    return index;
  }
};

RawValue::Type RawValue::type() const noexcept { return doc_->nodes[node_].type; }

std::string_view RawValue::raw() const noexcept {
  const auto& n = doc_->nodes[node_];
  return std::string_view(doc_->text).substr(n.begin, n.end - n.begin);
}

bool RawValue::is_integer() const noexcept {
  return is_number() && raw().find_first_of(".eE") == std::string_view::npos;
}

std::string RawValue::str() const {
  if (!is_string()) return {};
  auto decoded = json_text::unquote(raw());
  return decoded ? std::move(*decoded) : std::string();  // cannot fail on validated text
}

bool RawValue::boolean() const noexcept { return is_bool() && raw() == "true"; }

std::size_t RawValue::size() const noexcept {
  return is_array() || is_object() ? doc_->nodes[node_].count : 0;
}

std::optional<RawValue> RawValue::get(std::string_view key) const {
  if (!is_object()) return std::nullopt;
  std::optional<RawValue> found;
  for (auto child = doc_->nodes[node_].first_child; child != kNone; child = doc_->nodes[child].next) {
    const auto& n = doc_->nodes[child];
    const std::string_view literal = std::string_view(doc_->text).substr(n.key_begin, n.key_end - n.key_begin);
    const std::string_view inner = literal.substr(1, literal.size() - 2);
    bool match;
    if (inner.find('\\') == std::string_view::npos) {
      match = inner == key;
    } else {
      auto decoded = json_text::unquote(literal);
      match = decoded && *decoded == key;
    }
    if (match) found = RawValue(doc_, child);
  }
  return found;
}

std::optional<std::string> RawValue::get_string(std::string_view key) const {
  auto v = get(key);
  if (!v || !v->is_string()) return std::nullopt;
  return v->str();
}

std::vector<RawValue> RawValue::elements() const {
  std::vector<RawValue> out;
  if (!is_array()) return out;
  out.reserve(size());
  for (auto child = doc_->nodes[node_].first_child; child != kNone; child = doc_->nodes[child].next) {
    out.push_back(RawValue(doc_, child));
  }
  return out;
}

std::vector<RawMember> RawValue::members() const {
  std::vector<RawMember> out;
  if (!is_object()) return out;
  for (auto child = doc_->nodes[node_].first_child; child != kNone; child = doc_->nodes[child].next) {
    const auto& n = doc_->nodes[child];
    auto key = json_text::unquote(std::string_view(doc_->text).substr(n.key_begin, n.key_end - n.key_begin));
    out.push_back(RawMember{key ? std::move(*key) : std::string(), RawValue(doc_, child)});
  }
  return out;
}

RawJson::RawJson(std::unique_ptr<RawValue::Doc> doc) : doc_(std::move(doc)) {}

std::string_view RawJson::text() const noexcept { return doc_->text; }

Result<RawJson> RawJson::parse(std::string_view text, std::size_t max_depth) {
  if (text.size() >= kNone) return make_error(Errc::limit_exceeded, "JSON text larger than 4 GiB");
  if (auto valid = json_text::validate(text, max_depth); !valid) return std::move(valid).error();
  auto doc = std::make_unique<RawValue::Doc>();
  doc->text.assign(text);
  doc->nodes.reserve(64);
  std::size_t p = 0;
  doc->scan(p);
  return RawJson(std::move(doc));
}

}  // namespace e2ee

#include "sample_prompt.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <iterator>
#include <random>
#include <string_view>
#include <utility>

namespace e2ee::bench {
namespace {

// std::mt19937_64's output sequence is fixed by the standard, unlike the std distributions, so
// all draws go through this wrapper to stay identical across standard libraries.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
  std::size_t between(std::size_t lo, std::size_t hi) { return lo + below(hi - lo + 1); }
  // Skewed towards small indices, roughly like word frequencies in real text.
  std::size_t skewed(std::size_t n) {
    double u = static_cast<double>(engine_() >> 11) / static_cast<double>(1ULL << 53);
    return static_cast<std::size_t>(u * u * static_cast<double>(n));
  }
  bool chance(unsigned percent) { return below(100) < percent; }

 private:
  std::mt19937_64 engine_;
};

constexpr std::string_view kWords[] = {
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "with", "be", "on", "not",
    "this", "are", "by", "or", "from", "at", "an", "but", "we", "can", "if", "which", "you", "all",
    "will", "there", "one", "would", "when", "their", "so", "what", "do", "each", "about", "how",
    "should", "then", "these", "some", "them", "only", "into", "could", "more", "other", "than",
    "first", "also", "after", "because", "before", "between", "request", "response", "server",
    "client", "function", "value", "error", "return", "model", "token", "stream", "buffer", "memory",
    "thread", "queue", "latency", "throughput", "cache", "key", "message", "encrypt", "decrypt",
    "header", "payload", "test", "case", "file", "line", "change", "update", "config", "option",
    "default", "parser", "state", "event", "handler", "timeout", "retry", "connection", "socket",
    "field", "array", "object", "string", "number", "length", "index", "offset", "size", "limit",
    "output", "input", "result", "check", "fails", "works", "expected", "actual", "behaviour",
    "instead", "please", "explain", "why", "where", "code", "below", "above", "following", "using",
    "without", "every", "still", "need", "make", "sure", "look", "like", "seems", "think", "problem",
    "issue", "fix", "bug", "crash", "log", "trace", "stack", "call", "loop", "branch", "commit",
    "merge", "review", "version", "build", "compile", "link", "library", "module", "package",
    "interface", "class", "method", "type", "template", "pointer", "reference", "copy", "move",
    "owner", "lifetime", "scope", "lock", "mutex", "atomic", "signal", "process", "service",
    "deploy", "instance", "cluster", "node", "gateway", "proxy", "upstream", "downstream", "route",
    "path", "query", "body", "status", "code", "user", "assistant", "system", "prompt", "answer",
    "context", "window", "batch", "schedule", "worker", "pool", "task", "future", "promise"};

constexpr std::string_view kModels[] = {
    "deepseek-ai/DeepSeek-V3.1-TEE", "Qwen/Qwen3-235B-A22B-Instruct-2507-TEE", "moonshotai/Kimi-K2-Instruct-0905",
    "zai-org/GLM-4.6-TEE", "openai/gpt-oss-120b-TEE", "unsloth/Llama-3.3-70B-Instruct"};

std::string_view word(Rng& rng) { return kWords[rng.skewed(std::size(kWords))]; }

std::string identifier(Rng& rng) {
  std::string id(word(rng));
  if (rng.chance(60)) {
    id += '_';
    id += word(rng);
  }
  return id;
}

void sentence(Rng& rng, std::string& out) {
  std::size_t n = rng.between(6, 24);
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view w = word(rng);
    if (i == 0) {
      out += static_cast<char>(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 'a' + 'A' : w[0]);
      out += w.substr(1);
    } else {
      out += ' ';
      if (rng.chance(4)) {
        // Inline code, as in chat about code.
        out += '`';
        out += identifier(rng);
        out += "()`";
        continue;
      }
      out += w;
    }
    if (i + 1 < n && rng.chance(8)) out += ',';
  }
  out += rng.chance(15) ? "? " : ". ";
}

void paragraph(Rng& rng, std::string& out) {
  std::size_t n = rng.between(2, 6);
  for (std::size_t i = 0; i < n; ++i) sentence(rng, out);
  out.back() = '\n';
  out += '\n';
}

void python_line(Rng& rng, std::string& out, std::size_t indent) {
  out.append(indent * 4, ' ');
  switch (rng.below(7)) {
    case 0: out += "def " + identifier(rng) + "(" + identifier(rng) + ", " + identifier(rng) + "=None):"; break;
    case 1: out += "return " + identifier(rng) + "." + identifier(rng) + "(" + std::to_string(rng.below(1000)) + ")"; break;
    case 2: out += "for " + identifier(rng) + " in range(len(" + identifier(rng) + ")):"; break;
    case 3: out += "if " + identifier(rng) + " is None or not " + identifier(rng) + ":"; break;
    case 4: out += "raise ValueError(f\"" + std::string(word(rng)) + " {" + identifier(rng) + "!r} " + std::string(word(rng)) + "\")"; break;
    case 5: out += identifier(rng) + " = {\"" + std::string(word(rng)) + "\": " + identifier(rng) + ", \"" + std::string(word(rng)) + "\": [" + std::to_string(rng.below(64)) + ", " + std::to_string(rng.below(64)) + "]}"; break;
    default: out += "# " + std::string(word(rng)) + " " + std::string(word(rng)) + " " + std::string(word(rng)) + " " + std::string(word(rng)); break;
  }
  out += '\n';
}

void cpp_line(Rng& rng, std::string& out, std::size_t indent) {
  out.append(indent * 2, ' ');
  switch (rng.below(7)) {
    case 0: out += "auto " + identifier(rng) + " = " + identifier(rng) + "(" + identifier(rng) + ", " + std::to_string(rng.below(4096)) + ");"; break;
    case 1: out += "if (" + identifier(rng) + " == nullptr) return std::unexpected(Errc::" + identifier(rng) + ");"; break;
    case 2: out += "for (std::size_t i = 0; i < " + identifier(rng) + ".size(); ++i) {"; break;
    case 3: out += "std::vector<std::uint8_t> " + identifier(rng) + "(" + identifier(rng) + ".begin(), " + identifier(rng) + ".end());"; break;
    case 4: out += "}"; break;
    case 5: out += "co_await " + identifier(rng) + ".async_" + identifier(rng) + "(asio::buffer(" + identifier(rng) + "), use_awaitable);"; break;
    default: out += "// " + std::string(word(rng)) + " " + std::string(word(rng)) + " " + std::string(word(rng)) + "."; break;
  }
  out += '\n';
}

void code_block(Rng& rng, std::string& out) {
  bool python = rng.chance(50);
  out += python ? "```python\n" : "```cpp\n";
  std::size_t lines = rng.between(5, 40);
  std::size_t indent = 0;
  for (std::size_t i = 0; i < lines; ++i) {
    if (python) python_line(rng, out, indent); else cpp_line(rng, out, indent);
    indent = rng.chance(30) ? (indent + 1) % 4 : indent;
  }
  out += "```\n\n";
}

std::string content(Rng& rng, std::size_t min_chars, std::size_t max_chars, unsigned code_percent) {
  std::size_t target = rng.between(min_chars, max_chars);
  std::string out;
  while (out.size() < target) {
    if (rng.chance(code_percent)) code_block(rng, out); else paragraph(rng, out);
  }
  // Cut at the drawn length so small targets (a 1 KB request) come out near their size; all
  // generated text is ASCII, so any cut is valid UTF-8.
  out.resize(target);
  return out;
}

}  // namespace

std::string sample_chat_prompt(std::size_t target_bytes, std::uint64_t seed) {
  namespace json = boost::json;
  Rng rng(seed);
  json::object body;
  body["model"] = kModels[rng.below(std::size(kModels))];
  body["stream"] = true;
  body["max_tokens"] = 4096;
  body["messages"] = json::array();
  // Serialized size so far: the skeleton with an empty messages array, plus each message and a
  // separating comma. Tracking it avoids re-serializing the whole body per message.
  std::size_t size = json::serialize(body).size();
  json::array& messages = body["messages"].as_array();

  auto add = [&](std::string_view role, std::string text) {
    json::object m;
    m["role"] = role;
    m["content"] = std::move(text);
    size += json::serialize(m).size() + (messages.empty() ? 0 : 1);
    messages.push_back(std::move(m));
  };

  // Message lengths shrink with the remaining budget, so a 1 KB request is a short system
  // prompt and one user turn while a 450 KB one is a long conversation.
  auto budget = [&](std::size_t lo, std::size_t hi) {
    std::size_t remaining = target_bytes > size ? target_bytes - size : 1;
    hi = std::max<std::size_t>(1, std::min(hi, remaining));
    return std::pair{std::min(lo, hi), hi};
  };
  auto [sys_lo, sys_hi] = budget(1500, std::max<std::size_t>(1, std::min<std::size_t>(3000, target_bytes / 2)));
  add("system", content(rng, sys_lo, sys_hi, 10));
  bool user = true;
  while (size < target_bytes) {
    // Users paste code; assistants answer with prose and some code.
    auto [lo, hi] = user ? budget(200, 8000) : budget(400, 6000);
    add(user ? "user" : "assistant", content(rng, lo, hi, user ? 45 : 25));
    user = !user;
  }
  return json::serialize(body);
}

}  // namespace e2ee::bench

#include "api/chat/think_splitter.hpp"

#include <algorithm>

namespace e2ee::api::chat {

namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

// JSON's whitespace plus the ones models actually emit; all ASCII, so safe on UTF-8 bytes.
bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\v'; }

std::size_t leading_space(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// Length of the longest suffix of `s` that is a proper prefix of `tag` (a tag possibly cut off).
std::size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  const std::size_t max = std::min(s.size(), tag.size() - 1);
  for (std::size_t n = max; n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

void emit(std::vector<ThinkSplitter::Piece>& out, ThinkSplitter::Kind kind, std::string_view text) {
  if (text.empty()) return;
  if (!out.empty() && out.back().kind == kind) {
    out.back().text.append(text);
  } else {
    out.push_back({kind, std::string(text)});
  }
}

}  // namespace

void ThinkSplitter::feed(std::string_view delta, std::vector<Piece>& out) {
  if (delta.empty()) return;
  if (state_ == State::text && pending_.empty()) {  // the common case once past the opening
    emit(out, Kind::text, delta);
    return;
  }
  pending_.append(delta);
  process(out);
}

void ThinkSplitter::process(std::vector<Piece>& out) {
  for (;;) {
    switch (state_) {
      case State::start: {
        const std::size_t lead = leading_space(pending_);
        const std::string_view rest = std::string_view(pending_).substr(lead);
        if (rest.empty()) return;  // only whitespace so far: it may still precede "<think>"
        if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;  // "<thi"
        if (rest.substr(0, kOpen.size()) == kOpen) {
          pending_.erase(0, lead + kOpen.size());
          state_ = State::thinking_lead;
          saw_thinking_ = true;
          continue;
        }
        state_ = State::text;  // anything else: the content is all answer, leading space included
        continue;
      }
      case State::thinking_lead:
      case State::text_lead: {
        pending_.erase(0, leading_space(pending_));
        if (pending_.empty()) return;
        state_ = state_ == State::thinking_lead ? State::thinking : State::text;
        continue;
      }
      case State::thinking: {
        const std::size_t close = pending_.find(kClose);
        if (close != std::string::npos) {
          std::string_view body = std::string_view(pending_).substr(0, close);
          while (!body.empty() && is_space(body.back())) body.remove_suffix(1);
          emit(out, Kind::thinking, body);
          pending_.erase(0, close + kClose.size());
          state_ = State::text_lead;
          continue;
        }
        // Hold back a possible cut-off "</think>" and the whitespace before it, which is dropped
        // if the tag completes and emitted if it does not.
        std::size_t keep = partial_tag_suffix(pending_, kClose);
        while (keep < pending_.size() && is_space(pending_[pending_.size() - keep - 1])) ++keep;
        emit(out, Kind::thinking, std::string_view(pending_).substr(0, pending_.size() - keep));
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      case State::text: {
        emit(out, Kind::text, pending_);
        pending_.clear();
        return;
      }
    }
  }
}

void ThinkSplitter::finish(std::vector<Piece>& out) {
  switch (state_) {
    case State::start:  // whitespace or a partial "<think>" that never completed: answer text
      emit(out, Kind::text, pending_);
      break;
    case State::thinking: {  // unterminated: what was held back is reasoning, minus edge space
      std::string_view body = pending_;
      while (!body.empty() && is_space(body.back())) body.remove_suffix(1);
      emit(out, Kind::thinking, body);
      break;
    }
    case State::thinking_lead:
    case State::text_lead:
    case State::text:
      break;
  }
  pending_.clear();
  state_ = State::text;
}

}  // namespace e2ee::api::chat

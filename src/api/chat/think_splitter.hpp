#pragma once
// Separates "<think>…</think>" reasoning from answer text in a content stream, for engines that
// inline reasoning instead of using a reasoning parser. Tags may be split across deltas at any
// byte ("<thi" + "nk>"), so text that could be the start of a tag is held back until it cannot.
// Only a tag at the very start of the content (after optional whitespace) opens a thinking
// section, as reasoning models emit it; a "<think>" later in the answer is literal text.

#include <string>
#include <string_view>
#include <vector>

namespace e2ee::api::chat {

class ThinkSplitter {
 public:
  enum class Kind { thinking, text };
  struct Piece {
    Kind kind;
    std::string text;
  };

  // Appends the pieces that are now certain to `out` (adjacent pieces of one kind may be merged).
  void feed(std::string_view delta, std::vector<Piece>& out);
  // End of content: releases anything held back (an unterminated thinking section stays thinking).
  void finish(std::vector<Piece>& out);

 private:
  enum class State { start, thinking, text };
  State state_ = State::start;
  std::string pending_;
};

}  // namespace e2ee::api::chat

#pragma once
// Separates "<think>…</think>" reasoning from answer text in a content stream, for engines that
// inline reasoning instead of using a reasoning parser. Tags may be split across deltas at any
// byte ("<thi" + "nk>"), so text that could be the start of a tag is held back until it cannot.
// Only a tag at the very start of the content (after optional whitespace) opens a thinking
// section, as reasoning models emit it; a "<think>" later in the answer is literal text.
//
// Whitespace at the section edges is formatting, not content, and is dropped: before "<think>",
// right after "<think>", right before "</think>" and right after "</think>" (models write
// "<think>\n…\n</think>\n\n"). Everything else is passed through byte for byte. The tags are
// ASCII, so every cut falls on a UTF-8 character boundary.
//
// The output does not depend on how the content was split into deltas: concatenating the
// pieces of each run of one kind gives the same result for every split (tested at every byte).
//
// Not handled (documented limitation): content that has only a closing "</think>" because the
// chat template put the opening tag into the prompt. Telling that reasoning from an answer would
// mean holding back the whole answer until the end; run the engine with a reasoning parser.

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

    friend bool operator==(const Piece&, const Piece&) = default;
  };

  // Appends the pieces that are now certain to `out` (adjacent pieces of one kind may be merged).
  void feed(std::string_view delta, std::vector<Piece>& out);
  // End of content: releases anything held back (an unterminated thinking section stays thinking).
  // Further feeds after finish() are treated as answer text.
  void finish(std::vector<Piece>& out);

  // True once a thinking section has been opened (so the caller knows the content had one).
  bool saw_thinking() const noexcept { return saw_thinking_; }

 private:
  enum class State {
    start,          // nothing but whitespace seen yet; might still open with "<think>"
    thinking_lead,  // just after "<think>": dropping whitespace
    thinking,       // inside the thinking section
    text_lead,      // just after "</think>": dropping whitespace
    text,           // answer text; passed through as it comes
  };
  void process(std::vector<Piece>& out);

  State state_ = State::start;
  std::string pending_;
  bool saw_thinking_ = false;
};

}  // namespace e2ee::api::chat

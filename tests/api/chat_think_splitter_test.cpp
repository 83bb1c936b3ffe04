// ThinkSplitter: the pieces must not depend on how the engine cut the content into deltas, so
// every fixture is replayed whole, byte by byte, at every single cut and at every pair of cuts.

#include "api/chat/think_splitter.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using e2ee::api::chat::ThinkSplitter;
using Piece = ThinkSplitter::Piece;
using Kind = ThinkSplitter::Kind;

// Fixtures sit next to this file; __FILE__ is absolute in CMake builds.
std::filesystem::path fixture(const char* name) {
  return std::filesystem::path(__FILE__).parent_path() / "fixtures" / "chat" / name;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Merges adjacent pieces of one kind: the contract allows either form, so compare this one.
std::vector<Piece> merged(const std::vector<Piece>& pieces) {
  std::vector<Piece> out;
  for (const auto& p : pieces) {
    if (p.text.empty()) {
      ADD_FAILURE() << "the splitter emitted an empty piece";
      continue;
    }
    if (!out.empty() && out.back().kind == p.kind) {
      out.back().text += p.text;
    } else {
      out.push_back(p);
    }
  }
  return out;
}

std::vector<Piece> run(const std::vector<std::string_view>& deltas) {
  ThinkSplitter splitter;
  std::vector<Piece> out;
  for (auto d : deltas) splitter.feed(d, out);
  splitter.finish(out);
  return merged(out);
}

std::string describe(const std::vector<Piece>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += (p.kind == Kind::thinking ? "[thinking:" : "[text:") + p.text + "]";
  return s;
}

struct Case {
  std::string name;
  std::string content;
  std::vector<Piece> expected;
};

std::vector<Case> load_cases() {
  const auto text = read_file(fixture("think_splitter.json"));
  boost::json::error_code ec;
  const auto root = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << "fixture is not JSON";
  std::vector<Case> cases;
  if (ec) return cases;
  for (const auto& c : root.at("cases").as_array()) {
    Case k;
    k.name = std::string(c.at("name").as_string());
    k.content = std::string(c.at("content").as_string());
    for (const auto& p : c.at("expected").as_array()) {
      const auto kind = p.at("kind").as_string();
      k.expected.push_back({kind == "thinking" ? Kind::thinking : Kind::text, std::string(p.at("text").as_string())});
    }
    cases.push_back(std::move(k));
  }
  return cases;
}

TEST(ThinkSplitter, FixturesWholeAndAtEveryCut) {
  const auto cases = load_cases();
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string_view content = c.content;
    EXPECT_EQ(describe(run({content})), describe(c.expected));

    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < content.size(); ++i) bytes.push_back(content.substr(i, 1));
    EXPECT_EQ(describe(run(bytes)), describe(c.expected)) << "byte by byte";

    for (std::size_t i = 0; i <= content.size(); ++i) {
      for (std::size_t j = i; j <= content.size(); ++j) {
        const auto got = run({content.substr(0, i), content.substr(i, j - i), content.substr(j)});
        ASSERT_EQ(describe(got), describe(c.expected)) << "cuts at " << i << " and " << j;
      }
    }
  }
}

TEST(ThinkSplitter, StreamsAnswerTextWithoutWaitingForTheEnd) {
  // Holding text back longer than a possible tag would delay every token of every answer.
  ThinkSplitter s;
  std::vector<Piece> out;
  s.feed("Hel", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::text);
  EXPECT_EQ(out[0].text, "Hel");
  s.feed("lo", out);
  EXPECT_EQ(describe(merged(out)), "[text:Hello]");
}

TEST(ThinkSplitter, HoldsBackOnlyWhatCouldBeATag) {
  ThinkSplitter s;
  std::vector<Piece> out;
  s.feed("<thi", out);
  EXPECT_TRUE(out.empty()) << "a possible opening tag must be held";
  s.feed("nk>reasoning step", out);
  EXPECT_EQ(describe(merged(out)), "[thinking:reasoning step]");
  EXPECT_TRUE(s.saw_thinking());
  out.clear();
  s.feed(" more </th", out);
  EXPECT_EQ(describe(merged(out)), "[thinking: more]") << "the cut-off closing tag and the space before it wait";
  out.clear();
  s.feed("ink>done", out);
  EXPECT_EQ(describe(merged(out)), "[text:done]");
}

TEST(ThinkSplitter, ThinkingIsReleasedIncrementally) {
  ThinkSplitter s;
  std::vector<Piece> out;
  s.feed("<think>step one", out);
  EXPECT_EQ(describe(merged(out)), "[thinking:step one]");
}

TEST(ThinkSplitter, FeedAfterFinishIsAnswerText) {
  ThinkSplitter s;
  std::vector<Piece> out;
  s.feed("<think>x", out);
  s.finish(out);
  s.feed("<think>y</think>", out);
  EXPECT_EQ(describe(merged(out)), "[thinking:x][text:<think>y</think>]");
}

TEST(ThinkSplitter, PlainContentNeverReportsThinking) {
  ThinkSplitter s;
  std::vector<Piece> out;
  s.feed("no tags here <think>", out);
  s.finish(out);
  EXPECT_FALSE(s.saw_thinking());
}

}  // namespace

#include "common/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace e2ee::log {
namespace {

// Runs `body` with stderr sent to a temporary file and returns what was written there.
template <typename Body>
std::string captured_stderr(Body body) {
  std::FILE* file = std::tmpfile();
  EXPECT_NE(file, nullptr);
  std::fflush(stderr);
  const int saved = ::dup(2);
  ::dup2(::fileno(file), 2);
  body();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::rewind(file);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file)) > 0;) out.append(buf, n);
  std::fclose(file);
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::time_t parse_utc(const std::string& stamp) {
  std::tm tm{};
  std::istringstream in(stamp);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  return timegm(&tm);
}

class LogTest : public ::testing::Test {
 protected:
  void TearDown() override { configure(Level::info, Format::text); }
};

TEST_F(LogTest, TextLinesCarryAUtcMillisecondTimestampThatFollowsTheClock) {
  configure(Level::info, Format::text);
  const auto before = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  const std::string out = captured_stderr([] {
    // Several lines, some within one second (the cached prefix) and one after the next second
    // has begun (the prefix is formatted anew).
    info("first", {{"k", "v"}});
    info("second", {{"n", 42}});
    const auto start = std::chrono::system_clock::now();
    const auto next_second = std::chrono::floor<std::chrono::seconds>(start) + std::chrono::seconds(1);
    while (std::chrono::system_clock::now() < next_second + std::chrono::milliseconds(5)) {
    }
    info("third");
  });
  const auto after = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());

  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  const std::regex shape(R"(^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.\d{3}Z info (\S+)( .*)?$)");
  std::vector<std::time_t> seconds;
  for (const auto& line : lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, shape)) << line;
    seconds.push_back(parse_utc(m[1].str()));
    EXPECT_GE(seconds.back(), before) << line;
    EXPECT_LE(seconds.back(), after) << line;
  }
  EXPECT_NE(lines[0].find(" first k=v"), std::string::npos);
  EXPECT_NE(lines[1].find(" second n=42"), std::string::npos);
  EXPECT_GT(seconds[2], seconds[1]) << "the line after the second changed kept the old second";
}

TEST_F(LogTest, ValuesCannotForgeLinesAndJsonIsOneObjectPerLine) {
  configure(Level::info, Format::json);
  const std::string out = captured_stderr([] { warn("odd \"input\"", {{"path", "/v1/x\n2026-01-01 error forged"}}); });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const std::regex shape(
      R"(^\{"ts":"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z","level":"warn","msg":"odd \\"input\\"","path":"/v1/x\\n2026-01-01 error forged"\}$)");
  EXPECT_TRUE(std::regex_match(lines[0], shape)) << lines[0];
}

TEST_F(LogTest, LinesBelowTheLevelAreNotWritten) {
  configure(Level::warn, Format::text);
  const std::string out = captured_stderr([] {
    info("hidden");
    debug("hidden too");
    error("shown");
  });
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  EXPECT_NE(lines[0].find(" error shown"), std::string::npos);
}

}  // namespace
}  // namespace e2ee::log

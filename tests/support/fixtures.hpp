#pragma once
// Reading test fixtures and JSON in tests: one definition for every suite (a missing fixture or a
// text that is not JSON fails the test that asked for it, with the path or text named).

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

namespace e2ee::test {

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing fixture " << path;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline boost::json::value parse_json(std::string_view text) {
  boost::json::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (ec) ADD_FAILURE() << "not JSON: " << text;
  return v;
}

}  // namespace e2ee::test

#pragma once
// Test-vector files: where they are, and a loader that refuses to let a field go unread.
//
// The third-party vectors live outside the repository in ../shared/vectors (see that folder's
// README for provenance). When the folder is absent a test calls E2EE_REQUIRE_VECTORS, which
// skips it with a message naming exactly what was not checked; ctest reports it as skipped, and
// the test script's summary line lists it. It never passes silently.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"

namespace e2ee::test {

// $E2EE_VECTORS_DIR if set, else <project>/../shared/vectors; nullopt when it does not exist.
std::optional<std::filesystem::path> vectors_dir();

// Skips the current test loudly when `relative` is not present under the vectors folder.
#define E2EE_REQUIRE_VECTORS(relative)                                                          \
  do {                                                                                          \
    if (!::e2ee::test::vector_file_present(relative))                                           \
      GTEST_SKIP() << "SKIPPED: test vectors not found: " << ::e2ee::test::describe_missing(relative) \
                   << " — nothing from this file was checked";                                  \
  } while (false)

bool vector_file_present(std::string_view relative);
std::string describe_missing(std::string_view relative);
std::filesystem::path vector_path(std::string_view relative);

// A JSON object whose members must each be consumed exactly by the test code. `unread()` lists
// the members nobody asked for, so a schema change or a typo cannot silently skip a check.
class Fields {
 public:
  Fields(const boost::json::object& object, std::string context);

  bool has(std::string_view key) const;
  Bytes hex(std::string_view key);
  std::string str(std::string_view key);
  std::int64_t integer(std::string_view key);
  std::vector<std::string> strings(std::string_view key);
  const boost::json::value& raw(std::string_view key);
  // Marks a member as read on purpose without using it (provenance, comments).
  void ignore(std::string_view key);

  std::vector<std::string> unread() const;
  const std::string& context() const { return context_; }

 private:
  const boost::json::value& take(std::string_view key);
  const boost::json::object& object_;
  std::string context_;
  std::set<std::string, std::less<>> read_;
};

enum class Expected { valid, invalid, acceptable };

// One Wycheproof test case: its id, and the fields still to be read.
struct WycheproofCase {
  std::int64_t tc_id;
  std::string comment;
  std::vector<std::string> flags;
  Expected result;
  Fields& fields;
};

// Runs `body` for every test of every group in a Wycheproof file. Checks the file's schema name,
// that numberOfTests matches the tests seen, and after each case and each group that every field
// was read. Failures carry "tcId N" via SCOPED_TRACE. Returns the number of cases run.
std::size_t for_each_wycheproof_case(
    std::string_view relative, std::string_view expected_schema,
    const std::function<void(Fields& group, const WycheproofCase& test)>& body);

// Reads a file of "name = hex" lines in blank-line-separated blocks (CCTV's text format).
std::vector<std::vector<std::pair<std::string, Bytes>>> read_key_value_blocks(const std::filesystem::path& file);
// Reads every line of a (possibly gzip-compressed) text file.
std::vector<std::string> read_lines(const std::filesystem::path& file);

}  // namespace e2ee::test

#include "support/vectors.hpp"

#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/encoding.hpp"

namespace e2ee::test {

namespace fs = std::filesystem;

std::optional<fs::path> vectors_dir() {
  if (const char* env = std::getenv("E2EE_VECTORS_DIR"); env != nullptr && *env != '\0') {
    if (fs::is_directory(env)) return fs::path(env);
    return std::nullopt;
  }
  const fs::path fallback = fs::path(E2EE_PROJECT_DIR) / ".." / "shared" / "vectors";
  if (fs::is_directory(fallback)) return fs::weakly_canonical(fallback);
  return std::nullopt;
}

fs::path vector_path(std::string_view relative) {
  const auto dir = vectors_dir();
  if (!dir) throw std::runtime_error("vectors folder missing");
  return *dir / relative;
}

bool vector_file_present(std::string_view relative) {
  const auto dir = vectors_dir();
  return dir && fs::is_regular_file(*dir / relative);
}

std::string describe_missing(std::string_view relative) {
  const auto dir = vectors_dir();
  if (!dir) return "../shared/vectors/" + std::string(relative) + " (no vectors folder; set E2EE_VECTORS_DIR)";
  return (*dir / relative).string();
}

Fields::Fields(const boost::json::object& object, std::string context)
    : object_(object), context_(std::move(context)) {}

bool Fields::has(std::string_view key) const { return object_.contains(key); }

const boost::json::value& Fields::take(std::string_view key) {
  const auto* v = object_.if_contains(key);
  if (v == nullptr) throw std::runtime_error(context_ + ": missing field '" + std::string(key) + "'");
  read_.emplace(key);
  return *v;
}

Bytes Fields::hex(std::string_view key) {
  const auto& v = take(key);
  auto bytes = hex_decode(v.as_string());
  if (!bytes) throw std::runtime_error(context_ + ": field '" + std::string(key) + "' is not hex");
  return *bytes;
}

std::string Fields::str(std::string_view key) { return std::string(take(key).as_string()); }

std::int64_t Fields::integer(std::string_view key) { return take(key).as_int64(); }

std::vector<std::string> Fields::strings(std::string_view key) {
  std::vector<std::string> out;
  for (const auto& item : take(key).as_array()) out.emplace_back(item.as_string());
  return out;
}

const boost::json::value& Fields::raw(std::string_view key) { return take(key); }

void Fields::ignore(std::string_view key) {
  if (object_.contains(key)) read_.emplace(key);
}

std::vector<std::string> Fields::unread() const {
  std::vector<std::string> out;
  for (const auto& member : object_) {
    if (!read_.contains(std::string_view(member.key()))) out.emplace_back(member.key());
  }
  return out;
}

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

boost::json::value parse_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return boost::json::parse(ss.str());
}

Expected parse_result(const std::string& s, const std::string& context) {
  if (s == "valid") return Expected::valid;
  if (s == "invalid") return Expected::invalid;
  if (s == "acceptable") return Expected::acceptable;
  throw std::runtime_error(context + ": unknown result '" + s + "'");
}

}  // namespace

std::size_t for_each_wycheproof_case(
    std::string_view relative, std::string_view expected_schema,
    const std::function<void(Fields& group, const WycheproofCase& test)>& body) {
  const fs::path path = vector_path(relative);
  const boost::json::value doc = parse_json_file(path);
  const auto& root = doc.as_object();
  Fields file(root, std::string(relative));
  EXPECT_EQ(file.str("schema"), expected_schema) << relative;
  file.ignore("algorithm");  // implied by the schema and the group types the tests check
  file.ignore("header");
  file.ignore("notes");
  const std::int64_t declared = file.integer("numberOfTests");

  std::size_t seen = 0;
  const auto& groups = file.raw("testGroups").as_array();
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    Fields group(groups[gi].as_object(), std::string(relative) + " group " + std::to_string(gi));
    group.ignore("source");  // provenance only
    const auto& tests = group.raw("tests").as_array();
    for (const auto& t : tests) {
      Fields fields(t.as_object(), std::string(relative));
      const std::int64_t id = fields.integer("tcId");
      const std::string comment = fields.has("comment") ? fields.str("comment") : std::string();
      std::vector<std::string> flags = fields.has("flags") ? fields.strings("flags") : std::vector<std::string>{};
      const std::string context = std::string(relative) + " tcId " + std::to_string(id) +
                                  (comment.empty() ? "" : " (" + comment + ")") +
                                  (flags.empty() ? "" : " flags [" + join(flags) + "]");
      SCOPED_TRACE(context);
      const Expected result = parse_result(fields.str("result"), context);
      WycheproofCase test{id, comment, std::move(flags), result, fields};
      body(group, test);
      const auto left = fields.unread();
      EXPECT_TRUE(left.empty()) << context << ": test code did not read field(s): " << join(left);
      ++seen;
    }
    const auto left = group.unread();
    EXPECT_TRUE(left.empty()) << group.context() << ": test code did not read group field(s): " << join(left);
  }
  EXPECT_EQ(static_cast<std::int64_t>(seen), declared) << relative << ": numberOfTests disagrees with the file";
  const auto left = file.unread();
  EXPECT_TRUE(left.empty()) << relative << ": unread top-level field(s): " << join(left);
  return seen;
}

std::vector<std::string> read_lines(const fs::path& file) {
  gzFile in = gzopen(file.string().c_str(), "rb");  // reads plain files transparently too
  if (in == nullptr) throw std::runtime_error("cannot open " + file.string());
  std::vector<std::string> lines;
  std::string current;
  char buf[65536];
  int n;
  while ((n = gzread(in, buf, sizeof buf)) > 0) {
    for (int i = 0; i < n; ++i) {
      if (buf[i] == '\n') {
        if (!current.empty() && current.back() == '\r') current.pop_back();
        lines.push_back(std::move(current));
        current.clear();
      } else {
        current += buf[i];
      }
    }
  }
  const bool failed = n < 0;
  gzclose(in);
  if (failed) throw std::runtime_error("cannot read " + file.string());
  if (!current.empty()) lines.push_back(std::move(current));
  return lines;
}

std::vector<std::vector<std::pair<std::string, Bytes>>> read_key_value_blocks(const fs::path& file) {
  std::vector<std::vector<std::pair<std::string, Bytes>>> blocks(1);
  for (const auto& line : read_lines(file)) {
    if (line.empty()) {
      if (!blocks.back().empty()) blocks.emplace_back();
      continue;
    }
    if (line[0] == '#') continue;
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) throw std::runtime_error(file.string() + ": bad line: " + line.substr(0, 40));
    auto value = hex_decode(line.substr(eq + 3));
    if (!value) throw std::runtime_error(file.string() + ": not hex: " + line.substr(0, 40));
    blocks.back().emplace_back(line.substr(0, eq), std::move(*value));
  }
  if (blocks.back().empty()) blocks.pop_back();
  return blocks;
}

}  // namespace e2ee::test

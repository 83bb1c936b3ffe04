#include "app/cli.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace e2ee::app {
namespace {

CommandLine make() {
  return CommandLine("prog", "summary",
                     {{"--listen", "URL", "where", "", true, "x"},
                      {"--api-key", "KEY", "key", "E2EE_TEST_KEY", false, ""},
                      {"--allow", "", "switch", "E2EE_TEST_ALLOW", false, ""}});
}

TEST(CommandLine, FlagsEnvAndRepeats) {
  ::unsetenv("E2EE_TEST_KEY");
  ::unsetenv("E2EE_TEST_ALLOW");
  auto cli = make();
  const char* argv[] = {"prog", "--listen", "http://a:1", "--listen=https://b:2", "--allow"};
  ASSERT_FALSE(cli.parse(5, argv));
  EXPECT_EQ(cli.values("--listen"), (std::vector<std::string>{"http://a:1", "https://b:2"}));
  EXPECT_TRUE(cli.has("--allow"));
  EXPECT_FALSE(cli.value("--api-key"));
  ::setenv("E2EE_TEST_KEY", "from-env", 1);
  EXPECT_EQ(cli.value("--api-key"), "from-env");
  ::unsetenv("E2EE_TEST_KEY");
}

TEST(CommandLine, FlagsWinOverEnvironment) {
  ::setenv("E2EE_TEST_KEY", "from-env", 1);
  auto cli = make();
  const char* argv[] = {"prog", "--api-key", "from-flag"};
  ASSERT_FALSE(cli.parse(3, argv));
  EXPECT_EQ(cli.value("--api-key"), "from-flag");
  ::unsetenv("E2EE_TEST_KEY");
}

TEST(CommandLine, SwitchFromEnvironmentNeedsTrue) {
  auto cli = make();
  const char* argv[] = {"prog"};
  ASSERT_FALSE(cli.parse(1, argv));
  for (const char* off : {"false", "TRUE", "1", "yes", ""}) {
    ::setenv("E2EE_TEST_ALLOW", off, 1);
    EXPECT_FALSE(cli.has("--allow")) << "'" << off << "' must not enable it (the reference reads exactly \"true\")";
  }
  ::setenv("E2EE_TEST_ALLOW", "true", 1);
  EXPECT_TRUE(cli.has("--allow"));
  ::unsetenv("E2EE_TEST_ALLOW");
}

TEST(CommandLine, ErrorsAreOneLine) {
  auto cli = make();
  const char* unknown[] = {"prog", "--nope"};
  EXPECT_EQ(cli.parse(2, unknown), "unknown option '--nope' (see --help)");
  auto cli2 = make();
  const char* missing[] = {"prog", "--listen"};
  EXPECT_EQ(cli2.parse(2, missing), "option --listen needs a value (URL)");
}

TEST(CommandLine, HelpListsEveryOptionWithItsEnvironmentVariable) {
  const auto help = make().help();
  EXPECT_NE(help.find("--listen URL"), std::string::npos);
  EXPECT_NE(help.find("[env E2EE_TEST_KEY]"), std::string::npos);
  EXPECT_NE(help.find("[repeatable]"), std::string::npos);
}

}  // namespace
}  // namespace e2ee::app

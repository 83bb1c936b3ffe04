#include "proxy/browser_guard.hpp"

#include <gtest/gtest.h>

namespace {

using e2ee::proxy::BrowserPolicy;
using e2ee::proxy::cors_grant;
using e2ee::proxy::host_allowed;
using e2ee::proxy::split_list;

TEST(HostGuard, AnswersLoopbackNamesIpLiteralsAndConfiguredNamesOnly) {
  BrowserPolicy p;
  p.allowed_hosts = {"proxy.internal"};
  for (const char* ok : {"localhost", "localhost:8443", "LOCALHOST.", "app.localhost:1", "127.0.0.1", "127.0.0.1:8080",
                         "[::1]:8443", "[::1]", "192.168.1.20:443", "proxy.internal", "Proxy.Internal:8443"})
    EXPECT_TRUE(host_allowed(p, std::string_view(ok))) << ok;
  // A rebinding page's own name, look-alikes and malformed values.
  for (const char* refused : {"evil.example", "evil.example:8443", "localhost.evil.example", "proxy.internal.evil.example",
                              "", " ", "[::1", "[::1]x", "::1", "127.0.0.1.nip.io"})
    EXPECT_FALSE(host_allowed(p, std::string_view(refused))) << refused;
  EXPECT_TRUE(host_allowed(p, std::nullopt)) << "HTTP/1.0 clients send no Host; browsers always do";
}

TEST(HostGuard, StarTurnsTheCheckOff) {
  BrowserPolicy p;
  p.allowed_hosts = {"*"};
  EXPECT_TRUE(host_allowed(p, std::string_view("anything.example")));
}

TEST(CorsGrant, StarOnlyWithoutAStoredKeyUnlessOriginsAreListed) {
  BrowserPolicy open;
  EXPECT_EQ(cors_grant(open, std::string_view("https://app.example")), "*");
  EXPECT_EQ(cors_grant(open, std::nullopt), "*");

  BrowserPolicy keyed;
  keyed.key_stored = true;
  EXPECT_FALSE(cors_grant(keyed, std::string_view("https://evil.example"))) << "a stored key is never lent to any page";

  keyed.cors_origins = split_list("https://App.example/, http://localhost:3000");
  EXPECT_EQ(cors_grant(keyed, std::string_view("https://app.example")), "https://app.example");
  EXPECT_EQ(cors_grant(keyed, std::string_view("http://localhost:3000")), "http://localhost:3000");
  EXPECT_FALSE(cors_grant(keyed, std::string_view("https://evil.example")));
  EXPECT_FALSE(cors_grant(keyed, std::string_view("https://app.example.evil.example")));
  EXPECT_FALSE(cors_grant(keyed, std::nullopt));

  keyed.cors_origins = {"*"};
  EXPECT_EQ(cors_grant(keyed, std::string_view("https://any.example")), "*") << "explicit opt-in";
}

TEST(SplitList, TrimsLowersAndDropsEmptyItems) {
  EXPECT_EQ(split_list(" A.example, ,b.EXAMPLE ,"), (std::vector<std::string>{"a.example", "b.example"}));
  EXPECT_TRUE(split_list("").empty());
}

}  // namespace

#include "http/url.hpp"

#include <gtest/gtest.h>

#include "http/headers.hpp"
#include "http/wire.hpp"

namespace e2ee::http {
namespace {

TEST(Url, ParsesSchemeHostPortAndBasePath) {
  auto url = Url::parse("https://api.chutes.ai");
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "api.chutes.ai");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->base_path, "");

  url = Url::parse("http://127.0.0.1:8080/v1/");
  ASSERT_TRUE(url);
  EXPECT_FALSE(url->tls);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->base_path, "/v1");

  url = Url::parse("http://localhost");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->port, 80);

  url = Url::parse("HTTPS://Example.COM:0/a/b//");
  ASSERT_TRUE(url);
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "example.com");
  EXPECT_EQ(url->port, 0);  // "any port" for listeners
  EXPECT_EQ(url->base_path, "/a/b");
}

TEST(Url, ParsesIpv6Literals) {
  auto url = Url::parse("http://[::1]:9000/x");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 9000);
  EXPECT_EQ(url->origin(), "http://[::1]:9000");
  EXPECT_EQ(url->host_header(), "[::1]:9000");

  url = Url::parse("https://[2001:DB8::7]");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "2001:db8::7");
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->host_header(), "[2001:db8::7]");
}

TEST(Url, RejectsWhatWeDoNotSupport) {
  for (const char* bad : {"ftp://x", "x.example", "//x", "http://", "http://:80", "http://host:", "http://host:65536",
                          "http://host:-1", "http://host:8o", "http://user:pw@host", "http://host/?q=1",
                          "http://host/#f", "http://host?q", "http://ho st/", "http://host/a b", "http://[::1",
                          "http://[]:80", "http://[::1]x", "http://[zz]/", "http://host/\x01"}) {
    auto url = Url::parse(bad);
    EXPECT_FALSE(url) << bad;
    if (!url) {
      EXPECT_EQ(url.error().code, Errc::invalid_argument);
      EXPECT_NE(url.error().message.find("invalid URL"), std::string::npos);
    }
  }
}

TEST(Url, OriginHostHeaderAndTarget) {
  auto url = Url::parse("https://llm.chutes.ai/base");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->origin(), "https://llm.chutes.ai");
  EXPECT_EQ(url->host_header(), "llm.chutes.ai");
  EXPECT_EQ(url->target("/v1/models"), "/base/v1/models");

  url = Url::parse("http://127.0.0.1:8443");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->origin(), "http://127.0.0.1:8443");
  EXPECT_EQ(url->host_header(), "127.0.0.1:8443");
  EXPECT_EQ(url->target("/v1/chat/completions?x=1"), "/v1/chat/completions?x=1");
  EXPECT_EQ(url->target(""), "/");

  url = Url::parse("https://h:80");  // 80 is not https's default, so it stays
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host_header(), "h:80");
}

TEST(Headers, LookupIsCaseInsensitiveAndOrderIsKept) {
  Headers h;
  h.add("Content-Type", "application/json");
  h.add("X-One", "1");
  h.add("x-one", "2");
  h.add("Authorization", "Bearer k");
  EXPECT_EQ(h.get("content-type"), "application/json");
  EXPECT_EQ(h.get("X-ONE"), "1");  // the first one
  EXPECT_TRUE(h.has("authorization"));
  EXPECT_FALSE(h.has("Authorizatio"));

  h.set("X-One", "3");  // replaces both, at the first one's place
  ASSERT_EQ(h.fields().size(), 3u);
  EXPECT_EQ(h.fields()[1], (Headers::Field{"X-One", "3"}));
  EXPECT_EQ(h.fields()[2].first, "Authorization");

  h.set("New", "n");
  EXPECT_EQ(h.fields().back(), (Headers::Field{"New", "n"}));
  h.remove("content-TYPE");
  EXPECT_FALSE(h.has("Content-Type"));
  EXPECT_EQ(h.fields().size(), 3u);
}

TEST(Headers, Iequals) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("Content-Length", "content-lengt"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("[", "{"));  // 0x5b vs 0x7b: not letters, no case folding
}

TEST(Wire, ValidatesWhatGoesOnTheWire) {
  EXPECT_TRUE(wire::is_token("X-Api-Key"));
  EXPECT_FALSE(wire::is_token(""));
  EXPECT_FALSE(wire::is_token("Bad Name"));
  EXPECT_FALSE(wire::is_token("Bad:Name"));
  EXPECT_TRUE(wire::is_field_value("Bearer abc, def"));
  EXPECT_FALSE(wire::is_field_value("a\r\nInjected: yes"));
  EXPECT_FALSE(wire::is_field_value(std::string_view("a\0b", 3)));

  Headers h;
  h.add("A", "1");
  h.add("Content-Length", "99");
  h.add("B", "2");
  std::string out;
  EXPECT_TRUE(wire::append_fields(out, h, {"content-length"}));
  EXPECT_EQ(out, "A: 1\r\nB: 2\r\n");
  h.add("C", "x\ny");
  EXPECT_FALSE(wire::append_fields(out, h, {}));

  EXPECT_TRUE(wire::list_contains("keep-alive, Close", "close"));
  EXPECT_TRUE(wire::list_contains(" close ", "close"));
  EXPECT_FALSE(wire::list_contains("closed, x", "close"));
  EXPECT_FALSE(wire::list_contains("", "close"));
}

}  // namespace
}  // namespace e2ee::http

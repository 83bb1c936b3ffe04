// RawJson: lookups over a client's JSON that hand back each value's exact bytes.

#include "common/raw_json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using e2ee::RawJson;
using e2ee::RawValue;

TEST(RawJson, ValuesKeepTheirExactBytes) {
  const std::string text = R"( { "a" : 0.70 , "b":[1, 2.5e-3 ,{"c":null}], "big":123456789012345678901234567890,
    "s":"x\u00e9\n", "t":true, "f":false, "o":{ "k" : "v" } } )";
  auto doc = RawJson::parse(text);
  ASSERT_TRUE(doc) << doc.error().message;
  const auto root = doc->root();
  ASSERT_TRUE(root.is_object());
  EXPECT_EQ(root.size(), 7u);
  EXPECT_EQ(root.get("a")->raw(), "0.70");
  EXPECT_TRUE(root.get("a")->is_number());
  EXPECT_FALSE(root.get("a")->is_integer());
  EXPECT_EQ(root.get("big")->raw(), "123456789012345678901234567890");
  EXPECT_TRUE(root.get("big")->is_integer());
  EXPECT_EQ(root.get("b")->raw(), R"([1, 2.5e-3 ,{"c":null}])");
  const auto b = root.get("b")->elements();
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1].raw(), "2.5e-3");
  EXPECT_TRUE(b[2].get("c")->is_null());
  EXPECT_EQ(root.get("s")->raw(), R"("x\u00e9\n")");
  EXPECT_EQ(root.get("s")->str(), "x\xC3\xA9\n");
  EXPECT_TRUE(root.get("t")->boolean());
  EXPECT_TRUE(root.get("f")->is_bool());
  EXPECT_FALSE(root.get("f")->boolean());
  EXPECT_EQ(root.get("o")->raw(), R"({ "k" : "v" })");
  EXPECT_EQ(root.get("o")->get_string("k"), "v");
  EXPECT_FALSE(root.get("missing"));
  EXPECT_FALSE(root.get("a")->get("x")) << "get on a non-object is nullopt";
  EXPECT_EQ(root.get("a")->str(), "") << "str on a non-string is empty";
  EXPECT_FALSE(root.get_string("a")) << "get_string on a number is nullopt";
}

TEST(RawJson, EscapedKeysAndDuplicates) {
  auto doc = RawJson::parse(R"({"k\u0065y":1,"key":2,"x":3})");
  ASSERT_TRUE(doc);
  EXPECT_EQ(doc->root().get("key")->raw(), "2") << "the last duplicate wins, escaped or not";
  const auto members = doc->root().members();
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[0].key, "key");
  EXPECT_EQ(members[0].value.raw(), "1");
  EXPECT_EQ(members[2].key, "x");
}

TEST(RawJson, EmptyContainersAndScalars) {
  auto doc = RawJson::parse(R"([[],{},"",0,-1])");
  ASSERT_TRUE(doc);
  const auto e = doc->root().elements();
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].size(), 0u);
  EXPECT_TRUE(e[0].elements().empty());
  EXPECT_TRUE(e[1].members().empty());
  EXPECT_EQ(e[2].str(), "");
  EXPECT_TRUE(e[4].is_integer());
  auto scalar = RawJson::parse(" 42 ");
  ASSERT_TRUE(scalar);
  EXPECT_EQ(scalar->root().raw(), "42");
}

TEST(RawJson, ValuesOutliveMovesOfTheDocument) {
  auto doc = RawJson::parse(R"({"a":"b"})");
  ASSERT_TRUE(doc);
  const auto value = doc->root().get("a");
  RawJson moved = std::move(*doc);
  EXPECT_EQ(value->str(), "b");
  EXPECT_EQ(moved.root().get("a")->raw(), "\"b\"");
}

TEST(RawJson, InvalidTextIsRejected) {
  for (const char* bad : {"", "{", "{\"a\":}", "[1,]", "{\"a\":1}x", "\xFF", "{'a':1}", "NaN"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(RawJson::parse(bad));
  }
  std::string deep(300, '[');
  deep += std::string(300, ']');
  auto r = RawJson::parse(deep);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, e2ee::Errc::limit_exceeded);
  EXPECT_TRUE(RawJson::parse(deep, 400));
}

}  // namespace

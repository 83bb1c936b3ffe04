#include "common/json_text.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

// Allocation counting: the scanner runs on every request body (up to 10 MiB), so the claim "no
// allocation beyond the output string" is checked, not assumed. Replacing the global operators
// is allowed by the standard and affects only this test binary.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

// GCC inlines these deletes into callers and then sees free() on memory from operator new; here
// that pairing is exactly what the replacement does, so the warning is a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace e2ee::json_text {
namespace {

// Counts heap allocations made while `f` runs.
template <typename F>
long allocations_during(F&& f) {
  g_allocations = 0;
  g_counting = true;
  f();
  g_counting = false;
  return g_allocations.load();
}

// An independent oracle: Boost.JSON's parser, configured strictly (its defaults reject comments,
// trailing commas, invalid UTF-8 and unpaired surrogates). Depth limit raised to ours.
bool boost_accepts(std::string_view text, bool* exponent_overflow = nullptr) {
  boost::json::parse_options opts;
  opts.max_depth = 512;
  boost::system::error_code ec;
  boost::json::monotonic_resource mr;
  (void)boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, &mr, opts);
  if (exponent_overflow != nullptr) *exponent_overflow = ec == boost::json::error::exponent_overflow;
  return !ec;
}

std::string span_text(std::string_view text, std::size_t begin, std::size_t end) {
  return std::string(text.substr(begin, end - begin));
}

// ---- validate ------------------------------------------------------------------------------------

TEST(JsonValidate, AcceptsTheGrammar) {
  const char* const good[] = {
      "{}", "[]", "0", "-0", "1", "-1", "10", "1.5", "-0.0e-0", "1E5", "1e+5", "1e-5", "12.34e+56",
      "18446744073709551616", "1.00000000000000000001", "123456789012345678901234567890e999",
      "true", "false", "null", "\"\"", "\"a\"", " \t\r\n{} \t\r\n", "[1,2,3]", "[[],{},\"\",0]",
      "{\"a\":{\"b\":[{\"c\":null}]}}", "{\"\":1}", "{\"a\":1,\"a\":2}",
      "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\"\\u0000\\u001F\\u00e9\\uFFFF\\uD7FF\\uE000\"",
      "\"\\ud83d\\ude00\"", "\"\\uDBFF\\uDFFF\"", "\"\\uD800\\uDC00\"",
      "\"\x7f\"",                          // DEL needs no escape
      "\"\xc2\x80 \xdf\xbf\"",             // U+0080, U+07FF
      "\"\xe0\xa0\x80 \xef\xbf\xbf\"",     // U+0800, U+FFFF
      "\"\xed\x9f\xbf \xee\x80\x80\"",     // U+D7FF, U+E000 (either side of the surrogates)
      "\"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf\"",  // U+10000, U+10FFFF
      "\"\xf3\xbf\xbf\xbf\"",
  };
  for (const char* text : good) {
    EXPECT_TRUE(validate(text)) << text;
    EXPECT_TRUE(boost_accepts(text)) << "oracle disagrees on " << text;
  }
}

TEST(JsonValidate, RejectsEverythingElse) {
  const std::string bad[] = {
      "", " ", "{", "}", "[", "]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{,}", "[,]", "[1,]", "{\"a\":1,}",
      "[1 2]", "{\"a\":1 \"b\":2}", "{1:2}", "{a:1}", "{'a':1}", "['a']", "01", "-01", "00", "+1", "1.",
      ".1", "-", "-.1", "1e", "1e+", "1E-", "1.e5", "0x10", "NaN", "-NaN", "Infinity", "-Infinity", "tru",
      "True", "nul", "nulll", "falsey", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\U0041\"",
      "\"\\", "\"\\u", std::string("\"\x01\""), "\"\t\"", "\"\n\"", std::string("\"\0\"", 3),
      std::string("\0", 1), "{} x", "{}{}", "[1]]", "1 2", "{/**/}", "// c\n{}", "[1,,2]",
      "\xef\xbb\xbf{}",  // a byte-order mark
      // invalid UTF-8 inside strings
      "\"\xc0\x80\"", "\"\xc1\xbf\"", "\"\xe0\x80\x80\"", "\"\xe0\x9f\xbf\"", "\"\xf0\x80\x80\x80\"",
      "\"\xf0\x8f\xbf\xbf\"", "\"\xed\xa0\x80\"", "\"\xed\xbf\xbf\"", "\"\xf4\x90\x80\x80\"",
      "\"\xf5\x80\x80\x80\"", "\"\xff\"", "\"\xfe\"", "\"\x80\"", "\"\xbf\"", "\"\xe2\x82\"", "\"\xe2\x82",
      "\"\xf0\x9f\x98\"", "\"\xc3\"", "\"\xc3\x28\"", "\"\xe2\x28\xa1\"",
      "\xc3\xa9",  // non-ASCII outside a string
      // unpaired surrogate escapes
      "\"\\ud800\"", "\"\\udc00\"", "\"\\udfff\"", "\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"", "\"\\ud800x\"",
      "\"\\ud800\\\"", "\"\\ud800\\n\"", "\"\\ude00\\ud83d\"", "\"\\ud83d",
  };
  for (const auto& text : bad) {
    const auto r = validate(text);
    EXPECT_FALSE(r) << "accepted: " << text;
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::invalid_argument) << text;
    }
    EXPECT_FALSE(boost_accepts(text)) << "oracle disagrees on " << text;
  }
}

TEST(JsonValidate, ErrorNamesTheOffsetButNotTheContent) {
  const auto r = validate("{\"secret-prompt\": tru}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("byte 18"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << r.error().message;
}

TEST(JsonValidate, DepthLimit) {
  auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_TRUE(validate(nested(512)));
  const auto deep = validate(nested(513));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().code, Errc::limit_exceeded);
  EXPECT_TRUE(validate("[[1]]", 2));
  EXPECT_EQ(validate("[[1]]", 1).error().code, Errc::limit_exceeded);
  EXPECT_EQ(validate("{\"a\":{}}", 1).error().code, Errc::limit_exceeded);
  EXPECT_TRUE(validate("1", 0));
  EXPECT_EQ(validate("[]", 0).error().code, Errc::limit_exceeded);
  // Mixed kinds past the 1024 levels kept inline: the closer must match the opener at every level.
  std::string mixed;
  for (int i = 0; i < 3000; ++i) mixed += (i % 3 == 0) ? "{\"k\":" : "[";
  mixed += "0";
  for (int i = 2999; i >= 0; --i) mixed += (i % 3 == 0) ? "}" : "]";
  EXPECT_TRUE(validate(mixed, 4000));
  std::string swapped = mixed;
  swapped[swapped.size() - 2000] = swapped[swapped.size() - 2000] == '}' ? ']' : '}';
  EXPECT_FALSE(validate(swapped, 4000));
  // Depth is iterative: a million levels cost bits, not stack frames.
  EXPECT_TRUE(validate(nested(1'000'000), 2'000'000));
}

TEST(JsonValidate, AllocatesNothing) {
  std::string doc = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo \\ud83d\\ude00\"}],"
                    "\"seed\":18446744073709551616,\"x\":[[[[{}]]]]}";
  EXPECT_EQ(allocations_during([&] { EXPECT_TRUE(validate(doc)); }), 0);
  EXPECT_EQ(allocations_during([&] {
              const auto m = find_member(doc, "seed");
              EXPECT_TRUE(m && m->has_value());
            }),
            0);
  EXPECT_EQ(allocations_during([&] { EXPECT_TRUE(find_member(doc, "\u00e9")); }), 0);
}

// ---- find_member ---------------------------------------------------------------------------------

TEST(JsonFindMember, ReportsExactSpans) {
  //                  0         1
  //                  0123456789012345678901
  const std::string t = "{\"a\":1 , \"pk\" : \"x\" }";
  const auto m = find_member(t, "pk");
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->member_begin, 9u);
  EXPECT_EQ((*m)->value_begin, 16u);
  EXPECT_EQ((*m)->value_end, 19u);
  EXPECT_EQ((*m)->member_end, 19u);
  const auto a = find_member(t, "a");
  ASSERT_TRUE(a && a->has_value());
  EXPECT_EQ((*a)->member_begin, 1u);
  EXPECT_EQ((*a)->value_begin, 5u);
  EXPECT_EQ((*a)->value_end, 6u);
}

TEST(JsonFindMember, ComparesUnescapedKeys) {
  struct Case {
    std::string text;
    std::string key;
  };
  const Case hits[] = {
      {R"({"\u006dodel":"m"})", "model"},
      {R"({"mod\u0065l":"m"})", "model"},
      {R"({"\u006D\u006F\u0064\u0065\u006C":"m"})", "model"},
      {R"({"a\/b":1})", "a/b"},
      {R"({"a\\b":1})", "a\\b"},
      {R"({"a\"b":1})", "a\"b"},
      {R"({"\n":1})", "\n"},
      {R"({"\u00e9":1})", "\xc3\xa9"},
      {"{\"\xc3\xa9\":1}", "\xc3\xa9"},
      {R"({"\ud83d\ude00":1})", "\xf0\x9f\x98\x80"},
      {R"({"x\u0000y":1})", std::string("x\0y", 3)},
      {R"({"":1})", ""},
  };
  for (const auto& c : hits) {
    const auto m = find_member(c.text, c.key);
    ASSERT_TRUE(m) << c.text;
    EXPECT_TRUE(m->has_value()) << c.text;
  }
  const Case misses[] = {
      {R"({"model":1})", "mode"},   {R"({"mode":1})", "model"},       {R"({"Model":1})", "model"},
      {R"({"a\\b":1})", "a\\\\b"}, {R"({"\u006dodelx":1})", "model"}, {R"({"\u006dode":1})", "model"},
      {R"({"a":1})", ""},          {R"({"":1})", "a"},              {R"({"x\u0000y":1})", "x"},
  };
  for (const auto& c : misses) {
    const auto m = find_member(c.text, c.key);
    ASSERT_TRUE(m) << c.text;
    EXPECT_FALSE(m->has_value()) << c.text << " / " << c.key;
  }
}

TEST(JsonFindMember, OnlyTopLevelAndLastDuplicateWins) {
  const std::string t = R"({"a":{"pk":1},"b":[{"pk":2}],"c":"\"pk\":3","pk":4,"pk":5})";
  const auto m = find_member(t, "pk");
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ(span_text(t, (*m)->value_begin, (*m)->value_end), "5");
  EXPECT_EQ(span_text(t, (*m)->member_begin, (*m)->member_end), "\"pk\":5");
  const auto none = find_member(R"({"a":{"pk":1}})", "pk");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

// Strings are scanned eight bytes at a time until a byte needs attention: a special byte at every
// offset of a long string, around the word boundaries, is still seen.
TEST(JsonValidate, StringFastPathSeesEverySpecialByteAtEveryOffset) {
  struct Special {
    std::string bytes;
    bool valid;
  };
  const Special specials[] = {
      {"\\n", true},  {"\\\"", true},      {"\xc3\xa9", true}, {"\xe2\x82\xac", true}, {"\n", false},
      {"\x1f", false}, {std::string(1, '\0'), false}, {"\x80", false},  {"\xff", false},     {"\\x", false},
      {" ", true},     {"~", true},        {"\x7f", true},
  };
  for (const auto& special : specials) {
    for (std::size_t offset = 0; offset < 40; ++offset) {
      const std::string text = "{\"k\":\"" + std::string(offset, 'a') + special.bytes + std::string(37 - offset % 8, 'b') + "\"}";
      EXPECT_EQ(validate(text).has_value(), special.valid) << "offset " << offset << " bytes " << special.bytes.size();
      if (special.valid) {
        const auto m = find_member(text, "k");
        ASSERT_TRUE(m && m->has_value());
        EXPECT_EQ((*m)->value_end, text.size() - 1);
      }
    }
  }
  // A quote in the middle of a word ends the string there: what follows must be valid JSON.
  for (std::size_t offset = 0; offset < 24; ++offset) {
    const std::string text = "[\"" + std::string(offset, 'a') + "\",\"" + std::string(23 - offset, 'b') + "\"]";
    EXPECT_TRUE(validate(text)) << offset;
    const std::string broken = "[\"" + std::string(offset, 'a') + "\"x" + std::string(23 - offset, 'b') + "\"]";
    EXPECT_FALSE(validate(broken)) << offset;
  }
}

TEST(JsonObjectMembers, OnePassIndexAnswersLikeFindMember) {
  const std::string t = R"({"a":{"pk":1},"m\u006fdel":"x","pk":4, "stream" : true ,"pk":5})";
  const auto index = ObjectMembers::index(t);
  ASSERT_TRUE(index) << index.error().message;
  EXPECT_EQ(index->value("pk"), "5");  // the last duplicate wins
  EXPECT_EQ(index->value("model"), "\"x\"");  // keys compare unescaped
  EXPECT_EQ(index->value("stream"), "true");
  EXPECT_EQ(index->value("a"), R"({"pk":1})");
  EXPECT_EQ(index->value("missing"), "");
  EXPECT_FALSE(index->find("missing"));
  for (std::string_view key : {"a", "model", "pk", "stream"}) {
    const auto m = find_member(t, key);
    ASSERT_TRUE(m && m->has_value()) << key;
    const auto i = index->find(key);
    ASSERT_TRUE(i) << key;
    EXPECT_EQ(i->member_begin, (*m)->member_begin) << key;
    EXPECT_EQ(i->member_end, (*m)->member_end) << key;
    EXPECT_EQ(i->value_begin, (*m)->value_begin) << key;
    EXPECT_EQ(i->value_end, (*m)->value_end) << key;
  }
  EXPECT_EQ(member_value(t, "stream"), "true");
  EXPECT_EQ(member_value(t, "nope"), "");
  EXPECT_EQ(member_value("[1]", "a"), "");
  EXPECT_EQ(member_value("{\"a\":1", "a"), "");
}

TEST(JsonObjectMembers, RefusesWhatFindMemberRefuses) {
  for (const char* text : {"[]", "1", "", "{\"pk\":1", "{\"pk\":1}x", "{\"pk\":\"\\ud800\"}"}) {
    const auto index = ObjectMembers::index(text);
    ASSERT_FALSE(index) << text;
    EXPECT_EQ(index.error().message, find_member(text, "pk").error().message) << text;
  }
  const auto empty = ObjectMembers::index(" { } ");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->find(""));
}

TEST(JsonFindMember, RequiresAValidObject) {
  for (const char* text : {"[]", "1", "\"pk\"", "null", "[{\"pk\":1}]", "  ", ""}) {
    const auto m = find_member(text, "pk");
    ASSERT_FALSE(m) << text;
    EXPECT_EQ(m.error().code, Errc::invalid_argument);
  }
  for (const char* text : {"{\"pk\":1", "{\"pk\":1}x", "{\"pk\":01}", "{\"pk\":1,}", "{\"pk\"}", "{pk:1}",
                           "{\"pk\":[1}", "{\"pk\":\"\\ud800\"}", "{\"a\":1}{}"}) {
    EXPECT_FALSE(find_member(text, "pk")) << text;
    EXPECT_FALSE(set_member(text, "pk", "1")) << text;
    EXPECT_FALSE(remove_member(text, "pk")) << text;
  }
  EXPECT_EQ(find_member("[]", "pk").error().message, "JSON top level is not an object");
  // Invalid after the member we look for: still an error (the whole text is validated).
  EXPECT_FALSE(find_member("{\"pk\":1,\"z\":tru}", "pk"));
}

// ---- set_member / remove_member: byte-faithful edits ---------------------------------------------

// Each fixture gives the input and, written out by hand, the exact expected outputs: removing
// "pk", and setting "pk" to [1]. Everything outside the edited region must be byte-identical.
struct EditFixture {
  const char* name;
  std::string input;
  std::string removed;
  std::string set;
};

std::vector<EditFixture> edit_fixtures() {
  return {
      {"only", R"({"pk":"x"})", R"({})", R"({"pk":[1]})"},
      {"last", R"({"a":1,"pk":"x"})", R"({"a":1})", R"({"a":1,"pk":[1]})"},
      {"first", R"({"pk":"x","a":1})", R"({"a":1})", R"({"pk":[1],"a":1})"},
      {"middle", R"({"a":1,"pk":"x","b":2})", R"({"a":1,"b":2})", R"({"a":1,"pk":[1],"b":2})"},
      {"pretty middle", "{\n  \"model\": \"m\",\n  \"pk\": \"x\",\n  \"messages\": []\n}",
       "{\n  \"model\": \"m\",\n  \"messages\": []\n}", "{\n  \"model\": \"m\",\n  \"pk\": [1],\n  \"messages\": []\n}"},
      {"pretty last", "{\n  \"model\": \"m\",\n  \"pk\": \"x\"\n}", "{\n  \"model\": \"m\"\n}",
       "{\n  \"model\": \"m\",\n  \"pk\": [1]\n}"},
      {"python separators", R"({"model": "m", "stream": true, "pk": "x"})", R"({"model": "m", "stream": true})",
       R"({"model": "m", "stream": true, "pk": [1]})"},
      {"absent", R"({"a":1})", R"({"a":1})", R"({"a":1,"pk":[1]})"},
      {"absent pretty", "{\n  \"a\": 1\n}", "{\n  \"a\": 1\n}", "{\n  \"a\": 1,\"pk\":[1]\n}"},
      {"empty", "{}", "{}", R"({"pk":[1]})"},
      {"empty spaced", "{ }", "{ }", R"({ "pk":[1]})"},
      {"empty newline", "{\n}", "{\n}", "{\n\"pk\":[1]}"},
      {"document whitespace", " \n{\"a\":1}\n ", " \n{\"a\":1}\n ", " \n{\"a\":1,\"pk\":[1]}\n "},
      {"duplicates apart", R"({"pk":1,"a":2,"pk":3})", R"({"a":2})", R"({"pk":[1],"a":2,"pk":[1]})"},
      {"duplicates only", R"({"pk":1,"pk":2})", R"({})", R"({"pk":[1],"pk":[1]})"},
      {"duplicates run in middle", R"({"a":0,"pk":1, "pk":2 ,"b":3})", R"({"a":0,"b":3})",
       R"({"a":0,"pk":[1], "pk":[1] ,"b":3})"},
      {"duplicates run at end", R"({"a":0,"pk":1,"pk":2})", R"({"a":0})", R"({"a":0,"pk":[1],"pk":[1]})"},
      {"duplicates everywhere", R"({"pk":0,"a":1,"pk":2,"b":3,"pk":4})", R"({"a":1,"b":3})",
       R"({"pk":[1],"a":1,"pk":[1],"b":3,"pk":[1]})"},
      {"escaped key", R"({"\u0070k":"x","a":1})", R"({"a":1})", R"({"\u0070k":[1],"a":1})"},
      {"escaped key upper hex", R"({"a":1,"\u0070\u006B":"x"})", R"({"a":1})", R"({"a":1,"\u0070\u006B":[1]})"},
      {"nested same key untouched", R"({"a":{"pk":1},"b":[{"pk":2}],"pk":3})", R"({"a":{"pk":1},"b":[{"pk":2}]})",
       R"({"a":{"pk":1},"b":[{"pk":2}],"pk":[1]})"},
      {"key text inside a string", R"({"a":"\"pk\":1","pk":2})", R"({"a":"\"pk\":1"})", R"({"a":"\"pk\":1","pk":[1]})"},
      {"big numbers", R"({"seed":18446744073709551616,"t":1.00000000000000000001,"pk":"x","n":-0.0e-0})",
       R"({"seed":18446744073709551616,"t":1.00000000000000000001,"n":-0.0e-0})",
       R"({"seed":18446744073709551616,"t":1.00000000000000000001,"pk":[1],"n":-0.0e-0})"},
      {"unicode", "{\"msg\":\"h\xc3\xa9llo \xf0\x9f\x98\x80 \\ud83d\\ude00 \\u00e9\",\"pk\":\"x\",\"z\":\"\xe6\x97\xa5\xe6\x9c\xac\"}",
       "{\"msg\":\"h\xc3\xa9llo \xf0\x9f\x98\x80 \\ud83d\\ude00 \\u00e9\",\"z\":\"\xe6\x97\xa5\xe6\x9c\xac\"}",
       "{\"msg\":\"h\xc3\xa9llo \xf0\x9f\x98\x80 \\ud83d\\ude00 \\u00e9\",\"pk\":[1],\"z\":\"\xe6\x97\xa5\xe6\x9c\xac\"}"},
      {"escapes kept", R"({"s":"a\/b\\c\n\t\"\u001f","pk":"x"})", R"({"s":"a\/b\\c\n\t\"\u001f"})",
       R"({"s":"a\/b\\c\n\t\"\u001f","pk":[1]})"},
      {"empty containers", R"({"required":[],"properties":{},"pk":"x","tools":[{"parameters":{"type":"object","properties":{},"required":[]}}]})",
       R"({"required":[],"properties":{},"tools":[{"parameters":{"type":"object","properties":{},"required":[]}}]})",
       R"({"required":[],"properties":{},"pk":[1],"tools":[{"parameters":{"type":"object","properties":{},"required":[]}}]})"},
      {"crlf and tabs", "{\r\n\t\"pk\" : \"x\" ,\r\n\t\"a\" : [ 1 , 2 ]\r\n}", "{\r\n\t\"a\" : [ 1 , 2 ]\r\n}",
       "{\r\n\t\"pk\" : [1] ,\r\n\t\"a\" : [ 1 , 2 ]\r\n}"},
      {"spaced last", R"({"a":1 , "pk" : "x" })", R"({"a":1 })", R"({"a":1 , "pk" : [1] })"},
      {"prefix keys", R"({"pkx":1,"p":2})", R"({"pkx":1,"p":2})", R"({"pkx":1,"p":2,"pk":[1]})"},
      {"backslash key is not pk", R"({"p\\k":1})", R"({"p\\k":1})", R"({"p\\k":1,"pk":[1]})"},
      {"deep value", R"({"pk":[[[[{"a":[[]]}]]]],"z":null})", R"({"z":null})", R"({"pk":[1],"z":null})"},
      {"every scalar", R"({"t":true,"f":false,"n":null,"pk":{"k":"v"},"e":1e-7,"E":-2E+30})",
       R"({"t":true,"f":false,"n":null,"e":1e-7,"E":-2E+30})",
       R"({"t":true,"f":false,"n":null,"pk":[1],"e":1e-7,"E":-2E+30})"},
  };
}

TEST(JsonEdit, RemoveMemberChangesOnlyTheMember) {
  const auto fixtures = edit_fixtures();
  ASSERT_GE(fixtures.size(), 20u);
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.name);
    ASSERT_TRUE(validate(f.input));
    const auto out = remove_member(f.input, "pk");
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(*out, f.removed);
    EXPECT_TRUE(validate(*out));
    EXPECT_TRUE(boost_accepts(*out));
    const auto again = find_member(*out, "pk");
    ASSERT_TRUE(again);
    EXPECT_FALSE(again->has_value());
  }
}

TEST(JsonEdit, SetMemberChangesOnlyTheValue) {
  for (const auto& f : edit_fixtures()) {
    SCOPED_TRACE(f.name);
    const auto out = set_member(f.input, "pk", "[1]");
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(*out, f.set);
    EXPECT_TRUE(validate(*out));
    const auto m = find_member(*out, "pk");
    ASSERT_TRUE(m && m->has_value());
    EXPECT_EQ(span_text(*out, (*m)->value_begin, (*m)->value_end), "[1]");
  }
}

// The proxy's own sequence: add e2e_response_pk; the gateway removes it and must get back the
// client's bytes exactly.
TEST(JsonEdit, SetThenRemoveRestoresInputWithoutTheKey) {
  for (const auto& f : edit_fixtures()) {
    SCOPED_TRACE(f.name);
    const auto base = remove_member(f.input, "pk");  // inputs that had no pk are returned as is
    ASSERT_TRUE(base);
    const auto added = set_member(*base, "e2e_response_pk", "\"QUJD\"");
    ASSERT_TRUE(added);
    const auto removed = remove_member(*added, "e2e_response_pk");
    ASSERT_TRUE(removed);
    EXPECT_EQ(*removed, *base);
  }
}

// An index's edits are the one-pass edits, byte for byte, for every fixture and key (present,
// duplicated, absent; empty objects; whitespace before the brace).
TEST(JsonEdit, IndexEditsMatchTheOnePassEdits) {
  for (const auto& f : edit_fixtures()) {
    SCOPED_TRACE(f.name);
    const auto members = ObjectMembers::index(f.input);
    ASSERT_TRUE(members);
    for (const char* key : {"pk", "model", "e2e_response_pk", "a", ""}) {
      SCOPED_TRACE(key);
      const auto set = set_member(f.input, key, "\"QUJD\"");
      const auto indexed_set = members->with_member(key, "\"QUJD\"");
      ASSERT_TRUE(set && indexed_set);
      EXPECT_EQ(*indexed_set, *set);
      const auto removed = remove_member(f.input, key);
      ASSERT_TRUE(removed);
      EXPECT_EQ(members->without_member(key), *removed);
    }
    EXPECT_FALSE(members->with_member("k", "01"));  // the value is still checked
  }
}

// An index follows its text through a move, also for short strings whose bytes live inside the
// std::string object (the old views would point at the moved-from object).
TEST(JsonObjectMembers, FollowsItsTextThroughAMove) {
  for (std::string text : {std::string(R"({"a":1})"), R"({"a":1,"pad":")" + std::string(100, 'x') + "\"}"}) {
    const auto members = ObjectMembers::index(text);
    ASSERT_TRUE(members);
    const std::string moved = std::move(text);
    text.assign(moved.size(), '#');  // whatever the old object holds now, it is not the document
    const ObjectMembers followed = members->moved_to(moved);
    EXPECT_EQ(followed.value("a"), "1");
    const auto with = followed.with_member("b", "2");
    ASSERT_TRUE(with);
    EXPECT_EQ(*with, *set_member(moved, "b", "2"));
  }
}

TEST(JsonEdit, AllocatesOnlyTheOutput) {
  const std::string doc = R"({"model":"m","messages":[{"role":"user","content":"hi"}],"seed":18446744073709551616})";
  EXPECT_EQ(allocations_during([&] { EXPECT_TRUE(set_member(doc, "e2e_response_pk", "\"QUJD\"")); }), 1);
  EXPECT_EQ(allocations_during([&] { EXPECT_TRUE(set_member(doc, "seed", "1")); }), 1);
  EXPECT_EQ(allocations_during([&] { EXPECT_TRUE(remove_member(doc, "seed")); }), 1);
}

TEST(JsonEdit, SetMemberQuotesTheKeyAndChecksTheValue) {
  EXPECT_EQ(*set_member("{}", "a\"b\n", "1"), R"({"a\"b\n":1})");
  EXPECT_EQ(*set_member("{}", "k", " 1 "), R"({"k": 1 })");
  for (const char* bad : {"", "01", "{", "1 2", "'x'", "\"\\ud800\""}) {
    const auto r = set_member("{}", "k", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
}

TEST(JsonEdit, LargeBodiesStayByteIdentical) {
  // A 10 MiB request: one long string and many members, as a long conversation produces.
  std::string doc = "{\"model\":\"m\",\"messages\":[";
  for (int i = 0; i < 20000; ++i) {
    if (i != 0) doc += ',';
    doc += "{\"role\":\"user\",\"content\":\"message " + std::to_string(i) + " h\xc3\xa9llo \\n \\u00e9\"}";
  }
  doc += "],\"blob\":\"" + std::string(9 * 1024 * 1024, 'x') + "\",\"stream\":true}";
  ASSERT_TRUE(validate(doc));
  const auto added = set_member(doc, "e2e_response_pk", "\"QUJD\"");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->size(), doc.size() + std::string(",\"e2e_response_pk\":\"QUJD\"").size());
  EXPECT_EQ(added->compare(0, doc.size() - 1, doc, 0, doc.size() - 1), 0);
  EXPECT_EQ(added->substr(doc.size() - 1), ",\"e2e_response_pk\":\"QUJD\"}");
  const auto removed = remove_member(*added, "e2e_response_pk");
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed == doc);
}

// ---- quote / unquote -----------------------------------------------------------------------------

TEST(JsonQuote, EscapesWhatRfc8259Requires) {
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("abc"), "\"abc\"");
  EXPECT_EQ(quote("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(quote("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(quote(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(quote("h\xc3\xa9 \xf0\x9f\x98\x80"), "\"h\xc3\xa9 \xf0\x9f\x98\x80\"");
  // Invalid UTF-8 becomes U+FFFD (EF BF BD) byte by byte, so the literal is always valid JSON.
  EXPECT_EQ(quote("a\xff" "b"), "\"a\xef\xbf\xbd" "b\"");
  EXPECT_EQ(quote("\xed\xa0\x80"), "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
  EXPECT_EQ(quote("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
}

TEST(JsonUnquote, DecodesEscapes) {
  EXPECT_EQ(*unquote(R"("")"), "");
  EXPECT_EQ(*unquote(R"("a\"b\\c\/d\b\f\n\r\t")"), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(*unquote(R"("\u0041\u00e9\u20AC\ud83d\ude00")"), "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  EXPECT_EQ(*unquote(R"("\u0000")"), std::string("\0", 1));
  EXPECT_EQ(*unquote("\"h\xc3\xa9\""), "h\xc3\xa9");
  for (const char* bad : {"", "\"", "abc", " \"a\"", "\"a\" ", "\"a\"\"b\"", "\"\\ud800\"", "\"\xff\"", "1"}) {
    EXPECT_FALSE(unquote(bad)) << bad;
  }
}

// quote() checked against the oracle: Boost.JSON must decode the literal back to the input.
TEST(JsonQuote, RoundTripsThroughAnIndependentParser) {
  std::mt19937 rng(1234);
  const std::vector<std::string> pieces = {"a", "\"", "\\", "/", "\n", std::string("\0", 1), "\x1f", "\x7f",
                                           "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ", "u0041"};
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 12);
    for (int j = 0; j < n; ++j) s += pieces[rng() % pieces.size()];
    const std::string q = quote(s);
    boost::system::error_code ec;
    const auto v = boost::json::parse(q, ec);
    ASSERT_FALSE(ec) << q;
    ASSERT_TRUE(v.is_string());
    EXPECT_EQ(std::string(v.as_string().c_str(), v.as_string().size()), s);
    EXPECT_EQ(*unquote(q), s);
  }
}

// ---- randomised mutations ------------------------------------------------------------------------

// Mutates fixtures at random and checks that (1) nothing crashes (ASan/UBSan builds catch reads
// past the end), (2) validate agrees with Boost.JSON on acceptance, and (3) for accepted objects,
// find_member agrees with Boost.JSON on every key and the edits re-validate.
TEST(JsonFuzz, MutatedFixtures) {
  std::vector<std::string> corpus;
  for (const auto& f : edit_fixtures()) corpus.push_back(f.input);
  corpus.push_back(R"(["\ud83d\ude00",{"a":[1,2.5e-3,-0]},"\u00e9",true,false,null])");
  corpus.push_back("{\"k\":\"\xf4\x8f\xbf\xbf\xe0\xa0\x80\xc2\x80\"}");
  const std::string alphabet = "{}[],:\"\\ ut0123456789eE+-.flnrsa\n\t";
  std::mt19937 rng(20260521);
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  std::size_t accepted = 0;
  std::size_t objects = 0;
  for (int iter = 0; iter < 100000; ++iter) {
    std::string s = corpus[pick(corpus.size())];
    const int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations; ++m) {
      switch (rng() % 6) {
        case 0:
          if (!s.empty()) s[pick(s.size())] = static_cast<char>(rng() & 0xFF);
          break;
        case 1:
          s.insert(pick(s.size() + 1), 1, alphabet[pick(alphabet.size())]);
          break;
        case 2:
          if (!s.empty()) s.erase(pick(s.size()), 1);
          break;
        case 3: {  // duplicate a span elsewhere
          const std::size_t a = pick(s.size() + 1);
          const std::size_t len = pick(std::min<std::size_t>(16, s.size() - a) + 1);
          const std::string piece = s.substr(a, len);
          s.insert(pick(s.size() + 1), piece);
          break;
        }
        case 4:
          s.resize(pick(s.size() + 1));
          break;
        default: {  // a multi-byte or escape sequence, valid or not
          static const char* const seqs[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\\ud800",
                                             "\\udc00", "\\ud83d\\ude00", "\\u00", "\xc3\xa9", "\xef\xbb\xbf"};
          s.insert(pick(s.size() + 1), seqs[pick(std::size(seqs))]);
        }
      }
    }
    bool exponent_overflow = false;
    const bool ours = validate(s).has_value();
    const bool oracle = boost_accepts(s, &exponent_overflow);
    if (!exponent_overflow) {  // Boost rejects exponents it cannot represent; RFC 8259 does not
      ASSERT_EQ(ours, oracle) << "validate and Boost.JSON disagree on: " << s;
    }
    if (!ours) {
      EXPECT_FALSE(find_member(s, "pk"));
      EXPECT_FALSE(ObjectMembers::index(s));
      continue;
    }
    ++accepted;
    if (exponent_overflow) {  // no oracle for this one: the edits must still re-validate
      if (s.find('{') != std::string::npos && find_member(s, "pk")) {
        const auto set = set_member(s, "pk", "1");
        ASSERT_TRUE(set && validate(*set)) << s;
        const auto removed = remove_member(s, "pk");
        ASSERT_TRUE(removed && validate(*removed)) << s;
      }
      continue;
    }
    boost::json::parse_options opts;
    opts.max_depth = 512;
    const boost::json::value v = boost::json::parse(s, {}, opts);
    if (!v.is_object()) {
      EXPECT_FALSE(find_member(s, "pk"));
      continue;
    }
    ++objects;
    // Every key Boost saw (decoded) is found by find_member, with the same value (Boost keeps
    // the last of duplicate keys, as find_member does), and the one-pass index agrees.
    const auto index = ObjectMembers::index(s);
    ASSERT_TRUE(index) << s;
    for (const auto& kv : v.as_object()) {
      const std::string_view key(kv.key().data(), kv.key().size());
      const auto m = find_member(s, key);
      ASSERT_TRUE(m);
      ASSERT_TRUE(m->has_value()) << s;
      const auto indexed = index->find(key);
      ASSERT_TRUE(indexed) << s;
      EXPECT_EQ(indexed->member_begin, (*m)->member_begin) << s;
      EXPECT_EQ(indexed->value_end, (*m)->value_end) << s;
      const auto value_text = span_text(s, (*m)->value_begin, (*m)->value_end);
      EXPECT_EQ(boost::json::parse(value_text, {}, opts), kv.value()) << s;
    }
    const auto set = set_member(s, "pk", "{\"x\":[]}");
    ASSERT_TRUE(set);
    ASSERT_TRUE(validate(*set)) << *set;
    const auto set_v = boost::json::parse(*set, {}, opts);
    EXPECT_EQ(set_v.as_object().at("pk"), boost::json::parse("{\"x\":[]}"));
    const auto removed = remove_member(s, "pk");
    ASSERT_TRUE(removed);
    ASSERT_TRUE(validate(*removed)) << s << " -> " << *removed;
    auto expected = v.as_object();
    expected.erase("pk");
    EXPECT_EQ(boost::json::parse(*removed, {}, opts).as_object(), expected) << s;
  }
  // The mutations must leave enough valid documents for the edit checks to mean something.
  // (About 9% survive with this seed: 9069 accepted, 8823 of them objects.)
  EXPECT_GT(accepted, 5000u);
  EXPECT_GT(objects, 5000u);
}

}  // namespace
}  // namespace e2ee::json_text

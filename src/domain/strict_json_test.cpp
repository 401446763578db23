// Tests for parse_strict_json: what it accepts, what it rejects (S23-S26), and its error details.
#include "domain/strict_json.hpp"

#include <gtest/gtest.h>

#include <string>

#include "domain/validation.hpp"

namespace tenantd {
namespace {

struct json_case {
  std::string name;
  std::string text;
};

std::string nested(std::size_t depth, std::string_view open, std::string_view inner, std::string_view close) {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += open;
  out += inner;
  for (std::size_t i = 0; i < depth; ++i) out += close;
  return out;
}

class accepted_json : public testing::TestWithParam<json_case> {};

TEST_P(accepted_json, parses) {
  const auto parsed = parse_strict_json(GetParam().text);
  EXPECT_TRUE(parsed.has_value()) << GetParam().name << ": " << (parsed ? "" : parsed.err().detail);
}

INSTANTIATE_TEST_SUITE_P(
    strict_json, accepted_json,
    testing::Values(json_case{"empty_object", "{}"}, json_case{"empty_array", "[]"},
                    json_case{"scalar_string", R"("x")"}, json_case{"scalar_number", "-12.5e3"},
                    json_case{"literals", "[true,false,null]"}, json_case{"surrounding_space", " \t\r\n{\"a\":1}\n "},
                    json_case{"same_key_in_nested_objects", R"({"a":{"a":1}})"},
                    json_case{"same_key_in_sibling_objects", R"([{"a":1},{"a":2}])"},
                    json_case{"keys_differing_in_case", R"({"email":1,"Email":2})"},
                    json_case{"escaped_nul", R"({"email":"victim@x.com\u0000evil"})"},
                    json_case{"surrogate_pair", R"("\ud83d\ude00")"}, json_case{"raw_utf8", "\"\xc3\xa9\xe2\x82\xac\""},
                    json_case{"depth_32", nested(32, "[", "", "]")}, json_case{"big_integer", "99999999999999999999"}),
    [](const auto& test_info) { return test_info.param.name; });

class rejected_json : public testing::TestWithParam<json_case> {};

TEST_P(rejected_json, is_invalid_json) {
  const auto parsed = parse_strict_json(GetParam().text);
  ASSERT_FALSE(parsed.has_value()) << GetParam().name;
  EXPECT_EQ(parsed.err().code, errc::invalid_json);
  EXPECT_FALSE(parsed.err().detail.empty());
  EXPECT_EQ(parsed.err().detail.find("boost"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    strict_json, rejected_json,
    testing::Values(
        json_case{"empty", ""}, json_case{"only_space", "   "}, json_case{"truncated_member", R"({"email":)"},
        json_case{"truncated_string", R"({"email":"a)"}, json_case{"trailing_garbage", R"({"a":1} x)"},
        json_case{"second_value", R"({"a":1}{"b":2})"}, json_case{"extra_brace", R"({"a":1}})"},
        json_case{"utf8_bom", "\xef\xbb\xbf{}"}, json_case{"invalid_byte_in_string", "\"\xff\""},
        json_case{"invalid_byte_outside_string", "{\"a\":1}\xff"}, json_case{"overlong_slash", "\"\xc0\xaf\""},
        json_case{"truncated_sequence", "\"\xe2\x82\""}, json_case{"encoded_surrogate", "\"\xed\xa0\x80\""},
        json_case{"above_u10ffff", "\"\xf4\x90\x80\x80\""}, json_case{"lone_leading_surrogate", R"("\ud800")"},
        json_case{"lone_trailing_surrogate", R"("\udc00")"}, json_case{"leading_then_bmp", R"("\ud800\u0041")"},
        json_case{"bad_hex", R"("\u12g4")"}, json_case{"raw_newline_in_string", "\"a\nb\""},
        json_case{"raw_nul", std::string("\"a\0b\"", 5)}, json_case{"duplicate_keys", R"({"email":"a","email":"b"})"},
        json_case{"duplicate_nested", R"({"a":{"b":1,"b":2}})"}, json_case{"duplicate_in_array", R"([{"a":1,"a":1}])"},
        json_case{"duplicate_after_escape", R"({"a":1,"\u0061":2})"}, json_case{"trailing_comma", R"({"a":1,})"},
        json_case{"comment", "// c\n{}"}, json_case{"single_quotes", "{'a':1}"}, json_case{"bare_key", "{a:1}"},
        json_case{"nan", "NaN"}, json_case{"leading_zero", "01"}, json_case{"depth_33", nested(33, "[", "", "]")},
        json_case{"deep_arrays_100000", std::string(100000, '[')},
        json_case{"deep_closed_arrays_100000", nested(100000, "[", "", "]")},
        json_case{"deep_objects_100000", nested(100000, R"({"a":)", "1", "}")}),
    [](const auto& test_info) { return test_info.param.name; });

TEST(strict_json, duplicate_keys_have_their_own_detail) {
  const auto parsed = parse_strict_json(R"({"email":"a","email":"b"})");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.err().detail, duplicate_key_detail);
  const auto other = parse_strict_json(R"({"email":)");
  ASSERT_FALSE(other.has_value());
  EXPECT_NE(other.err().detail, duplicate_key_detail);
}

TEST(strict_json, trailing_data_is_named) {
  const auto parsed = parse_strict_json(R"({"a":1} x)");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.err().detail, "unexpected data after the JSON value");
}

TEST(strict_json, out_of_range_numbers_become_doubles) {
  const auto parsed = parse_strict_json(R"({"n":1e400})");
  ASSERT_TRUE(parsed.has_value());
  EXPECT_TRUE(parsed->as_object().at("n").is_double());
}

TEST(strict_json, too_deep_is_named) {
  const auto parsed = parse_strict_json(std::string(100000, '['));
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.err().detail, "JSON nested too deeply");
}

TEST(strict_json, honours_the_depth_argument) {
  EXPECT_FALSE(parse_strict_json("[[1]]", 1).has_value());
  EXPECT_TRUE(parse_strict_json("[[1]]", 2).has_value());
  EXPECT_FALSE(parse_strict_json(nested(257, "[", "", "]"), 100000).has_value());
}

TEST(strict_json, builds_the_value) {
  const auto parsed = parse_strict_json(R"({"a":[1,"x",true,null,{"b":2.5}],"c":"\u00e9"})");
  ASSERT_TRUE(parsed.has_value());
  const auto& o = parsed->as_object();
  ASSERT_EQ(o.size(), 2U);
  const auto& a = o.at("a").as_array();
  ASSERT_EQ(a.size(), 5U);
  EXPECT_EQ(a[0].as_int64(), 1);
  EXPECT_EQ(a[1].as_string(), "x");
  EXPECT_TRUE(a[2].as_bool());
  EXPECT_TRUE(a[3].is_null());
  EXPECT_EQ(a[4].as_object().at("b").as_double(), 2.5);
  EXPECT_EQ(o.at("c").as_string(), "\xc3\xa9");
}

// S25: the escape is valid JSON, so field validation must catch the NUL it decodes to.
TEST(strict_json, escaped_nul_decodes_to_a_string_that_is_not_clean) {
  const auto parsed = parse_strict_json(R"({"email":"victim@x.com\u0000evil"})");
  ASSERT_TRUE(parsed.has_value());
  const auto email = std::string_view(parsed->as_object().at("email").as_string());
  EXPECT_EQ(email.size(), 17U);
  EXPECT_FALSE(validation::is_clean_utf8(email));
}

TEST(strict_json, keeps_long_keys_split_across_parts) {
  const std::string key(5000, 'k');
  EXPECT_TRUE(parse_strict_json("{\"" + key + "\":1,\"" + key + "x\":2}").has_value());
  EXPECT_FALSE(parse_strict_json("{\"" + key + "\":1,\"" + key + "\":2}").has_value());
}

}  // namespace
}  // namespace tenantd

// Tests for body_reader (typed, validated request fields with one message per bad field); the
// record -> JSON shapes are in dto_json_test.cpp.
#include "api/dto.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tenantd::api {
namespace {

namespace json = boost::json;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// The fields of a failure, in order.
std::vector<std::string> fields_of(const body_reader& r) {
  std::vector<std::string> out;
  for (const auto& f : r.failure().fields) out.push_back(f.field);
  return out;
}

// The single message for `field`, or "" when there is none.
std::string message_for(const body_reader& r, std::string_view field) {
  for (const auto& f : r.failure().fields)
    if (f.field == field) return f.message;
  return "";
}

// A body with one member; keeps the value alive for the reader.
struct one_field {
  explicit one_field(json::value v) : body(json::object{{"f", std::move(v)}}) {}
  json::value body;
};

const std::string nbsp = "\xc2\xa0";             // U+00A0
const std::string ideographic = "\xe3\x80\x80";  // U+3000
const std::string em_space = "\xe2\x80\x83";     // U+2003
const std::string bom = "\xef\xbb\xbf";          // U+FEFF
const std::string e_acute = "\xc3\xa9";          // é, 2 bytes
const std::string emoji = "\xf0\x9f\x98\x80";    // 😀, 4 bytes

// ---- string ---------------------------------------------------------------------------------

TEST(body_reader, required_string_present) {
  const json::value body = json::parse(R"({"tenant_id":"acme_corp"})");
  body_reader r(body);
  EXPECT_EQ(r.string("tenant_id", true), "acme_corp");
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.failure().fields.empty());
}

TEST(body_reader, required_string_missing) {
  const json::value body = json::parse(R"({"other":"x"})");
  body_reader r(body);
  EXPECT_EQ(r.string("tenant_id", true), std::nullopt);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(fields_of(r), std::vector<std::string>{"tenant_id"});
  EXPECT_EQ(message_for(r, "tenant_id"), "is required");
}

TEST(body_reader, optional_string_missing_is_not_an_error) {
  const json::value body = json::object{};
  body_reader r(body);
  EXPECT_EQ(r.string("tenant_id", false), std::nullopt);
  EXPECT_TRUE(r.ok());
}

TEST(body_reader, strings_are_not_trimmed) {
  const json::value body = json::object{{"token", "  abc  "}, {"empty", ""}};
  body_reader r(body);
  EXPECT_EQ(r.string("token", true), "  abc  ");
  EXPECT_EQ(r.string("empty", true), "");
  EXPECT_TRUE(r.ok());
}

TEST(body_reader, wrong_types_are_errors_even_when_optional) {
  const std::vector<json::value> wrong{json::value(42),
                                       json::value(4.5),
                                       json::value(nullptr),
                                       json::value(true),
                                       json::value(json::array{"a"}),
                                       json::value(json::object{{"a", "b"}})};
  for (const bool required : {true, false}) {
    for (const auto& v : wrong) {
      SCOPED_TRACE(json::serialize(v) + (required ? " required" : " optional"));
      one_field input(v);
      body_reader r(input.body);
      EXPECT_EQ(r.string("f", required), std::nullopt);
      EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
      EXPECT_EQ(message_for(r, "f"), "must be a string");
    }
  }
}

TEST(body_reader, nul_and_invalid_utf8_are_rejected) {
  for (const std::string& bad : {std::string("a\0b", 3), std::string("\0", 1), std::string("\xff"), std::string("\xc3"),
                                 std::string("\xed\xa0\x80"), std::string("\xc0\xaf")}) {
    SCOPED_TRACE(testing::PrintToString(bad));
    one_field input{json::string(bad)};
    body_reader r(input.body);
    EXPECT_EQ(r.string("f", true), std::nullopt);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
    EXPECT_NE(message_for(r, "f").find("UTF-8"), std::string::npos) << message_for(r, "f");
  }
}

TEST(body_reader, non_object_body_has_no_fields) {
  for (const auto& body : {json::value(json::array{}), json::value(nullptr), json::value("x")}) {
    body_reader r(body);
    EXPECT_FALSE(r.has("email"));
    EXPECT_EQ(r.string("email", true), std::nullopt);
    EXPECT_EQ(r.string("tenant_id", false), std::nullopt);
    EXPECT_EQ(r.object("owner"), nullptr);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"email"});
  }
}

TEST(body_reader, has) {
  const json::value body = json::object{{"a", nullptr}, {"b", 1}};
  const body_reader r(body);
  EXPECT_TRUE(r.has("a"));
  EXPECT_TRUE(r.has("b"));
  EXPECT_FALSE(r.has("c"));
  EXPECT_FALSE(r.has("A"));
}

// ---- name -----------------------------------------------------------------------------------

TEST(body_reader, name_is_trimmed_including_unicode_spaces) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"  Ada  ", "Ada"},           {"\tAda\n", "Ada"},
      {nbsp + "Ada" + nbsp, "Ada"}, {ideographic + em_space + "Ada Lovelace" + ideographic, "Ada Lovelace"},
      {bom + "Ada", "Ada"},         {" " + e_acute + "lodie ", e_acute + "lodie"},
  };
  for (const auto& [input, expected] : cases) {
    SCOPED_TRACE(testing::PrintToString(input));
    one_field in{json::string(input)};
    body_reader r(in.body);
    EXPECT_EQ(r.name("f", true, 1, 100), expected);
    EXPECT_TRUE(r.ok());
  }
}

TEST(body_reader, blank_name_is_too_short) {
  for (const std::string& blank : {std::string(), std::string("   "), nbsp + ideographic + "\t"}) {
    SCOPED_TRACE(testing::PrintToString(blank));
    one_field in{json::string(blank)};
    body_reader r(in.body);
    EXPECT_EQ(r.name("f", true, 1, 100), std::nullopt);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
    EXPECT_EQ(message_for(r, "f"), "must be 1-100 characters");
  }
}

TEST(body_reader, name_length_counts_characters_not_bytes) {
  const struct {
    std::string value;
    bool ok;
  } cases[] = {
      {repeat("a", 100), true},
      {repeat("a", 101), false},
      {repeat(e_acute, 100), true},  // 200 bytes, 100 characters
      {repeat(e_acute, 101), false},
      {repeat(emoji, 100), true},  // 400 bytes
      {repeat(emoji, 101), false},
      {"  " + repeat("a", 100) + "  ", true},  // the limit applies after trimming
      {nbsp + repeat(e_acute, 100) + nbsp, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.value.size()) + " bytes");
    one_field in{json::string(c.value)};
    body_reader r(in.body);
    const auto got = r.name("f", true, 1, 100);
    EXPECT_EQ(got.has_value(), c.ok);
    EXPECT_EQ(r.ok(), c.ok);
    if (!c.ok) {
      EXPECT_EQ(message_for(r, "f"), "must be 1-100 characters");
    }
  }
}

TEST(body_reader, name_min_length) {
  one_field in{json::string("ab")};
  body_reader r(in.body);
  EXPECT_EQ(r.name("f", true, 3, 10), std::nullopt);
  EXPECT_EQ(message_for(r, "f"), "must be 3-10 characters");
}

TEST(body_reader, name_with_control_characters_is_rejected) {
  for (const std::string& bad : {std::string("Ada\x01Lovelace"), std::string("Ada\nLovelace"), std::string("Ada\x7f"),
                                 std::string("Ada\xc2\x85x")}) {
    SCOPED_TRACE(testing::PrintToString(bad));
    one_field in{json::string(bad)};
    body_reader r(in.body);
    EXPECT_EQ(r.name("f", true, 1, 100), std::nullopt);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
  }
}

TEST(body_reader, name_wrong_type_and_missing) {
  const json::value body = json::object{{"first_name", 7}};
  body_reader r(body);
  EXPECT_EQ(r.name("first_name", true, 1, 100), std::nullopt);
  EXPECT_EQ(r.name("last_name", true, 1, 100), std::nullopt);
  EXPECT_EQ(r.name("nickname", false, 1, 100), std::nullopt);
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"first_name", "last_name"}));
  EXPECT_EQ(message_for(r, "first_name"), "must be a string");
  EXPECT_EQ(message_for(r, "last_name"), "is required");
}

// ---- email ----------------------------------------------------------------------------------

TEST(body_reader, email_is_trimmed_and_lower_cased) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"ada@example.com", "ada@example.com"},
      {"  Ada.Lovelace@Example.COM  ", "ada.lovelace@example.com"},
      {nbsp + "ADA@EXAMPLE.COM" + ideographic, "ada@example.com"},
      {"\tada+tag@sub.example.org\r\n", "ada+tag@sub.example.org"},
  };
  for (const auto& [input, expected] : cases) {
    SCOPED_TRACE(testing::PrintToString(input));
    one_field in{json::string(input)};
    body_reader r(in.body);
    EXPECT_EQ(r.email("f", true), expected);
    EXPECT_TRUE(r.ok());
  }
}

TEST(body_reader, invalid_emails) {
  for (const std::string& bad : std::vector<std::string>{
           "",
           "   ",
           "ada",
           "ada@",
           "@example.com",
           "ada@example",
           "ada@@example.com",
           "a@b@example.com",
           "ada lovelace@example.com",
           "ada@exa mple.com",
           ".ada@example.com",
           "ada.@example.com",
           "ada..l@example.com",
           "ada@-example.com",
           "ada@example..com",
           "ada@[127.0.0.1]",
           "\"ada\"@example.com",
           "ad,a@example.com",
           "ada@ex_ample.com",
           e_acute + "@example.com",
           repeat("a", 65) + "@example.com",
           "a@" + repeat("b", 63) + "." + repeat("c", 63) + "." + repeat("d", 63) + "." + repeat("e", 58) + ".com"}) {
    SCOPED_TRACE(testing::PrintToString(bad));
    one_field in{json::string(bad)};
    body_reader r(in.body);
    EXPECT_EQ(r.email("f", true), std::nullopt);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
  }
}

TEST(body_reader, email_length_limit_is_254) {
  // 64-character local part + '@' + a 189-character domain = 254 characters.
  const std::string domain = repeat("b", 63) + "." + repeat("c", 63) + "." + repeat("d", 57) + ".com";
  const std::string at_limit = repeat("a", 64) + "@" + domain;
  ASSERT_EQ(at_limit.size(), 254U);
  {
    one_field in{json::string(at_limit)};
    body_reader r(in.body);
    EXPECT_EQ(r.email("f", true), at_limit);
  }
  {
    const std::string over = repeat("a", 64) + "@b" + domain;
    ASSERT_EQ(over.size(), 255U);
    one_field in{json::string(over)};
    body_reader r(in.body);
    EXPECT_EQ(r.email("f", true), std::nullopt);
    EXPECT_EQ(message_for(r, "f"), "must be at most 254 characters");
  }
}

TEST(body_reader, email_wrong_type_and_missing) {
  const json::value body = json::object{{"email", json::array{"ada@example.com"}}};
  body_reader r(body);
  EXPECT_EQ(r.email("email", true), std::nullopt);
  EXPECT_EQ(message_for(r, "email"), "must be a string");
  const json::value empty = json::object{};
  body_reader missing(empty);
  EXPECT_EQ(missing.email("email", true), std::nullopt);
  EXPECT_EQ(message_for(missing, "email"), "is required");
  body_reader optional(empty);
  EXPECT_EQ(optional.email("email", false), std::nullopt);
  EXPECT_TRUE(optional.ok());
}

// ---- password -------------------------------------------------------------------------------

TEST(body_reader, password_is_not_trimmed) {
  for (const std::string& pw :
       std::vector<std::string>{"  secret pass  ", "        ", "\tpassword\t", nbsp + "password" + nbsp}) {
    SCOPED_TRACE(testing::PrintToString(pw));
    one_field in{json::string(pw)};
    body_reader r(in.body);
    EXPECT_EQ(r.password("f", true), pw);
    EXPECT_TRUE(r.ok());
  }
}

TEST(body_reader, password_length_counts_characters_not_bytes) {
  const struct {
    std::string value;
    bool ok;
  } cases[] = {
      {repeat("a", 7), false},
      {repeat("a", 8), true},
      {repeat("a", 256), true},
      {repeat("a", 257), false},
      {repeat(e_acute, 7), false},  // 14 bytes, 7 characters
      {repeat(e_acute, 8), true},
      {repeat(emoji, 7), false},  // 28 bytes
      {repeat(emoji, 8), true},
      {repeat(e_acute, 256), true},  // 512 bytes
      {repeat(e_acute, 257), false},
      {repeat(emoji, 256), true},  // 1024 bytes
      {"", false},
      {"   a   ", false},  // 7 characters; spaces count but are not enough
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.value.size()) + " bytes");
    one_field in{json::string(c.value)};
    body_reader r(in.body);
    const auto got = r.password("f", true);
    EXPECT_EQ(got.has_value(), c.ok);
    if (c.ok) {
      EXPECT_EQ(*got, c.value);
    } else {
      EXPECT_EQ(message_for(r, "f"), "must be 8-256 characters");
    }
  }
}

TEST(body_reader, password_dirty_or_wrong_type) {
  for (const auto& v : {json::value(json::string(std::string("password\0x", 10))),
                        json::value(json::string("passw\xfford")), json::value(12345678), json::value(nullptr)}) {
    SCOPED_TRACE(json::serialize(v));
    one_field in(v);
    body_reader r(in.body);
    EXPECT_EQ(r.password("f", true), std::nullopt);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"f"});
  }
}

// ---- object and as_bool ---------------------------------------------------------------------

TEST(body_reader, nested_object) {
  const json::value body = json::parse(
      R"({"id":"acme_corp","owner":{"email":" Owner@Acme.COM ","password":"correct horse","first_name":" Wile ","last_name":"Coyote"}})");
  body_reader r(body);
  const auto* owner = r.object("owner");
  ASSERT_NE(owner, nullptr);
  EXPECT_TRUE(r.ok());
  body_reader nested(*owner);  // as POST /tenants reads "owner"
  EXPECT_EQ(nested.email("email", true), "owner@acme.com");
  EXPECT_EQ(nested.password("password", true), "correct horse");
  EXPECT_EQ(nested.name("first_name", true, 1, 100), "Wile");
  EXPECT_EQ(nested.name("last_name", true, 1, 100), "Coyote");
  EXPECT_TRUE(nested.ok());
}

TEST(body_reader, nested_object_absent_or_wrong_type) {
  const json::value absent = json::object{};
  body_reader a(absent);
  EXPECT_EQ(a.object("owner"), nullptr);
  EXPECT_TRUE(a.ok());

  for (const auto& v : {json::value("owner"), json::value(nullptr), json::value(json::array{}), json::value(1)}) {
    SCOPED_TRACE(json::serialize(v));
    const json::value body = json::object{{"owner", v}};
    body_reader r(body);
    EXPECT_EQ(r.object("owner"), nullptr);
    EXPECT_EQ(fields_of(r), std::vector<std::string>{"owner"});
    EXPECT_EQ(message_for(r, "owner"), "must be an object");
  }
}

TEST(body_reader, as_bool) {
  const json::value body = json::object{{"yes", true}, {"no", false}, {"text", "true"}, {"one", 1}};
  body_reader r(body);
  EXPECT_TRUE(r.as_bool("yes", false));
  EXPECT_FALSE(r.as_bool("no", true));
  EXPECT_TRUE(r.as_bool("missing", true));
  EXPECT_FALSE(r.as_bool("missing", false));
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.as_bool("text", false));
  EXPECT_FALSE(r.as_bool("one", false));
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"text", "one"}));
  EXPECT_EQ(message_for(r, "text"), "must be true or false");
}

// ---- failure --------------------------------------------------------------------------------

TEST(body_reader, failure_lists_each_bad_field_once_in_order) {
  const json::value body =
      json::parse(R"({"email":"not-an-email","password":"short","first_name":"  ","last_name":42,"tenant_id":"acme"})");
  body_reader r(body);
  EXPECT_EQ(r.email("email", true), std::nullopt);
  EXPECT_EQ(r.password("password", true), std::nullopt);
  EXPECT_EQ(r.name("first_name", true, 1, 100), std::nullopt);
  EXPECT_EQ(r.name("last_name", true, 1, 100), std::nullopt);
  EXPECT_EQ(r.string("tenant_id", false), "acme");
  EXPECT_EQ(r.string("invitation", true), std::nullopt);
  EXPECT_FALSE(r.ok());

  const auto e = r.failure();
  EXPECT_EQ(e.code, errc::invalid_input);
  EXPECT_FALSE(e.detail.empty());
  EXPECT_EQ(fields_of(r), (std::vector<std::string>{"email", "password", "first_name", "last_name", "invitation"}));
  for (const auto& f : e.fields) EXPECT_FALSE(f.message.empty()) << f.field;
}

TEST(body_reader, a_field_reported_twice_is_listed_once) {
  const json::value body = json::object{{"email", 5}};
  body_reader r(body);
  EXPECT_EQ(r.string("email", true), std::nullopt);
  EXPECT_EQ(r.email("email", true), std::nullopt);  // the same field read again
  r.add_error("email", "is already used");
  r.add_error("role", "must be one of owner, admin, member, viewer");
  r.add_error("role", "must be one of owner, admin, member, viewer");
  const auto e = r.failure();
  ASSERT_EQ(fields_of(r), (std::vector<std::string>{"email", "role"}));
  EXPECT_EQ(e.fields[0].message, "must be a string");  // the first problem found is the one reported
}

TEST(body_reader, add_error_makes_the_body_invalid) {
  const json::value body = json::object{{"registration", "closed"}};
  body_reader r(body);
  EXPECT_EQ(r.string("registration", false), "closed");
  EXPECT_TRUE(r.ok());
  r.add_error("registration", "must be \"invite\" or \"open\"");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(message_for(r, "registration"), "must be \"invite\" or \"open\"");
}

}  // namespace
}  // namespace tenantd::api

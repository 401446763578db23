// Table-driven tests for the input rules: UTF-8, trimming, tenant ids, emails, passwords,
// names and UUIDs.
#include "domain/validation.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace tenantd::validation {
namespace {

struct text_case {
  std::string input;
  bool valid;
};

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(validation, is_clean_utf8) {
  const std::vector<text_case> cases{
      {"", true},
      {"plain ascii", true},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true},
      {"\xef\xbf\xbf", true},
      {"\xf4\x8f\xbf\xbf", true},
      {std::string("a\0b", 3), false},
      {std::string("\0", 1), false},
      {"\xff", false},
      {"\x80", false},
      {"\xc3", false},
      {"\xc3(", false},
      {"\xc0\xaf", false},
      {"\xc1\xbf", false},
      {"\xe0\x80\xaf", false},
      {"\xf0\x80\x80\xaf", false},
      {"\xed\xa0\x80", false},
      {"\xed\xbf\xbf", false},
      {"\xf4\x90\x80\x80", false},
      {"\xf5\x80\x80\x80", false},
      {"\xe2\x82", false},
  };
  for (const auto& c : cases) EXPECT_EQ(is_clean_utf8(c.input), c.valid) << testing::PrintToString(c.input);
}

TEST(validation, code_points) {
  EXPECT_EQ(code_points(""), 0U);
  EXPECT_EQ(code_points("abc"), 3U);
  EXPECT_EQ(code_points("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 3U);
}

TEST(validation, trim) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"", ""},
      {"abc", "abc"},
      {"  a b  ", "a b"},
      {"\t\r\n\v\f a \n", "a"},
      {"\xc2\xa0nbsp\xc2\xa0", "nbsp"},
      {"\xe2\x80\x80\xe2\x80\x8a en \xe3\x80\x80", "en"},
      {"\xef\xbb\xbf bom", "bom"},
      {"\xe2\x80\xa8 x \xe2\x80\xa9\xe2\x80\xaf\xe2\x81\x9f\xe1\x9a\x80\xc2\x85", "x"},
      {"   ", ""},
      {"\xc2\xa0\xe3\x80\x80", ""},
      {"\xc3\xa9", "\xc3\xa9"},
      {" \xff ", "\xff"},
      {"\xa0", "\xa0"},
      {"\xe2\x80\x8b", "\xe2\x80\x8b"},
      {"a\xc2\xa0"
       "b",
       "a\xc2\xa0"
       "b"},
  };
  for (const auto& [input, expected] : cases) EXPECT_EQ(trim(input), expected) << testing::PrintToString(input);
}

TEST(validation, check_tenant_id) {
  const std::vector<text_case> cases{
      {"acme", true},
      {"acme_corp", true},
      {"a12", true},
      {"a_b", true},
      {"abc" + std::string(37, 'x'), true},
      {"template1", true},
      {"tenant", true},
      {"abc" + std::string(38, 'x'), false},
      {"ab", false},
      {"", false},
      {"Acme", false},
      {"1abc", false},
      {"_abc", false},
      {"acme-corp", false},
      {"acme corp", false},
      {"acme.corp", false},
      {"acm\xc3\xa9", false},
      {"\xd0\xb0"
       "cme",
       false},
      {std::string("acme\0x", 6), false},
      {"a\"; DROP DATABASE master;--", false},
      {"x\" TEMPLATE \"t_a", false},
      {"pg_x", false},
      {"pg_catalog", false},
      {"template", false},
      {"master", false},
      {"postgres", false},
      {"admin", false},
      {"default", false},
      {"public", false},
      {"pgx", true},
  };
  for (const auto& c : cases) EXPECT_EQ(!check_tenant_id(c.input).has_value(), c.valid) << c.input;
}

TEST(validation, check_server_name) {
  for (const auto* ok : {"main", "b", "db-2", "eu_west_1", "a234567890123456789012345678901234567890"})
    EXPECT_FALSE(check_server_name(ok)) << ok;
  for (const auto* bad : {"", "2db", "-db", "DB", "db.2", "db 2", "a2345678901234567890123456789012345678901"})
    EXPECT_TRUE(check_server_name(bad)) << bad;
}

TEST(validation, check_email) {
  const std::string local64(64, 'l');
  const std::string domain_label(63, 'd');
  const std::vector<text_case> cases{
      {"alice@example.com", true},
      {"a@b.co", true},
      {"first.last+tag@mail.example.co.uk", true},
      {"o'brien@x-y.example", true},
      {"!#$%&'*+-/=?^_`{|}~@example.com", true},
      {"user@123.example", true},
      {"user@xn--bcher-kva.example", true},
      {local64 + "@example.com", true},
      {"a@" + domain_label + ".com", true},
      {local64 + "@" + repeat(domain_label + ".", 2) + std::string(59, 'e') + ".c", true},
      {local64 + "@" + repeat(domain_label + ".", 2) + std::string(60, 'e') + ".c", false},
      {std::string(65, 'l') + "@example.com", false},
      {"a@" + std::string(64, 'd') + ".com", false},
      {"", false},
      {"alice", false},
      {"@example.com", false},
      {"alice@", false},
      {"alice@localhost", false},
      {"alice@@example.com", false},
      {"alice@bob@example.com", false},
      {"alice@example..com", false},
      {"alice@.example.com", false},
      {"alice@example.com.", false},
      {"alice@-example.com", false},
      {"alice@example-.com", false},
      {"alice@exa_mple.com", false},
      {"alice@EXAMPLE.com", false},
      {"alice@[127.0.0.1]", false},
      {".alice@example.com", false},
      {"alice.@example.com", false},
      {"al..ice@example.com", false},
      {"al ice@example.com", false},
      {"\"alice\"@example.com", false},
      {"al,ice@example.com", false},
      {"<alice>@example.com", false},
      {"al(ice)@example.com", false},
      {"al\\ice@example.com", false},
      {"al\tice@example.com", false},
      {"al\x7f"
       "ice@example.com",
       false},
      {std::string("victim@x.com\0evil", 17), false},
      {"j\xc3\xb6rg@example.com", false},
      {"alice@ex\xc3\xa4mple.com", false},
      {"alice@example.com ", false},
  };
  for (const auto& c : cases) EXPECT_EQ(!check_email(c.input).has_value(), c.valid) << testing::PrintToString(c.input);
}

TEST(validation, normalize_email) {
  EXPECT_EQ(normalize_email("  Alice@Example.COM\t"), "alice@example.com");
  EXPECT_EQ(normalize_email("\xc2\xa0"
                            "Bob@X.io\xe3\x80\x80"),
            "bob@x.io");
  EXPECT_EQ(normalize_email("\xc3\x84"
                            "a@x.io"),
            "\xc3\x84"
            "a@x.io");
  EXPECT_FALSE(check_email(normalize_email(" Alice@Example.com ")).has_value());
}

TEST(validation, check_password) {
  const std::vector<text_case> cases{
      {"82hq7fze", true},
      {"1234567", false},
      {"12345678", false},   // on the breached-password list
      {"PassWord1", false},  // the list is matched case-insensitively
      {"", false},
      {std::string(256, 'p'), true},
      {std::string(257, 'p'), false},
      {"  spaced  ", true},
      {"       ", false},
      {repeat("\xf0\x9f\x98\x80", 8), true},
      {repeat("\xf0\x9f\x98\x80", 7), false},
      {repeat("\xc3\xa9", 256), true},
      {repeat("\xc3\xa9", 257), false},
      {std::string("pass\0word", 9), false},
      {"password\xff", false},
      {"passw\xed\xa0\x80rd", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(!check_password(c.input).has_value(), c.valid) << testing::PrintToString(c.input);
}

TEST(validation, check_name) {
  const std::vector<text_case> cases{
      {"Ada", true},
      {"A", true},
      {"Zo\xc3\xab", true},
      {"\xe5\xb1\xb1\xe7\x94\xb0", true},
      {"Jean-Luc Picard", true},
      {std::string(100, 'n'), true},
      {repeat("\xc3\xa9", 100), true},
      {std::string(101, 'n'), false},
      {repeat("\xc3\xa9", 101), false},
      {"", false},
      {"   ", false},
      {"\xc2\xa0", false},
      {"a\tb", false},
      {"a\nb", false},
      {"a\x7f"
       "b",
       false},
      {"a\xc2\x85"
       "b",
       false},
      {"a\xc2\x9f"
       "b",
       false},
      {std::string("a\0b", 3), false},
      {"a\xff", false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(!check_name(c.input, 1, 100).has_value(), c.valid) << testing::PrintToString(c.input);
}

TEST(validation, check_name_limits_are_the_arguments) {
  EXPECT_TRUE(check_name("ab", 3, 5).has_value());
  EXPECT_FALSE(check_name("abc", 3, 5).has_value());
  EXPECT_FALSE(check_name("abcde", 3, 5).has_value());
  EXPECT_TRUE(check_name("abcdef", 3, 5).has_value());
  EXPECT_EQ(*check_name("abcdef", 3, 5), "must be 3-5 characters");
}

TEST(validation, is_uuid) {
  const std::vector<text_case> cases{
      {"123e4567-e89b-42d3-a456-426614174000", true},
      {"00000000-0000-0000-0000-000000000000", true},
      {"123E4567-E89B-42D3-A456-426614174000", true},
      {"123e4567e89b42d3a456426614174000", false},
      {"123e4567-e89b-42d3-a456-42661417400", false},
      {"123e4567-e89b-42d3-a456-4266141740000", false},
      {"123e4567-e89b-42d3-a456_426614174000", false},
      {"g23e4567-e89b-42d3-a456-426614174000", false},
      {"{123e4567-e89b-42d3-a456-426614174000}", false},
      {"123e4567-e89b-42d3-a456-42661417400 ", false},
      {"", false},
      {"1", false},
      {"-1", false},
      {"99999999999999999999", false},
      {std::string("123e4567-e89b-42d3-a456-42661417400\0", 36), false},
  };
  for (const auto& c : cases) EXPECT_EQ(is_uuid(c.input), c.valid) << testing::PrintToString(c.input);
}

TEST(validation, new_uuid_is_a_random_lower_case_v4) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = new_uuid();
    ASSERT_TRUE(is_uuid(id)) << id;
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos) << id;
    for (const char c : id) EXPECT_FALSE(c >= 'A' && c <= 'Z') << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200U);
}

}  // namespace
}  // namespace tenantd::validation

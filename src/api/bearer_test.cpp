// The bearer-token extractor shared by member and admin authentication.
#include "api/bearer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace tenantd::api {
namespace {

request with_authorization(std::vector<std::string> values) {
  request req;
  req.method = "GET";
  req.target = req.path = "/api/me";
  for (auto& v : values) req.headers.emplace_back("authorization", std::move(v));
  return req;
}

std::optional<std::string> token_of(std::vector<std::string> values) {
  const auto req = with_authorization(std::move(values));
  const auto token = bearer_token(req);
  if (!token) return std::nullopt;
  return std::string(*token);
}

TEST(bearer_token, scheme_is_case_insensitive) {
  for (const std::string scheme : {"Bearer", "bearer", "BEARER", "bEaReR"})
    EXPECT_EQ(token_of({scheme + " abc.def-ghi"}), "abc.def-ghi") << scheme;
}

TEST(bearer_token, spaces_around_the_token_are_ignored) {
  EXPECT_EQ(token_of({"Bearer    abc"}), "abc");
  EXPECT_EQ(token_of({"Bearer abc   "}), "abc");
  EXPECT_EQ(token_of({"Bearer \tabc\t"}), "abc");
}

TEST(bearer_token, missing_or_repeated_header_gives_none) {
  EXPECT_EQ(token_of({}), std::nullopt);
  EXPECT_EQ(token_of({"Bearer abc", "Bearer abc"}), std::nullopt);
  EXPECT_EQ(token_of({"Bearer abc", "Bearer def"}), std::nullopt);
}

TEST(bearer_token, other_schemes_give_none) {
  for (const std::string value : {"Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Token abc", "Bearerabc", "Bearer", "abc",
                                  "Bearer-abc def", "Bearer\tabc", "X Bearer abc"})
    EXPECT_EQ(token_of({value}), std::nullopt) << value;
}

TEST(bearer_token, empty_token_or_whitespace_inside_gives_none) {
  for (const std::string value : {"Bearer ", "Bearer     ", "Bearer abc def", "Bearer abc\tdef"})
    EXPECT_EQ(token_of({value}), std::nullopt) << value;
}

}  // namespace
}  // namespace tenantd::api

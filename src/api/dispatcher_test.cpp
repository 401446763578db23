// Tests for the dispatcher's pure helpers: which X-Request-Id is echoed, and which
// Content-Type values count as JSON.
#include "api/dispatcher.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tenantd::api {
namespace {

request with_headers(std::vector<std::pair<std::string, std::string>> headers) {
  request req;
  req.method = "GET";
  req.target = req.path = "/";
  req.headers = std::move(headers);
  return req;
}

request with_request_id(std::string id) { return with_headers({{"x-request-id", std::move(id)}}); }

// A generated id: non-empty, at most 128 characters of [A-Za-z0-9._-].
bool looks_generated(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (const char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// ---- choose_request_id ----------------------------------------------------------------------

TEST(choose_request_id, clean_client_id_is_echoed) {
  for (const std::string id : {"a", "abc-123", "A.b_C-9", "0123456789", "req.2026-11-28T10_00_00", "-", "..."})
    EXPECT_EQ(choose_request_id(with_request_id(id)), id);
}

TEST(choose_request_id, length_limit_is_128) {
  const std::string id128(128, 'x');
  const std::string id129(129, 'x');
  EXPECT_EQ(choose_request_id(with_request_id(id128)), id128);
  const auto replaced = choose_request_id(with_request_id(id129));
  EXPECT_NE(replaced, id129);
  EXPECT_TRUE(looks_generated(replaced)) << replaced;
}

TEST(choose_request_id, bad_characters_get_a_new_id) {
  for (const std::string& id :
       std::vector<std::string>{"has space", "semi;colon", "slash/", "colon:", "quote\"", "tab\t", "new\nline",
                                "caf\xc3\xa9", "pct%20", "plus+", "brace{}", std::string("nul\0x", 5), "\x7f"}) {
    const auto chosen = choose_request_id(with_request_id(id));
    EXPECT_NE(chosen, id) << testing::PrintToString(id);
    EXPECT_TRUE(looks_generated(chosen)) << testing::PrintToString(chosen);
  }
}

TEST(choose_request_id, empty_or_missing_gets_a_new_id) {
  const auto from_empty = choose_request_id(with_request_id(""));
  EXPECT_TRUE(looks_generated(from_empty)) << from_empty;
  const auto from_none = choose_request_id(with_headers({{"x-other", "abc"}}));
  EXPECT_TRUE(looks_generated(from_none)) << from_none;
}

TEST(choose_request_id, two_headers_get_a_new_id) {
  for (const auto& [first, second] : std::vector<std::pair<std::string, std::string>>{{"abc", "def"}, {"abc", "abc"}}) {
    const auto chosen = choose_request_id(with_headers({{"x-request-id", first}, {"x-request-id", second}}));
    EXPECT_NE(chosen, first);
    EXPECT_NE(chosen, second);
    EXPECT_TRUE(looks_generated(chosen)) << chosen;
  }
}

TEST(choose_request_id, other_headers_do_not_interfere) {
  EXPECT_EQ(choose_request_id(with_headers({{"host", "x"}, {"x-request-id", "mine"}, {"accept", "*/*"}})), "mine");
}

TEST(choose_request_id, generated_ids_are_unique) {
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.insert(choose_request_id(with_headers({})));
  EXPECT_EQ(ids.size(), 200U);
}

// ---- is_json_content_type -------------------------------------------------------------------

TEST(is_json_content_type, accepted) {
  for (const std::string_view value :
       {"application/json", "Application/JSON", "APPLICATION/JSON", "application/json; charset=utf-8",
        "application/json;charset=UTF-8", "application/json; charset=\"utf-8\"", "application/json; charset=utf8",
        "application/json; CHARSET=utf-8", "application/json ;charset=utf-8", "application/json;",
        "  application/json"})
    EXPECT_TRUE(is_json_content_type(value)) << value;
}

TEST(is_json_content_type, rejected) {
  for (const std::string_view value : {"",
                                       "text/plain",
                                       "text/json",
                                       "application/json-patch+json",
                                       "application/jsonx",
                                       "application/problem+json",
                                       "application/x-www-form-urlencoded",
                                       "multipart/form-data; boundary=x",
                                       "application/json; charset=latin1",
                                       "application/json; charset=iso-8859-1",
                                       "application/json; charset=utf-16",
                                       "application/json; charset=",
                                       "application/json; boundary=x",
                                       "application/json; charset",
                                       "application",
                                       "application/",
                                       "json",
                                       "application/ json",
                                       "*/*",
                                       "application/*"})
    EXPECT_FALSE(is_json_content_type(value)) << value;
}

}  // namespace
}  // namespace tenantd::api

// Unit tests for the pure request-framing rules and the response-header allowlist.
#include "http/framing.hpp"

#include <gtest/gtest.h>

namespace tenantd::http {
namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

std::optional<framing_error> check(header_list headers, unsigned version = 11) {
  return check_framing(version, headers);
}

TEST(framing, accepts_plain_requests) {
  EXPECT_FALSE(check({{"host", "x"}}));
  EXPECT_FALSE(check({{"host", "x"}, {"content-length", "5"}}));
  EXPECT_FALSE(check({{"host", "x"}, {"content-length", " 0 "}}));
  EXPECT_FALSE(check({}, 10));
}

TEST(framing, accepts_chunked_in_any_case) {
  EXPECT_FALSE(check({{"host", "x"}, {"transfer-encoding", "chunked"}}));
  EXPECT_FALSE(check({{"host", "x"}, {"transfer-encoding", "Chunked"}}));
  EXPECT_FALSE(check({{"host", "x"}, {"transfer-encoding", " CHUNKED"}}));
}

TEST(framing, rejects_content_length_with_transfer_encoding) {
  auto fault = check({{"host", "x"}, {"content-length", "5"}, {"transfer-encoding", "chunked"}});
  ASSERT_TRUE(fault);
  EXPECT_EQ(fault->status, 400U);
  EXPECT_TRUE(check({{"host", "x"}, {"transfer-encoding", "chunked"}, {"content-length", "5"}}));
}

TEST(framing, rejects_every_transfer_encoding_but_a_single_chunked) {
  for (const char* coding :
       {"gzip", "chunked, chunked", "gzip, chunked", "chunked, gzip", "identity", "", "chunked;x=1"})
    EXPECT_TRUE(check({{"host", "x"}, {"transfer-encoding", coding}})) << coding;
  EXPECT_TRUE(check({{"host", "x"}, {"transfer-encoding", "chunked"}, {"transfer-encoding", "chunked"}}));
  EXPECT_TRUE(check({{"transfer-encoding", "chunked"}}, 10));
}

TEST(framing, rejects_repeated_or_malformed_content_length) {
  EXPECT_TRUE(check({{"host", "x"}, {"content-length", "5"}, {"content-length", "6"}}));
  EXPECT_TRUE(check({{"host", "x"}, {"content-length", "5"}, {"content-length", "5"}}));
  for (const char* length : {"+5", "-1", "5, 5", "0x10", "", "5 5"})
    EXPECT_TRUE(check({{"host", "x"}, {"content-length", length}})) << length;
}

TEST(framing, requires_exactly_one_host_in_http11) {
  EXPECT_TRUE(check({}));
  EXPECT_TRUE(check({{"host", "a"}, {"host", "b"}}));
  EXPECT_TRUE(check({{"host", "a"}, {"host", "b"}}, 10));
}

TEST(framing, rejects_unknown_versions) {
  EXPECT_TRUE(check({{"host", "x"}}, 12));
  EXPECT_TRUE(check({{"host", "x"}}, 20));
  EXPECT_TRUE(check({{"host", "x"}}, 9));
}

TEST(framing, detects_obs_fold) {
  EXPECT_FALSE(has_obs_fold("GET / HTTP/1.1\r\nHost: x\r\nX-A: a b\r\n"));
  EXPECT_TRUE(has_obs_fold("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n"));
  EXPECT_TRUE(has_obs_fold("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n"));
  EXPECT_TRUE(has_obs_fold("GET / HTTP/1.1\r\n Host: x\r\n"));
}

TEST(framing, response_header_allowlist) {
  EXPECT_TRUE(is_settable_response_header("X-Request-Id", "abc"));
  EXPECT_TRUE(is_settable_response_header("Retry-After", "1"));
  EXPECT_FALSE(is_settable_response_header("Server", "Boost.Beast/345"));
  EXPECT_FALSE(is_settable_response_header("content-length", "1"));
  EXPECT_FALSE(is_settable_response_header("Transfer-Encoding", "chunked"));
  EXPECT_FALSE(is_settable_response_header("Connection", "keep-alive"));
  EXPECT_FALSE(is_settable_response_header("X-A", "a\r\nSet-Cookie: x"));
  EXPECT_FALSE(is_settable_response_header("X-A", std::string_view("a\0b", 3)));
  EXPECT_FALSE(is_settable_response_header("X A", "a"));
  EXPECT_FALSE(is_settable_response_header("", "a"));
}

}  // namespace
}  // namespace tenantd::http

// HTTP-level behaviour: 404/405 with Allow, 415, 413, malformed JSON, X-Request-Id, framing
// (CL+TE, bad Transfer-Encoding, duplicate Content-Length, missing Host, 431), keep-alive, CORS.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <regex>

namespace tenantd::test {
namespace {

using http_protocol = e2e_test;
namespace json = boost::json;

std::string raw_request(std::string_view method, std::string_view target, std::string_view headers,
                        std::string_view body = {}) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  out.append(headers);
  out.append("\r\n");
  out.append(body);
  return out;
}

std::size_t count_responses(const std::string& bytes) {
  std::size_t n = 0;
  for (auto pos = bytes.find("HTTP/1."); pos != std::string::npos; pos = bytes.find("HTTP/1.", pos + 1)) ++n;
  return n;
}

bool allow_lists(const http_response& r, std::initializer_list<std::string_view> methods) {
  const std::string allow = r.header_or_empty("allow");
  for (const auto m : methods)
    if (allow.find(m) == std::string::npos) return false;
  return true;
}

std::string tenant_body_of_size(std::string_view id, std::size_t size) {
  std::string body = R"({"id":")" + std::string(id) + R"(","name":"Big","pad":")";
  const std::size_t tail = 2;  // "}
  body.append(size - body.size() - tail, 'a');
  body += "\"}";
  return body;
}

TEST_F(http_protocol, unknown_paths_are_404_before_authentication) {
  for (const char* target : {"/nope", "/api/nope", "/api/users/x/y", "/tenants/extra", "/API/users"}) {
    const auto r = client().get(target);
    expect_problem(r, 404, "not_found");
  }
  for (const char* target : {"/api/users/", "//api/users", "/api/./users", "/api/users%2F1", "/api/users;x=1",
                             "/api/users/1/..", "/api/%75sers"}) {
    const auto r = client().get(target);
    EXPECT_TRUE(r.status == 401 || r.status == 404 || r.status == 400) << target << ":\n" << r.describe();
  }
}

TEST_F(http_protocol, wrong_method_is_405_with_allow) {
  const auto root = client().request("DELETE", "/");
  expect_problem(root, 405, "method_not_allowed");
  EXPECT_TRUE(allow_lists(root, {"GET"})) << root.describe();
  const auto tenants = client().get("/tenants");
  expect_problem(tenants, 405, "method_not_allowed");
  EXPECT_TRUE(allow_lists(tenants, {"POST"})) << tenants.describe();
  const auto login = client().get("/auth/login");
  EXPECT_EQ(login.status, 405u) << login.describe();
  EXPECT_TRUE(allow_lists(login, {"POST"})) << login.describe();
  // Route before authentication: no token, wrong method → 405, not 401.
  const auto tenant = client().request("DELETE", "/api/tenant");
  EXPECT_EQ(tenant.status, 405u) << tenant.describe();
  EXPECT_TRUE(allow_lists(tenant, {"GET", "PUT"})) << tenant.describe();
  const auto user = client().request("POST", "/api/users/3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f", {}, "{}");
  EXPECT_EQ(user.status, 405u) << user.describe();
  EXPECT_TRUE(allow_lists(user, {"GET", "PUT", "PATCH", "DELETE"})) << user.describe();
  const auto trace = client().request("TRACE", "/");
  EXPECT_TRUE(trace.status == 405 || trace.status == 501) << trace.describe();
  EXPECT_EQ(trace.body.find("Host:"), std::string::npos) << "TRACE must not echo the request";
}

TEST_F(http_protocol, method_override_headers_are_ignored) {
  const auto owner = tenant_with_owner("ovr_co");
  const auto made = post(
      "/api/users", json::object{{"email", "keep@ovr.example"}, {"first_name", "K"}, {"last_name", "L"}}, owner.token);
  ASSERT_EQ(made.status, 201u);
  const std::string target = "/api/users/" + json_string(made.json(), "id");
  const auto r = get(target, owner.token, {{"X-HTTP-Method-Override", "DELETE"}, {"X-Method-Override", "DELETE"}});
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(get(target, owner.token).status, 200u) << "the override deleted the user";
}

TEST_F(http_protocol, content_type_must_be_json) {
  const std::string body = R"({"id":"ctype_co","name":"Ctype"})";
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                           "application/jsonx", "application/json-patch+json", "text/json"}) {
    const auto r = client().request("POST", "/tenants", {{"Content-Type", type}}, body);
    expect_problem(r, 415, "unsupported_media_type");
  }
  expect_problem(client().request("POST", "/tenants", {}, body), 415, "unsupported_media_type");
  expect_problem(client().request("POST", "/auth/login", {{"Content-Type", "text/plain"}},
                                  R"({"email":"a@b.example","password":"whatever-pw"})"),
                 415, "unsupported_media_type");

  const auto charset =
      client().request("POST", "/tenants", {{"Content-Type", "application/json; charset=utf-8"}}, body);
  EXPECT_EQ(charset.status, 201u) << charset.describe();
  const auto upper = client().request("POST", "/tenants", {{"Content-Type", "Application/JSON"}},
                                      R"({"id":"ctype_two","name":"Ctype"})");
  EXPECT_EQ(upper.status, 201u) << "media types are case-insensitive:\n" << upper.describe();
}

TEST_F(http_protocol, content_type_is_checked_after_authentication) {
  const auto owner = tenant_with_owner("order_co");
  const std::string body = R"({"email":"x@order.example","first_name":"X","last_name":"Y"})";
  expect_problem(client().request("POST", "/api/users", {{"Content-Type", "text/plain"}}, body), 401, "unauthorized");
  expect_problem(client().request("POST", "/api/users", {}, body), 401, "unauthorized");
  expect_problem(client().request("POST", "/api/users",
                                  {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + owner.token}}, body),
                 415, "unsupported_media_type");
  expect_problem(
      client().request("PUT", "/api/tenant", {{"Authorization", "Bearer " + owner.token}}, R"({"name":"N"})"), 415,
      "unsupported_media_type");
  // Permission (403) comes before the body (415).
  const auto member = add_member(owner, "m@order.example");
  expect_problem(client().request("PUT", "/api/tenant",
                                  {{"Content-Type", "text/plain"}, {"Authorization", "Bearer " + member.token}},
                                  R"({"name":"N"})"),
                 403, "forbidden");
}

TEST_F(http_protocol, bodies_over_64_kib_are_413) {
  const auto at_limit = client().request("POST", "/tenants", {{"Content-Type", "application/json"}},
                                         tenant_body_of_size("limit_co", 64 * 1024));
  EXPECT_EQ(at_limit.status, 201u) << "exactly 64 KiB is allowed:\n" << at_limit.describe();
  const auto over = client().request("POST", "/tenants", {{"Content-Type", "application/json"}},
                                     tenant_body_of_size("over_co", 64 * 1024 + 1));
  expect_problem(over, 413, "payload_too_large");
  const auto way_over = client().request("POST", "/auth/register", {{"Content-Type", "application/json"}},
                                         tenant_body_of_size("way_co", 1024 * 1024));
  expect_problem(way_over, 413, "payload_too_large");
  // A declared oversized body is refused before authentication and before it is sent.
  const auto declared = client().exchange_raw(
      raw_request("POST", "/api/users", "Content-Type: application/json\r\nContent-Length: 10000000\r\n"),
      std::chrono::seconds(10));
  const auto first = declared.first_response();
  ASSERT_TRUE(first.has_value()) << "no response to a declared 10 MB body: [" << declared.bytes << "]";
  EXPECT_EQ(first->status, 413u) << first->describe();
  // Chunked bodies are limited too.
  std::string chunked;
  const std::string chunk(8192, 'a');
  chunked += "{\"id\":\"chunk_co\",\"name\":\"x\",\"pad\":\"";
  std::string raw = raw_request("POST", "/tenants", "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n");
  auto add_chunk = [&raw](std::string_view data) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    raw += size;
    raw.append(data);
    raw += "\r\n";
  };
  add_chunk(chunked);
  for (int i = 0; i < 10; ++i) add_chunk(chunk);
  add_chunk("\"}");
  raw += "0\r\n\r\n";
  const auto big_chunked = client().exchange_raw(raw, std::chrono::seconds(10)).first_response();
  ASSERT_TRUE(big_chunked.has_value());
  EXPECT_EQ(big_chunked->status, 413u) << big_chunked->describe();
}

TEST_F(http_protocol, malformed_json_is_400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated", R"({"id":)"},
      {"empty body", ""},
      {"trailing garbage", R"({"id":"bad_a","name":"x"} trailing)"},
      {"two documents", R"({"id":"bad_b","name":"x"}{"id":"bad_c","name":"y"})"},
      {"top-level array", R"([{"id":"bad_d","name":"x"}])"},
      {"top-level string", R"("bad_e")"},
      {"top-level null", "null"},
      {"wrong type for id", R"({"id":123,"name":"x"})"},
      {"wrong type for name", R"({"id":"bad_f","name":{"a":1}})"},
      {"duplicate keys", R"({"id":"bad_g","id":"bad_h","name":"x"})"},
      {"duplicate name keys", R"({"id":"bad_i","name":"x","name":"y"})"},
      {"escaped NUL", R"({"id":"bad_j","name":"a\u0000b"})"},
      {"raw NUL", std::string("{\"id\":\"bad_k\",\"name\":\"a") + '\0' + "b\"}"},
      {"invalid UTF-8", "{\"id\":\"bad_l\",\"name\":\"a\xff\xfe\"}"},
      {"overlong UTF-8", "{\"id\":\"bad_m\",\"name\":\"a\xc0\xaf\"}"},
      {"lone surrogate", R"({"id":"bad_n","name":"a\ud800b"})"},
      {"UTF-8 BOM", "\xef\xbb\xbf{\"id\":\"bad_o\",\"name\":\"x\"}"},
      {"single quotes", "{'id':'bad_p','name':'x'}"},
      {"comment", "{\"id\":\"bad_q\",/*c*/\"name\":\"x\"}"},
      {"trailing comma", R"({"id":"bad_r","name":"x",})"},
      {"NaN", R"({"id":"bad_s","name":"x","n":NaN})"},
  };
  for (const auto& [label, body] : cases) {
    const auto r = client().request("POST", "/tenants", {{"Content-Type", "application/json"}}, body);
    EXPECT_EQ(r.status, 400u) << label << ":\n" << r.describe();
  }
  std::string deep = R"({"id":"bad_t","name":"x","extra":)";
  deep.append(30000, '[');
  deep.append(30000, ']');
  deep += "}";
  const auto r = client().request("POST", "/tenants", {{"Content-Type", "application/json"}}, deep);
  EXPECT_EQ(r.status, 400u) << "30000 nested arrays:\n" << r.describe();
  std::string deep_objects = R"({"id":"bad_u","name":"x","extra":)";
  for (int i = 0; i < 5000; ++i) deep_objects += "{\"a\":";
  deep_objects += "1";
  deep_objects.append(5000, '}');
  deep_objects += "}";
  EXPECT_EQ(client().request("POST", "/tenants", {{"Content-Type", "application/json"}}, deep_objects).status, 400u);

  const auto rows = admin_query("SELECT count(*) FROM pg_database WHERE starts_with(datname, '" +
                                server().tenant_db_prefix() + "bad_')");
  EXPECT_EQ(rows.at(0).at(0), "0") << "a rejected body created a tenant";
  EXPECT_EQ(get("/healthz").status, 200u);
}

TEST_F(http_protocol, request_id_is_echoed_only_when_well_formed) {
  const auto echoed = get("/", {}, {{"X-Request-Id", "abc-123._XYZ"}});
  EXPECT_EQ(echoed.header_or_empty("x-request-id"), "abc-123._XYZ");
  const std::string max(128, 'r');
  EXPECT_EQ(get("/", {}, {{"X-Request-Id", max}}).header_or_empty("x-request-id"), max);
  const std::regex shape("^[A-Za-z0-9._-]{1,128}$");
  for (const std::string& bad : {std::string(129, 'r'), std::string("bad id!"), std::string("a/b"),
                                 std::string("\xc3\xa9t\xc3\xa9"), std::string("x;y")}) {
    const auto r = get("/", {}, {{"X-Request-Id", bad}});
    const std::string got = r.header_or_empty("x-request-id");
    EXPECT_NE(got, bad);
    EXPECT_TRUE(std::regex_match(got, shape)) << "generated id [" << got << "]";
  }
  const auto a = get("/").header_or_empty("x-request-id");
  const auto b = get("/").header_or_empty("x-request-id");
  EXPECT_FALSE(a.empty());
  EXPECT_NE(a, b) << "generated ids must differ";
  // Errors carry the echoed id in the body too.
  const auto err = get("/nope", {}, {{"X-Request-Id", "trace-me-42"}});
  EXPECT_EQ(err.header_or_empty("x-request-id"), "trace-me-42");
  EXPECT_EQ(json_string(err.json(), "request_id"), "trace-me-42");
}

TEST_F(http_protocol, content_length_with_transfer_encoding_is_400_and_closes) {
  const auto out = client().exchange_raw(raw_request(
      "POST", "/tenants", "Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
      "0\r\n\r\nGET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  const auto first = out.first_response();
  ASSERT_TRUE(first.has_value()) << "[" << out.bytes << "]";
  EXPECT_EQ(first->status, 400u) << first->describe();
  EXPECT_TRUE(out.closed) << "connection must be closed after a framing error";
  EXPECT_EQ(count_responses(out.bytes), 1u) << "a smuggled request was answered:\n" << out.bytes;
}

TEST_F(http_protocol, bad_transfer_encodings_are_400_and_close) {
  for (const char* te : {"gzip, chunked", "chunked, gzip", "identity", "chunked, chunked", "xchunked"}) {
    const auto out = client().exchange_raw(
        raw_request("POST", "/tenants",
                    std::string("Content-Type: application/json\r\nTransfer-Encoding: ") + te + "\r\n", "0\r\n\r\n"));
    const auto first = out.first_response();
    ASSERT_TRUE(first.has_value()) << te << ": [" << out.bytes << "]";
    EXPECT_EQ(first->status, 400u) << te << ":\n" << first->describe();
    EXPECT_TRUE(out.closed) << te << ": connection left open";
  }
  const std::string body = R"({"id":"chunky","name":"Chunky"})";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const auto out = client().exchange_raw(
      raw_request("POST", "/tenants",
                  "Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n",
                  std::string(size) + "\r\n" + body + "\r\n0\r\n\r\n"),
      std::chrono::seconds(20));
  const auto ok = out.first_response();
  ASSERT_TRUE(ok.has_value()) << "[" << out.bytes << "]";
  EXPECT_EQ(ok->status, 201u) << "\"Chunked\" is chunked:\n" << ok->describe();
}

TEST_F(http_protocol, conflicting_content_lengths_are_400_and_close) {
  const auto out = client().exchange_raw(raw_request(
      "POST", "/tenants", "Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n", "{}x"));
  const auto first = out.first_response();
  ASSERT_TRUE(first.has_value()) << "[" << out.bytes << "]";
  EXPECT_EQ(first->status, 400u) << first->describe();
  EXPECT_TRUE(out.closed);
  const auto list = client().exchange_raw(
      raw_request("POST", "/tenants", "Content-Type: application/json\r\nContent-Length: 2, 3\r\n", "{}x"));
  const auto second = list.first_response();
  ASSERT_TRUE(second.has_value()) << "[" << list.bytes << "]";
  EXPECT_EQ(second->status, 400u) << second->describe();
}

TEST_F(http_protocol, http11_without_host_is_400) {
  const auto out = client().exchange_raw("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  const auto first = out.first_response();
  ASSERT_TRUE(first.has_value()) << "[" << out.bytes << "]";
  EXPECT_EQ(first->status, 400u) << first->describe();
  const auto old = client().exchange_raw("GET / HTTP/1.0\r\n\r\n").first_response();
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->status, 200u) << "HTTP/1.0 needs no Host:\n" << old->describe();
}

TEST_F(http_protocol, headers_over_8_kib_are_431) {
  const auto big = client().request("GET", "/", {{"X-Big", std::string(9 * 1024, 'h')}});
  EXPECT_EQ(big.status, 431u) << big.describe();
  header_list many;
  for (int i = 0; i < 100; ++i) many.emplace_back("X-Header-" + std::to_string(i), std::string(100, 'v'));
  EXPECT_EQ(client().request("GET", "/", many).status, 431u);
  const auto fine = client().request("GET", "/", {{"X-Small", std::string(4 * 1024, 'h')}});
  EXPECT_EQ(fine.status, 200u) << fine.describe();
  EXPECT_EQ(get("/healthz").status, 200u);
}

TEST_F(http_protocol, keep_alive_serves_several_requests) {
  const auto out = client().exchange_raw(
      "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(count_responses(out.bytes), 3u) << out.bytes;
  EXPECT_TRUE(out.closed) << "Connection: close must be honoured";
}

TEST_F(http_protocol, json_responses_declare_utf8) {
  const auto r = get("/");
  EXPECT_EQ(r.header_or_empty("content-type"), "application/json; charset=utf-8");
  const auto e = get("/nope");
  EXPECT_TRUE(e.header_or_empty("content-type").starts_with("application/problem+json")) << e.describe();
}

class http_cors : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"CORS_ORIGINS", "https://app.example.com,https://admin.example.com"}};
  }
};

TEST_F(http_cors, allowed_origin_gets_cors_headers_everywhere) {
  const std::string origin = "https://app.example.com";
  // PUT lives on /api/users/:id (the preflight's path), not on /api/users.
  const auto pre = client().request("OPTIONS", "/api/users/3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f",
                                    {{"Origin", origin},
                                     {"Access-Control-Request-Method", "PUT"},
                                     {"Access-Control-Request-Headers", "authorization,content-type"}});
  EXPECT_EQ(pre.status, 204u) << pre.describe();
  EXPECT_EQ(pre.header_or_empty("access-control-allow-origin"), origin);
  EXPECT_NE(pre.header_or_empty("vary").find("Origin"), std::string::npos) << pre.describe();
  EXPECT_NE(pre.header_or_empty("access-control-allow-methods").find("PUT"), std::string::npos) << pre.describe();
  std::string allowed_headers = pre.header_or_empty("access-control-allow-headers");
  for (auto& c : allowed_headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_NE(allowed_headers.find("authorization"), std::string::npos) << pre.describe();
  EXPECT_NE(allowed_headers.find("content-type"), std::string::npos) << pre.describe();
  const std::string max_age = pre.header_or_empty("access-control-max-age");
  EXPECT_TRUE(!max_age.empty() && std::all_of(max_age.begin(), max_age.end(), ::isdigit) && std::stol(max_age) > 0)
      << pre.describe();

  const auto post_pre =
      client().request("OPTIONS", "/api/users", {{"Origin", origin}, {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(post_pre.status, 204u) << post_pre.describe();
  EXPECT_NE(post_pre.header_or_empty("access-control-allow-methods").find("POST"), std::string::npos)
      << post_pre.describe();

  const auto other = client().get("/", {{"Origin", "https://admin.example.com"}});
  EXPECT_EQ(other.header_or_empty("access-control-allow-origin"), "https://admin.example.com");
  const auto unauth = client().get("/api/users", {{"Origin", origin}});
  EXPECT_EQ(unauth.status, 401u) << "Origin plays no part in authentication";
  EXPECT_EQ(unauth.header_or_empty("access-control-allow-origin"), origin) << unauth.describe();
  const auto missing = client().get("/nope", {{"Origin", origin}});
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.header_or_empty("access-control-allow-origin"), origin) << missing.describe();
}

TEST_F(http_cors, other_origins_get_no_cors_headers) {
  for (const char* origin :
       {"https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com",
        "https://xapp.example.com", "https://APP.example.com.evil", "*"}) {
    const auto pre =
        client().request("OPTIONS", "/api/users", {{"Origin", origin}, {"Access-Control-Request-Method", "DELETE"}});
    EXPECT_EQ(pre.status, 204u) << origin << ":\n" << pre.describe();
    EXPECT_FALSE(pre.has_header("access-control-allow-origin")) << origin << ":\n" << pre.describe();
    const auto simple = client().get("/", {{"Origin", origin}});
    EXPECT_EQ(simple.status, 200u);
    EXPECT_FALSE(simple.has_header("access-control-allow-origin")) << origin << ":\n" << simple.describe();
    EXPECT_FALSE(simple.has_header("access-control-allow-credentials")) << origin;
  }
  const auto none = client().get("/");
  EXPECT_NE(none.header_or_empty("access-control-allow-origin"), "*");
}

TEST_F(http_cors, evil_origin_does_not_change_authentication) {
  const auto owner = tenant_with_owner("cors_co");
  const auto r = get("/api/users", owner.token, {{"Origin", "https://evil.example"}});
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_FALSE(r.has_header("access-control-allow-origin"));
}

}  // namespace
}  // namespace tenantd::test

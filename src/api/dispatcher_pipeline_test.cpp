// The dispatcher's pipeline with an injected route table and authenticator: each stage answers
// in API.md's order (route 404/405 -> authentication 401 -> permission 403 -> body 415/400 ->
// handler) and a later stage never runs when an earlier one refuses. Infrastructure failures
// thrown by a handler become 503/500 without their text.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "api/dispatcher.hpp"
#include "api/router.hpp"
#include "db/connection.hpp"
#include "support/run_coro.hpp"

namespace tenantd::api {
namespace {

using boost::asio::awaitable;

// What the handlers saw (handlers are plain function pointers, so they report here).
struct handler_log {
  int calls{0};
  std::optional<principal> caller;
  boost::json::value body;
  std::vector<std::string> params;
};
handler_log seen;

awaitable<response> record(context& ctx) {
  ++seen.calls;
  seen.caller = ctx.caller;
  seen.body = ctx.body;
  seen.params = ctx.params;
  response res;
  res.status = 200;
  res.body = R"({"ok":true})";
  co_return res;
}

awaitable<response> throw_unavailable(context&) {
  ++seen.calls;
  throw db::unavailable_error("connection to server at 10.1.2.3 failed: secret detail");
  co_return response{};
}

awaitable<response> throw_other(context&) {
  ++seen.calls;
  throw std::runtime_error("internal secret detail");
  co_return response{};
}

const std::vector<route> test_routes = {
    {"GET", "/open", record, access_kind::open, std::nullopt, body_kind::none},
    {"GET", "/things/:id", record, access_kind::member, permission::users_read, body_kind::none},
    {"POST", "/things", record, access_kind::member, permission::users_write, body_kind::json},
    {"POST", "/maybe", record, access_kind::member, std::nullopt, body_kind::optional_json},
    {"GET", "/admin/things", record, access_kind::admin, std::nullopt, body_kind::none},
    {"GET", "/broken/db", throw_unavailable, access_kind::open, std::nullopt, body_kind::none},
    {"GET", "/broken/bug", throw_other, access_kind::open, std::nullopt, body_kind::none},
};

constexpr const char* good_token = "good-token";
constexpr const char* admin_secret = "admin-token-0123456789-0123456789-abcdef";

class dispatcher_pipeline : public testing::Test {
 protected:
  void SetUp() override {
    seen = {};
    svc_.settings.admin_token = admin_secret;
  }

  // The authenticator: "good-token" is a member holding users:read only; anything else is 401.
  authenticator authenticate() {
    return [this](std::string_view token) -> awaitable<result<principal>> {
      tokens_seen_.emplace_back(token);
      if (token != good_token) co_return make_error(errc::unauthorized, "the access token is missing or invalid");
      principal who;
      who.tenant_id = "acme";
      who.account_id = "user-1";
      who.role = "viewer";
      who.permissions = bit(permission::users_read);
      who.session_id = "session-1";
      co_return who;
    };
  }

  response send(std::string method, std::string path, std::vector<std::pair<std::string, std::string>> headers = {},
                std::string body = {}) {
    request req;
    req.method = std::move(method);
    req.target = req.path = std::move(path);
    req.headers = std::move(headers);
    req.body = std::move(body);
    req.remote_address = "127.0.0.1";
    dispatcher d(
        svc_,
        [this](const access_entry& e) {
          log_.push_back({std::string(e.route), e.status, std::string(e.tenant_id), std::string(e.user_id)});
        },
        test_routes, authenticate());
    return test::run_coro([&](auto) { return d.handle(req); });
  }

  static std::optional<std::string> header_of(const response& res, std::string_view name) {
    for (const auto& [n, v] : res.headers)
      if (n == name) return v;
    return std::nullopt;
  }

  static std::string code_of(const response& res) {
    return std::string(boost::json::parse(res.body).as_object().at("code").as_string());
  }

  struct logged {
    std::string route;
    unsigned status;
    std::string tenant;
    std::string user;
  };

  services svc_;
  std::vector<std::string> tokens_seen_;
  std::vector<logged> log_;
};

TEST_F(dispatcher_pipeline, unknown_path_is_404_before_authentication) {
  const auto res = send("GET", "/nowhere", {{"authorization", "Bearer good-token"}});
  EXPECT_EQ(res.status, 404U);
  EXPECT_EQ(code_of(res), "not_found");
  EXPECT_TRUE(tokens_seen_.empty());
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, wrong_method_is_405_with_allow_before_authentication) {
  const auto res = send("DELETE", "/things", {{"authorization", "Bearer good-token"}});
  EXPECT_EQ(res.status, 405U);
  EXPECT_EQ(header_of(res, "Allow"), "POST");
  EXPECT_TRUE(tokens_seen_.empty());
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, missing_or_malformed_credentials_are_401_without_asking_the_authenticator) {
  for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {},
           {{"authorization", "Basic Z29vZC10b2tlbg=="}},
           {{"authorization", "Bearer good-token"}, {"authorization", "Bearer good-token"}},
           {{"authorization", "Bearer "}}}) {
    const auto res = send("GET", "/things/7", headers);
    EXPECT_EQ(res.status, 401U);
    EXPECT_EQ(header_of(res, "WWW-Authenticate"), "Bearer");
    EXPECT_EQ(code_of(res), "unauthorized");
  }
  EXPECT_TRUE(tokens_seen_.empty());
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, the_authenticator_gets_the_extracted_token_and_its_refusal_is_401) {
  const auto res = send("GET", "/things/7", {{"authorization", "bearer   stolen-token  "}});
  EXPECT_EQ(res.status, 401U);
  ASSERT_EQ(tokens_seen_.size(), 1U);
  EXPECT_EQ(tokens_seen_[0], "stolen-token");
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, authenticated_caller_and_params_reach_the_handler) {
  const auto res = send("GET", "/things/7", {{"authorization", "Bearer good-token"}});
  EXPECT_EQ(res.status, 200U);
  ASSERT_EQ(seen.calls, 1);
  ASSERT_TRUE(seen.caller.has_value());
  EXPECT_EQ(seen.caller->tenant_id, "acme");
  EXPECT_EQ(seen.caller->account_id, "user-1");
  EXPECT_EQ(seen.params, std::vector<std::string>{"7"});
  ASSERT_EQ(log_.size(), 1U);
  EXPECT_EQ(log_[0].route, "/things/:id");
  EXPECT_EQ(log_[0].status, 200U);
  EXPECT_EQ(log_[0].tenant, "acme");
  EXPECT_EQ(log_[0].user, "user-1");
}

TEST_F(dispatcher_pipeline, missing_permission_is_403_before_the_body_is_looked_at) {
  // The caller lacks users:write; the body is not even JSON. The permission answers first.
  const auto res =
      send("POST", "/things", {{"authorization", "Bearer good-token"}, {"content-type", "text/plain"}}, "not json");
  EXPECT_EQ(res.status, 403U);
  EXPECT_EQ(code_of(res), "forbidden");
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, authentication_comes_before_the_body) {
  const auto res = send("POST", "/maybe", {{"content-type", "text/plain"}}, "not json");
  EXPECT_EQ(res.status, 401U);
  EXPECT_EQ(seen.calls, 0);
}

TEST_F(dispatcher_pipeline, body_checks_come_after_authentication_and_before_the_handler) {
  const std::vector<std::pair<std::string, std::string>> auth = {{"authorization", "Bearer good-token"}};
  auto with = [&](std::string type) {
    auto h = auth;
    h.emplace_back("content-type", std::move(type));
    return h;
  };
  auto res = send("POST", "/maybe", with("text/plain"), R"({"a":1})");
  EXPECT_EQ(res.status, 415U);
  EXPECT_EQ(code_of(res), "unsupported_media_type");
  res = send("POST", "/maybe", with("application/json"), R"({"a":)");
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(code_of(res), "invalid_json");
  res = send("POST", "/maybe", with("application/json"), "[1,2]");
  EXPECT_EQ(res.status, 400U);
  EXPECT_EQ(code_of(res), "invalid_json");
  EXPECT_EQ(seen.calls, 0);

  res = send("POST", "/maybe", with("application/json; charset=utf-8"), R"({"a":1})");
  EXPECT_EQ(res.status, 200U);
  ASSERT_EQ(seen.calls, 1);
  EXPECT_EQ(seen.body, boost::json::parse(R"({"a":1})"));

  res = send("POST", "/maybe", auth);  // optional body: none sent, the handler gets {}
  EXPECT_EQ(res.status, 200U);
  ASSERT_EQ(seen.calls, 2);
  EXPECT_EQ(seen.body, boost::json::object{});
}

TEST_F(dispatcher_pipeline, admin_routes_use_the_admin_token_not_the_authenticator) {
  EXPECT_EQ(send("GET", "/admin/things").status, 401U);
  EXPECT_EQ(send("GET", "/admin/things", {{"authorization", "Bearer good-token"}}).status, 401U);
  EXPECT_EQ(send("GET", "/admin/things", {{"authorization", std::string("Bearer ") + admin_secret + "x"}}).status,
            401U);
  EXPECT_EQ(seen.calls, 0);
  EXPECT_EQ(send("GET", "/admin/things", {{"authorization", std::string("bearer  ") + admin_secret + " "}}).status,
            200U);
  EXPECT_EQ(seen.calls, 1);
  EXPECT_TRUE(tokens_seen_.empty());

  svc_.settings.admin_token.clear();
  const auto res = send("GET", "/admin/things", {{"authorization", std::string("Bearer ") + admin_secret}});
  EXPECT_EQ(res.status, 403U);
  EXPECT_EQ(seen.calls, 1);
}

TEST_F(dispatcher_pipeline, open_routes_ignore_credentials) {
  EXPECT_EQ(send("GET", "/open", {{"authorization", "Bearer anything"}}).status, 200U);
  EXPECT_TRUE(tokens_seen_.empty());
}

TEST_F(dispatcher_pipeline, infrastructure_failures_become_503_and_500_without_their_text) {
  auto res = send("GET", "/broken/db");
  EXPECT_EQ(res.status, 503U);
  EXPECT_EQ(code_of(res), "unavailable");
  EXPECT_EQ(header_of(res, "Retry-After"), "1");
  EXPECT_EQ(res.body.find("secret"), std::string::npos) << res.body;
  res = send("GET", "/broken/bug");
  EXPECT_EQ(res.status, 500U);
  EXPECT_EQ(code_of(res), "internal");
  EXPECT_EQ(res.body.find("secret"), std::string::npos) << res.body;
  EXPECT_EQ(seen.calls, 2);
  ASSERT_EQ(log_.size(), 2U);
  EXPECT_EQ(log_[1].status, 500U);
}

TEST_F(dispatcher_pipeline, every_answer_carries_a_request_id) {
  const auto res = send("GET", "/nowhere", {{"x-request-id", "trace-42"}});
  EXPECT_EQ(header_of(res, "X-Request-Id"), "trace-42");
  EXPECT_EQ(boost::json::parse(res.body).as_object().at("request_id").as_string(), "trace-42");
}

}  // namespace
}  // namespace tenantd::api

namespace tenantd::api {
namespace {

// Usage counts requests of callers with a verified token, by their tenant, with the status
// they got (403 included); requests without a tenant (open routes, 401) are not counted.
TEST_F(dispatcher_pipeline, usage_counts_requests_of_authenticated_callers_only) {
  tenancy::usage_recorder usage(100);
  svc_.usage = &usage;
  EXPECT_EQ(send("GET", "/things/7", {{"authorization", "Bearer good-token"}}).status, 200U);
  EXPECT_EQ(send("POST", "/things", {{"authorization", "Bearer good-token"}}, "{}").status, 403U);
  EXPECT_EQ(send("GET", "/things/7", {{"authorization", "Bearer bad-token"}}).status, 401U);
  EXPECT_EQ(send("GET", "/open").status, 200U);
  EXPECT_EQ(send("GET", "/broken/db").status, 503U);
  const auto rows = usage.take();
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].tenant_id, "acme");
  EXPECT_EQ(rows[0].counts.requests, 2);
  EXPECT_EQ(rows[0].counts.errors_4xx, 1);
  EXPECT_EQ(rows[0].counts.errors_5xx, 0);
  std::int64_t in_buckets = 0;
  for (const auto n : rows[0].counts.latency) in_buckets += n;
  EXPECT_EQ(in_buckets, 2);
}

}  // namespace
}  // namespace tenantd::api

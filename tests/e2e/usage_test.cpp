// Per-tenant usage as an operator bills on it: a known load on two tenants gives exact
// counts in GET /admin/usage and in master once flushed; bad queries get 400, callers
// without the admin token 401.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <chrono>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;

class usage : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"USAGE_FLUSH_INTERVAL_S", "1"}, {"USAGE_SIZE_INTERVAL_S", "10"}};
  }
  header_list admin() const { return bearer(server().admin_token()); }

  // Requests of `tenant` as master holds them after a flush, polled until they equal `expected`
  // (or 15 s pass); returns the last value read.
  std::int64_t flushed_requests(const std::string& tenant, std::int64_t expected) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::int64_t seen = -1;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto rows =
          admin_query("SELECT coalesce(sum(requests), 0) FROM tenant_usage WHERE tenant_id = '" + tenant + "'",
                      server().master_database());
      seen = rows.empty() ? -1 : std::stoll(rows[0][0]);
      if (seen == expected) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return seen;
  }
};

const json::object* tenant_entry(const json::value& body, std::string_view id) {
  for (const auto& t : body.at("tenants").as_array())
    if (t.at("tenant_id").as_string() == id) return &t.as_object();
  return nullptr;
}

TEST_F(usage, a_known_load_gives_exact_counts_per_tenant) {
  const auto acme = tenant_with_owner("usage_acme");
  const auto globex = tenant_with_owner("usage_globex");
  for (int i = 0; i < 30; ++i) ASSERT_EQ(get("/api/me", acme.token).status, 200u);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(get("/api/users/00000000-0000-4000-8000-000000000000", acme.token).status, 404u);
  for (int i = 0; i < 12; ++i) ASSERT_EQ(get("/api/users", globex.token).status, 200u);
  // Not a tenant's request: no verified token, so no tenant to count it for.
  ASSERT_EQ(get("/api/me", "not-a-token").status, 401u);

  EXPECT_EQ(flushed_requests("usage_acme", 35), 35) << "master holds the flushed counts";
  EXPECT_EQ(flushed_requests("usage_globex", 12), 12);

  const auto res = get("/admin/usage", {}, admin());
  ASSERT_EQ(res.status, 200u) << res.describe();
  const auto body = res.json();
  const auto* a = tenant_entry(body, "usage_acme");
  const auto* g = tenant_entry(body, "usage_globex");
  ASSERT_TRUE(a && g) << res.body;
  EXPECT_EQ(a->at("requests").as_int64(), 35);
  EXPECT_EQ(a->at("errors_4xx").as_int64(), 5);
  EXPECT_EQ(a->at("errors_5xx").as_int64(), 0);
  EXPECT_GT(a->at("statements").as_int64(), 0) << "GET /api/users/:id reads the tenant database";
  EXPECT_GT(a->at("db_time_ms").to_number<double>(), 0.0);
  EXPECT_TRUE(a->at("last_activity").is_string());
  // Connections are sampled at each flush (every second here) for the tenants active in it, so
  // the sample can land a moment after the counts: polled, like the size below.
  std::int64_t connections = 0;
  for (const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       connections < 1 && std::chrono::steady_clock::now() < until;
       std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
    const auto sampled = get("/admin/usage?tenant=usage_acme", {}, admin());
    ASSERT_EQ(sampled.status, 200u) << sampled.describe();
    connections = sampled.json().at("tenants").at(0).at("connections_max").as_int64();
  }
  EXPECT_GE(connections, 1) << "its pool held a connection at a flush";
  std::int64_t in_buckets = 0;
  for (const auto& b : a->at("latency_buckets").as_array()) in_buckets += b.as_int64();
  EXPECT_EQ(in_buckets, 35) << "every request is in one latency bucket";
  EXPECT_EQ(g->at("requests").as_int64(), 12);
  EXPECT_EQ(g->at("errors_4xx").as_int64(), 0);
  EXPECT_GE(g->at("statements").as_int64(), 12) << "each GET /api/users runs statements";
  EXPECT_EQ(body.at("totals").at("requests").as_int64(), 47);
  std::int64_t minute_rows = 0;
  for (const auto& item : body.at("items").as_array())
    if (item.at("tenant_id").as_string() == "usage_acme") minute_rows += item.at("requests").as_int64();
  EXPECT_EQ(minute_rows, 35) << "the minute rows add up to the tenant's total";
  EXPECT_FALSE(body.at("truncated").as_bool());

  const auto one = get("/admin/usage?tenant=usage_globex", {}, admin());
  ASSERT_EQ(one.status, 200u) << one.describe();
  const auto only = one.json();
  ASSERT_EQ(only.at("tenants").as_array().size(), 1u) << one.body;
  EXPECT_EQ(only.at("totals").at("requests").as_int64(), 12);

  // The database size is sampled (every 10 s here) for tenants active since the last sample.
  const auto sized_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string size;
  while (std::chrono::steady_clock::now() < sized_deadline) {
    const auto rows = admin_query("SELECT max(db_size_bytes) FROM tenant_usage WHERE tenant_id = 'usage_globex'",
                                  server().master_database());
    size = rows.empty() ? "" : rows[0][0];
    if (!size.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_FALSE(size.empty()) << "no database size sampled within 30 s";
  EXPECT_GT(std::stoll(size), 1'000'000) << "a tenant database takes a few MB";
  const auto sized = get("/admin/usage?tenant=usage_globex", {}, admin());
  ASSERT_EQ(sized.status, 200u) << sized.describe();
  EXPECT_EQ(std::to_string(sized.json().at("tenants").at(0).at("db_size_bytes").as_int64()), size);

  // A window before any of it: nothing.
  const auto old = get("/admin/usage?from=2020-01-01T00:00:00Z&to=2020-01-01T01:00:00Z", {}, admin());
  ASSERT_EQ(old.status, 200u) << old.describe();
  EXPECT_EQ(old.json().at("totals").at("requests").as_int64(), 0);
}

// A graceful stop (SIGTERM) writes the counts of the last interval: nothing billable is lost
// to a deploy. The flush interval is an hour here, so only the shutdown flush can write them.
TEST_F(usage, a_graceful_stop_flushes_the_counts_not_yet_written) {
  // Restarted on the same port, so the fixture's client still reaches it.
  const auto port = std::to_string(server().port());
  server().stop();
  server().start({{"USAGE_FLUSH_INTERVAL_S", "3600"}, {"PORT", port}});
  ASSERT_TRUE(server().wait_ready()) << server().log_tail();
  const auto acme = tenant_with_owner("usage_stop");
  for (int i = 0; i < 9; ++i) ASSERT_EQ(get("/api/me", acme.token).status, 200u);
  const auto count = [this] {
    return admin_query("SELECT coalesce(sum(requests), 0) FROM tenant_usage WHERE tenant_id = 'usage_stop'",
                       server().master_database())
        .at(0)
        .at(0);
  };
  EXPECT_EQ(count(), "0") << "nothing flushed before the stop";
  const auto status = server().stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(e2e_server::unclean_exit(*status), "");
  EXPECT_EQ(count(), "9") << "the shutdown flushed the 9 requests";
  auto env = server_env();  // the fixture's teardown expects a running server
  env["PORT"] = port;
  server().start(env);
}

TEST_F(usage, bad_queries_get_400_and_callers_without_the_admin_token_401) {
  for (const char* query : {"?from=yesterday", "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
                            "?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z", "?tenant=Not-An-Id", "?tennant=acme",
                            "?from=2026-01-01T00:00:00Z&from=2026-01-01T00:00:00Z", "?from=2026-01-01T00:00:00+02:00"})
    expect_problem(get(std::string("/admin/usage") + query, {}, admin()), 400, "invalid_input");
  expect_problem(get("/admin/usage"), 401, "unauthorized");
  const auto owner = tenant_with_owner("usage_nosy");
  expect_problem(get("/admin/usage", owner.token), 401, "unauthorized");
}

}  // namespace
}  // namespace tenantd::test

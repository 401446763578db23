// Fault test F05 (docs: security-and-fault-tests §3): other clients hold every connection
// PostgreSQL allows. Requests that need a new connection answer 503 within the deadline,
// requests served by pooled connections keep working, tenantd does not storm PostgreSQL with
// connection attempts while they fail, and service returns once the connections are freed.
#include "support/fault_fixture.hpp"

#include <map>
#include <memory>
#include <thread>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

constexpr int max_connections = 20;  // 17 for non-superusers (3 reserved)

class fault_max_connections : public fault_test {
 protected:
  fault_cluster_options cluster_options() const override {
    return {.max_connections = max_connections, .log_connections = true};
  }
  // The load loop below sends with one token as fast as refusals come back (past the default
  // 200/s session quota); request quotas are tested in request_quota_test.cpp, so they are off.
  env_overrides server_env() const override {
    return {{"MASTER_POOL_SIZE", "4"},
            {"TENANT_POOL_SIZE", "3"},
            {"TENANT_REQUESTS_PER_SECOND", "0"},
            {"SESSION_REQUESTS_PER_SECOND", "0"}};
  }
};

// Opens connections as the app role (over the unix socket, so they are not counted as TCP
// attempts in the log) until PostgreSQL refuses one; returns those it accepted.
std::vector<held_session> hold_every_connection(const pg_cluster_info& c, std::string& refusal) {
  std::vector<held_session> held;
  for (int i = 0; i < 2 * max_connections; ++i) {
    try {
      held.emplace_back(c, c.app_user, "postgres");
    } catch (const std::exception& e) {
      refusal = e.what();
      break;
    }
  }
  return held;
}

}  // namespace

TEST_F(fault_max_connections, refused_connections_answer_503_without_a_reconnect_storm) {
  const auto acme = create_tenant("acme");
  const auto beta = create_tenant("beta");
  // Warm: both tenants' access rows and directory entries are cached, both pools have connections.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(get("/api/users", acme.token).status(), 200u);
    ASSERT_EQ(get("/api/users", beta.token).status(), 200u);
  }
  // Beta's pooled connections go away (killed), so its next request needs a new connection.
  const std::string beta_db = server().tenant_database("beta");
  const auto beta_backends = tenantd_backend_pids(beta_db);
  ASSERT_FALSE(beta_backends.empty());
  for (const auto& p : beta_backends) cluster().exec("SELECT pg_terminate_backend(" + p + ")");
  ASSERT_TRUE(poll_until([&] { return tenantd_backend_pids(beta_db).empty(); }, 5s));

  std::string refusal;
  auto held = hold_every_connection(cluster().info(), refusal);
  ASSERT_FALSE(refusal.empty()) << "PostgreSQL never refused a connection";
  std::cout << "holding " << held.size() << " connections; refusal: " << refusal;
  const auto log_before = cluster().log_text().size();

  // Pooled connections keep serving acme.
  for (int i = 0; i < 10; ++i) {
    const auto r = get("/api/users?page_size=1", acme.token);
    EXPECT_EQ(r.status(), 200u) << "acme, served from its pool, request " << i << ": " << r.describe();
  }
  // Beta needs a new connection: 503 within the deadline.
  const auto refused = get("/api/users", beta.token);
  EXPECT_EQ(refused.status(), 503u) << refused.describe();
  EXPECT_EQ(contract_violation(refused, fault_request_deadline), "");
  check_response_hygiene(refused.method, refused.target, refused.request_text, refused.response);

  // Hammer beta for a while; count tenantd's connection attempts (TCP) in the PostgreSQL log.
  const auto storm_window = 4s;
  auto load = std::make_unique<load_loop>(3, [&, port = server().port()](unsigned, std::uint64_t) {
    std::this_thread::sleep_for(10ms);
    return timed_request(port, "GET", "/api/users?page_size=1", beta.token);
  });
  std::this_thread::sleep_for(storm_window);
  load->stop();
  const auto log = cluster().log_text();
  const auto attempts = fault_cluster::count_lines(log, "connection received: host=127.0.0.1", log_before);
  const auto outcomes = load->outcomes();
  std::size_t answered_503 = 0;
  std::string bad;
  for (const auto& o : outcomes) {
    if (o.status() == 503) ++answered_503;
    if (auto v = contract_violation(o, fault_request_deadline); !v.empty() && bad.size() < 4000) bad += v + "\n";
    check_response_hygiene(o.method, o.target, o.request_text, o.response);
  }
  EXPECT_EQ(bad, "");
  std::cout << outcomes.size() << " requests for beta in " << storm_window.count() << " s (" << answered_503
            << " answered 503); tenantd attempted " << attempts << " connections\n";
  {  // attempts per second (log lines start with "YYYY-MM-DD HH:MM:SS.mmm"), for the record
    std::map<std::string, int> per_second;
    for (auto pos = log.find("connection received: host=127.0.0.1", log_before); pos != std::string::npos;
         pos = log.find("connection received: host=127.0.0.1", pos + 1)) {
      const auto line = log.rfind('\n', pos);
      per_second[log.substr(line == std::string::npos ? 0 : line + 1, 19)]++;
    }
    for (const auto& [second, n] : per_second) std::cout << "  " << second << ": " << n << " attempts\n";
  }
  EXPECT_GT(answered_503, 0u);
  // Back-off: a handful of attempts per second for the failing pool, not one per request.
  EXPECT_LE(attempts, 4u * static_cast<std::size_t>(storm_window.count()) + 4)
      << "reconnect storm: " << attempts << " connection attempts for " << outcomes.size() << " requests";
  // acme still served while beta fails.
  EXPECT_EQ(get("/api/users?page_size=1", acme.token).status(), 200u);

  // Connections freed: beta is served again within 5 s.
  held.clear();
  const auto back = poll_until([&] { return get("/api/users?page_size=1", beta.token).status() == 200; }, 10s);
  ASSERT_TRUE(back.has_value()) << "beta not served 10 s after the connections were freed";
  std::cout << "beta served again " << back->count() << " ms after the connections were freed\n";
  EXPECT_LE(back->count(), 5000);
}

}  // namespace tenantd::test

// Fault tests F02/F03/F01 (docs: security-and-fault-tests §3): PostgreSQL stopped under load
// (fast and immediate), and backends killed with pg_terminate_backend. Every request ends
// within its deadline with 2xx or a problem+json 503 with Retry-After; tenantd never exits,
// comes back to full service within 5 s of PostgreSQL, and does not pile up memory or fds.
#include "support/fault_fixture.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <optional>
#include <thread>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

class fault_pg_outage : public fault_test {
 protected:
  // A small ASan quarantine, so that RSS measures what tenantd keeps, not freed memory the
  // sanitizer holds back (up to 256 MiB by default). Ignored by builds without ASan.
  // The backend-kill test's load loop sends on one token as fast as the server answers, past
  // the default request quotas (200/s per session); quotas are tested in request_quota_test.
  env_overrides server_env() const override {
    const char* inherited = std::getenv("ASAN_OPTIONS");
    std::string options = inherited != nullptr && *inherited != '\0' ? std::string(inherited) + ":" : "";
    return {{"ASAN_OPTIONS", options + "quarantine_size_mb=4:thread_local_quarantine_size_kb=64"},
            {"TENANT_REQUESTS_PER_SECOND", "0"},
            {"SESSION_REQUESTS_PER_SECOND", "0"}};
  }
};

// Steady mixed load on one tenant: reads of the user list, writes of new users, /api/me.
std::unique_ptr<load_loop> mixed_load(std::uint16_t port, const fault_tenant& tenant, std::atomic<int>& written) {
  return std::make_unique<load_loop>(3, [port, tenant, &written](unsigned thread, std::uint64_t) {
    std::this_thread::sleep_for(20ms);  // pacing: leave CPU to the server on a 2-core machine
    if (thread == 0) return timed_request(port, "GET", "/api/users?page_size=5", tenant.token);
    if (thread == 1) {
      const std::string email = "load" + std::to_string(written++) + "@example.com";
      const std::string body = R"({"email":")" + email + R"(","first_name":"Lee","last_name":"Load"})";
      return timed_request(port, "POST", "/api/users", tenant.token, body);
    }
    return timed_request(port, "GET", "/api/me", tenant.token);
  });
}

std::string violations(const std::vector<timed_outcome>& outcomes, std::size_t& count_503,
                       std::chrono::milliseconds& slowest) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& o : outcomes) {
    if (o.status() == 503) ++count_503;
    slowest = std::max(slowest, o.took);
    if (auto v = contract_violation(o, fault_request_deadline); !v.empty() && shown++ < 5) out += v + "\n";
    check_response_hygiene(o.method, o.target, o.request_text, o.response);
  }
  return out;
}

}  // namespace

// PostgreSQL stopped (fast, immediate, fast) while three clients keep reading and
// writing: during each outage requests answer 503 fast; after each start the tenant is fully
// served again within 5 s (then every request succeeds: no stale pooled connection), with the
// same tenantd process and its invalidation listener back; after the warm-up cycle, RSS and
// open fds (other than connections to PostgreSQL) do not grow.
TEST_F(fault_pg_outage, stopped_under_load_answers_503_and_recovers_without_growth) {
  const auto acme = create_tenant("acme");
  const pid_t pid = server().pid();
  std::atomic<int> written{0};
  std::vector<timed_outcome> outcomes;

  // File descriptors other than tenantd's connections to PostgreSQL (whose number follows the
  // pools, not a leak): listener, sockets to clients, logs... must not grow. The two counts
  // are taken one after the other while connections may still be opening or closing, so one
  // sample can be off by one or two; the least of ten over a second is what stays open.
  const auto other_fds = [&] {
    std::optional<std::pair<process_usage, std::size_t>> least;
    for (int sample = 0; sample < 10; ++sample) {
      if (sample > 0) std::this_thread::sleep_for(100ms);
      const auto usage = usage_of(pid);
      // Each database connection holds two descriptors: libpq's socket and the duplicate Asio
      // waits on (db/connection.cpp). Subtracting one per backend counted the other, so the
      // figure moved with how many connections were open at the sample (28 -> 30 once, under
      // TSan, with every descriptor accounted for).
      const auto db = 2 * tenantd_backend_pids().size();
      const std::size_t other = usage.fds > db ? usage.fds - db : 0;
      if (!least || other < least->second) least = std::pair{usage, other};
    }
    return *least;
  };
  std::optional<std::pair<process_usage, std::size_t>> baseline;
  std::pair<process_usage, std::size_t> last;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::time_point>> served;
  const std::vector<std::string> modes{"fast", "immediate", "fast"};
  for (std::size_t cycle = 0; cycle < modes.size(); ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle) + " (stop -m " + modes[cycle] + ")");
    auto load = mixed_load(server().port(), acme, written);  // stopped before measuring
    std::this_thread::sleep_for(500ms);                      // some served load before the fault
    const auto before_outage = load->count();
    cluster().stop(modes[cycle]);
    // During the outage: direct probes answer 503 promptly; /healthz stays 200.
    const auto down_users = get("/api/users", acme.token);
    EXPECT_EQ(contract_violation(down_users, fault_request_deadline), "");
    EXPECT_EQ(down_users.status(), 503u) << down_users.describe();
    const auto down_ready = get("/readyz");
    EXPECT_EQ(down_ready.status(), 503u) << down_ready.describe();
    EXPECT_EQ(get("/healthz").status(), 200u);
    std::this_thread::sleep_for(1000ms);
    EXPECT_GT(load->count(), before_outage) << "the load stalled while PostgreSQL was down";

    cluster().start();
    // Recovery without a restart, within a generous bound; how fast is a benchmark figure
    // (printed below), not an assertion.
    const auto recovered = wait_full_service(acme, 10s);
    ASSERT_TRUE(recovered.has_value()) << "no full service 10 s after PostgreSQL started";
    std::cout << "cycle " << cycle << " (" << modes[cycle] << "): full service " << recovered->count()
              << " ms after PostgreSQL accepted connections\n";
    ASSERT_TRUE(server().running()) << "tenantd exited";
    EXPECT_EQ(server().pid(), pid);
    // The invalidation listener is back too (caches are cleared when it reconnects).
    const auto listening = poll_until(
        [&] {
          return !cluster()
                      .query(
                          "SELECT 1 FROM pg_stat_activity WHERE application_name = 'tenantd' AND query LIKE 'LISTEN%'")
                      .empty();
        },
        5s);
    EXPECT_TRUE(listening.has_value()) << "the invalidation listener did not reconnect within 5 s";

    const auto settle_start = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(700ms);  // settle under load (every request must succeed), then measure
    served.emplace_back(settle_start, std::chrono::steady_clock::now());
    load->stop();
    const auto recorded = load->outcomes();
    outcomes.insert(outcomes.end(), recorded.begin(), recorded.end());
    last = other_fds();
    std::cout << "cycle " << cycle << ": rss " << last.first.rss_kib << " KiB, fds " << last.first.fds << " ("
              << last.second << " not to PostgreSQL)\n";
    if (cycle == 0) baseline = last;  // warmed up: pools, caches, allocator arenas
  }

  std::size_t count_503 = 0;
  auto slowest = 0ms;
  const auto bad = violations(outcomes, count_503, slowest);
  EXPECT_EQ(bad, "") << "requests that broke the fault contract (first 5)";
  std::cout << outcomes.size() << " requests, " << count_503 << " answered 503, slowest " << slowest.count() << " ms\n";
  EXPECT_GT(count_503, 0u) << "no request ever saw the outage: the test did not test anything";
  // Once the tenant is served again, no stale pooled connection fails a request.
  for (const auto& o : outcomes) {
    for (const auto& [from, to] : served) {
      if (o.started >= from && o.started + o.took <= to) {
        EXPECT_TRUE(o.ok()) << "after recovery: " << o.describe();
      }
    }
  }

  ASSERT_TRUE(baseline.has_value());
  EXPECT_LE(last.second, baseline->second + 1) << "file descriptors grew over the outage cycles";
  const auto base_rss = baseline->first.rss_kib;
  EXPECT_LE(last.first.rss_kib, base_rss + base_rss / 10 + 16 * 1024)
      << "RSS grew over the outage cycles from " << base_rss << " KiB to " << last.first.rss_kib << " KiB";
  const auto final_users = get("/api/users?page_size=1", acme.token);
  EXPECT_EQ(final_users.status(), 200u) << final_users.describe();
}

// A backend killed while idle is discarded: every later request succeeds. Killed under load,
// at most the requests that were using the killed connections fail, with 503. The
// invalidation listener reconnects by itself.
TEST_F(fault_pg_outage, terminated_backends_are_discarded) {
  const auto acme = create_tenant("acme");
  const std::string tenant_db = server().tenant_database("acme");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(get("/api/users", acme.token).status(), 200u);
  ASSERT_TRUE(poll_until([&] { return !tenantd_backend_pids(tenant_db).empty(); }, 5s));

  // Idle connections killed: wait until PostgreSQL has ended them, then every request succeeds.
  auto killed = tenantd_backend_pids();
  ASSERT_FALSE(killed.empty());
  for (const auto& p : killed) cluster().exec("SELECT pg_terminate_backend(" + p + ")");
  ASSERT_TRUE(poll_until(
      [&] {
        const auto now = tenantd_backend_pids();
        return std::none_of(killed.begin(), killed.end(),
                            [&](const auto& p) { return std::find(now.begin(), now.end(), p) != now.end(); });
      },
      5s));
  for (int i = 0; i < 10; ++i) {
    const auto r = get("/api/users", acme.token);
    EXPECT_EQ(r.status(), 200u) << "request " << i << " after idle backends were killed: " << r.describe();
    const auto w = create_user(acme, "after.idle.kill" + std::to_string(i) + "@example.com");
    EXPECT_EQ(w.status(), 201u) << w.describe();
  }

  // The listener came back (a new LISTEN session of tenantd on the master database).
  const auto listening = poll_until(
      [&] {
        return !cluster()
                    .query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'tenantd' AND query LIKE 'LISTEN%'")
                    .empty();
      },
      10s);
  EXPECT_TRUE(listening.has_value()) << "the invalidation listener did not reconnect";

  // Under load: kill every tenantd backend three times; count the failures.
  std::atomic<int> written{0};
  auto load = std::make_unique<load_loop>(2, [&, port = server().port()](unsigned thread, std::uint64_t) {
    if (thread == 0) return timed_request(port, "GET", "/api/users?page_size=5", acme.token);
    const std::string body =
        R"({"email":"busy)" + std::to_string(written++) + R"(@example.com","first_name":"Lee","last_name":"Load"})";
    return timed_request(port, "POST", "/api/users", acme.token, body);
  });
  std::size_t kills = 0;
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(700ms);
    for (const auto& p : tenantd_backend_pids()) {
      cluster().exec("SELECT pg_terminate_backend(" + p + ")");
      ++kills;
    }
  }
  std::this_thread::sleep_for(1500ms);
  load->stop();
  const auto outcomes = load->outcomes();
  std::size_t failed = 0;
  std::string bad;
  for (const auto& o : outcomes) {
    if (!o.ok()) ++failed;
    if (auto v = contract_violation(o, fault_request_deadline); !v.empty() && bad.size() < 4000) bad += v + "\n";
    check_response_hygiene(o.method, o.target, o.request_text, o.response);
  }
  EXPECT_EQ(bad, "");
  std::cout << outcomes.size() << " requests under " << kills << " backend kills, " << failed << " not 2xx\n";
  EXPECT_LE(failed, kills) << "more failed requests than killed connections";
  // Afterwards: full service.
  for (int i = 0; i < 5; ++i) {
    const auto r = get("/api/users?page_size=1", acme.token);
    EXPECT_EQ(r.status(), 200u) << r.describe();
  }
}

}  // namespace tenantd::test

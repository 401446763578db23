// A process that missed a move (issue 13): two tenantd processes on one master, A and B. B's
// LISTEN connection is cut (its backend terminated; the test-only fault point
// listener_reconnect_late keeps it down for 20 s), so B hears neither the cut-over's hold nor
// the flip and keeps the tenant's old placement in its directory (30 s). The tenant is moved
// through A; B's writes right after the move meet the source's fence, and B re-reads the
// placement and runs them again on the target: every write B acknowledges is on the target
// once, and the source holds no row written after the flip.
#include <iostream>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "support/e2e_fixture.hpp"
#include "support/e2e_listeners.hpp"
#include "support/e2e_second_cluster.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::multiset<std::string> first_column(const std::vector<std::vector<std::string>>& rows) {
  std::multiset<std::string> values;
  for (const auto& row : rows) values.insert(row.at(0));
  return values;
}

// Polls `done` every 20 ms until it holds or `timeout` passes; whether it held.
template <typename Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  while (!done()) {
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);  // polling with a deadline
  }
  return true;
}

// One write through B after the move: what was sent and what B answered.
struct write_outcome {
  std::string email;
  unsigned status{0};
  std::string id;  // of a 201
  std::string body;
};

class stale_move : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"MOVE_DATABASE_USERNAME", pg_cluster().mover_user},
            {"MOVE_DATABASE_PASSWORD", pg_cluster().mover_password},
            {"TENANT_REQUESTS_PER_SECOND", "0"},
            {"SESSION_REQUESTS_PER_SECOND", "0"}};
  }

  void SetUp() override {
    e2e_test::SetUp();
    if (HasFatalFailure()) return;
    const auto of_a = listener_backends(server().master_database());
    ASSERT_EQ(of_a.size(), 1u) << "server A listens on one connection";
    b_ = std::make_unique<e2e_server>();
    b_->share_databases_with(server());
    try {
      b_->start({{"TENANTD_FAULT_POINT", "listener_reconnect_late"},
                 {"TENANT_REQUESTS_PER_SECOND", "0"},
                 {"SESSION_REQUESTS_PER_SECOND", "0"}});
    } catch (const std::exception& e) {
      FAIL() << "server B did not start: " << e.what();
    }
    ASSERT_TRUE(b_->wait_ready()) << b_->log_tail();
    // B's listener: the LISTEN connection that A's is not.
    ASSERT_TRUE(eventually([&] { return listener_backends(server().master_database()).size() == 2; }, 10s))
        << "server B never listened";
    for (const auto& pid : listener_backends(server().master_database()))
      if (of_a.count(pid) == 0) b_listener_ = pid;
  }

  void TearDown() override {
    if (b_ && HasFailure()) std::cerr << "---- server B log tail ----\n" << b_->log_tail(120) << "\n";
    b_.reset();  // before A drops the databases
    e2e_test::TearDown();
  }

  std::string admin_token() const { return server().admin_token(); }

  http_response write_on_b(const std::string& token, const std::string& email) const {
    const http_client b(b_->port());
    const json::object body{{"email", email}, {"first_name", "B"}, {"last_name", "Stale"}};
    return b.send_json("POST", "/api/users", body, bearer(token));
  }

  std::unique_ptr<e2e_server> b_;
  std::string b_listener_;
  second_cluster b2_;
};

TEST_F(stale_move, a_process_that_missed_the_move_writes_to_the_target_and_never_to_the_source) {
  const auto tenant_id = unique_name("st_");
  const auto owner = tenant_with_owner(tenant_id);
  const auto database = json_string(get("/admin/tenants/" + tenant_id, admin_token()).json(), "database");
  ASSERT_FALSE(database.empty());
  const auto added = post("/admin/servers", json::object{{"name", "b2"}, {"url", b2_.url()}}, admin_token());
  ASSERT_EQ(added.status, 201u) << added.describe();

  // B serves the tenant from main: its directory holds the placement, its pool connections
  // to the source.
  std::vector<std::string> warm;
  for (int i = 0; i < 5; ++i) {
    const auto r = write_on_b(owner.token, "before" + std::to_string(i) + "@example.com");
    ASSERT_EQ(r.status, 201u) << r.describe();
    warm.push_back(json_string(r.json(), "id"));
    const http_client b(b_->port());
    ASSERT_EQ(b.get("/api/users/" + warm.back(), bearer(owner.token)).status, 200u);
  }
  // What the source holds before the move (the owner's row too): it must hold that and no
  // more at the end.
  const auto before = first_column(admin_query("SELECT id::text FROM users", database));
  for (const auto& id : warm) ASSERT_EQ(before.count(id), 1u) << "B's write " << id << " is not on main";

  // B's LISTEN connection is cut, and stays down (the fault point) through the move.
  ASSERT_FALSE(b_listener_.empty());
  admin_exec("SELECT pg_terminate_backend(" + b_listener_ + ")");
  ASSERT_TRUE(eventually(
      [&] { return b_->log_text().find("invalidation listener lost its connection") != std::string::npos; }, 10s))
      << "B did not notice its listener was cut";
  const auto cut = clock_type::now();

  // The move, driven by A; the source is kept to be looked at.
  const auto started =
      post("/admin/tenants/" + tenant_id + "/move", json::object{{"to", "b2"}, {"keep_source", true}}, admin_token());
  ASSERT_EQ(started.status, 202u) << started.describe();
  const auto move_id = json_string(started.json(), "id");
  json::value move;
  ASSERT_TRUE(eventually(
      [&] {
        move = get("/admin/moves/" + move_id, admin_token()).json();
        const auto state = json_string(move, "state");
        return state == "done" || state == "aborted";
      },
      60s));
  ASSERT_EQ(json_string(move, "state"), "done") << json::serialize(move);
  const auto moved = get("/admin/tenants/" + tenant_id, admin_token());
  ASSERT_EQ(json_string(moved.json(), "server"), "b2") << moved.describe();
  std::cout << "[ stale_move ] moved "
            << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - cut).count()
            << " ms after B's listener was cut\n";
  // B is still deaf: its listener did not come back (which would clear its caches).
  ASSERT_EQ(listener_backends(server().master_database()).size(), 1u)
      << "B's listener reconnected before the writes below, so they would not test a stale process";

  // Right away, writes through B: a burst of concurrent ones, then one after another.
  // Expected: every one 201 (B's first attempt meets the fence on the source, B re-reads the
  // placement from master and runs it once more on the target). Allowed by the contract
  // instead: 503 with nothing written anywhere. Never: a row on the source.
  std::vector<write_outcome> outcomes(12);
  for (std::size_t i = 0; i < outcomes.size(); ++i) outcomes[i].email = "after" + std::to_string(i) + "@example.com";
  const auto record = [&](write_outcome& o) {
    const auto r = write_on_b(owner.token, o.email);
    o.status = r.status;
    o.body = r.body;
    if (r.status == 201) o.id = json_string(r.json(), "id");
  };
  {
    std::vector<std::thread> burst;
    for (std::size_t i = 0; i < 6; ++i) burst.emplace_back([&, i] { record(outcomes[i]); });
    for (auto& t : burst) t.join();
  }
  for (std::size_t i = 6; i < outcomes.size(); ++i) record(outcomes[i]);

  // B's first writes met the fence and ran again: B really served the tenant from its stale
  // placement (had its directory expired or been cleared, they would have gone straight to
  // the target and this test would prove nothing).
  EXPECT_NE(b_->log_text().find("tenant " + tenant_id + " moved to another database server while it ran"),
            std::string::npos)
      << "no write of B met the source's fence and ran again: either B was not stale or it did not retry";

  std::multiset<std::string> acked = before;
  std::vector<std::string> refused;  // emails of writes answered otherwise
  for (const auto& o : outcomes) {
    EXPECT_EQ(o.status, 201u) << o.email << ": " << o.body;
    if (o.status == 201) {
      acked.insert(o.id);
    } else {
      EXPECT_EQ(o.status, 503u) << "only a 503 may refuse a write: " << o.body;
      refused.push_back(o.email);
    }
  }
  // The target holds every acknowledged write once; the source nothing written after the flip.
  const auto on_target = first_column(b2_.query("SELECT id::text FROM users", database));
  const auto on_source = first_column(admin_query("SELECT id::text FROM users", database));
  EXPECT_TRUE(on_target == acked) << on_target.size() << " rows on the target, " << acked.size() << " acknowledged";
  EXPECT_TRUE(on_source == before) << on_source.size() << " rows on the source, " << before.size()
                                   << " written before the move";
  for (const auto& email : refused) {
    const auto where = "SELECT 1 FROM users WHERE email = '" + email + "'";
    EXPECT_TRUE(b2_.query(where, database).empty()) << email << " was refused yet is on the target";
    EXPECT_TRUE(admin_query(where, database).empty()) << email << " was refused yet is on the source";
  }

  // And B reads what it wrote, from the target.
  for (const auto& o : outcomes) {
    if (o.id.empty()) continue;
    const http_client b(b_->port());
    EXPECT_EQ(b.get("/api/users/" + o.id, bearer(owner.token)).status, 200u) << o.email;
  }
}

}  // namespace
}  // namespace tenantd::test

// Online moves of a tenant between database servers (API.md "Operator routes", issue 13): a
// tenant moved from the fixture cluster to a second one and back while a client writes and
// reads it, with the ledger check (every acknowledged write is on the target exactly once,
// no request failed), the source fenced against the application role, and no replication
// object left; the contract's errors; a cut-over that cannot lock the source within
// MOVE_FREEZE_MAX_MS is abandoned, retried and the move aborted with the tenant where it was;
// and the mover killed (SIGKILL) before and after the flip, the move then taken over and
// finished with nothing lost.
#include <libpq-fe.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "support/e2e_cli.hpp"
#include "support/e2e_fixture.hpp"
#include "support/e2e_second_cluster.hpp"
#include "support/fault_cluster.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

env_overrides mover_env() {
  return {{"MOVE_DATABASE_USERNAME", pg_cluster().mover_user},
          {"MOVE_DATABASE_PASSWORD", pg_cluster().mover_password},
          {"MOVE_LEASE_S", "2"},
          // The write load below runs as fast as the machine lets it: no quota may refuse it.
          {"TENANT_REQUESTS_PER_SECOND", "0"},
          {"SESSION_REQUESTS_PER_SECOND", "0"}};
}

// One client writing users into a tenant (POST /api/users) and one reading one back, as fast
// as they can, until stopped: what they were answered.
class write_load {
 public:
  write_load(const e2e_test& test, const http_client& client, const std::string& token, const std::string& read_id)
      : writer_([this, &client, token] {
          int n = 0;
          while (!stop_) {
            const auto email = "w" + std::to_string(n++) + "." + unique_name("") + "@example.com";
            const json::object body{{"email", email}, {"first_name", "W"}, {"last_name", "L"}};
            const auto r = client.send_json("POST", "/api/users", body, {{"Authorization", "Bearer " + token}});
            std::lock_guard lock(mutex_);
            if (r.status == 201)
              acked_.push_back(json_string(r.json(), "id"));
            else
              failures_.push_back("POST " + std::to_string(r.status) + " " + r.body);
          }
        }),
        reader_([this, &client, token, read_id] {
          while (!stop_) {
            const auto r = client.get("/api/users/" + read_id, {{"Authorization", "Bearer " + token}});
            std::lock_guard lock(mutex_);
            ++reads_;
            if (r.status != 200) failures_.push_back("GET " + std::to_string(r.status) + " " + r.body);
          }
        }) {
    (void)test;
  }
  ~write_load() { stop(); }
  void stop() {
    stop_ = true;
    if (writer_.joinable()) writer_.join();
    if (reader_.joinable()) reader_.join();
  }
  std::vector<std::string> acked() const {
    std::lock_guard lock(mutex_);
    return acked_;
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
  }
  int reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }

 private:
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> acked_;
  std::vector<std::string> failures_;
  int reads_{0};
  std::thread writer_;
  std::thread reader_;
};

class moves : public e2e_test {
 protected:
  env_overrides server_env() const override { return mover_env(); }

  std::string admin_token() const { return server().admin_token(); }

  void add_b2() const {
    const json::object body{{"name", "b2"}, {"url", b2_.url()}};
    const auto r = post("/admin/servers", body, admin_token());
    ASSERT_EQ(r.status, 201u) << r.describe();
  }
  http_response start_move(std::string_view tenant, std::string_view to) const {
    return post("/admin/tenants/" + std::string(tenant) + "/move", json::object{{"to", to}}, admin_token());
  }
  // Polls GET /admin/moves/:id until the move is done or aborted (or 90 s pass).
  json::value wait_for_move(const std::string& id) const {
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    json::value last;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto r = get("/admin/moves/" + id, admin_token());
      EXPECT_EQ(r.status, 200u) << r.describe();
      last = r.json();
      const auto state = json_string(last, "state");
      if (state == "done" || state == "aborted") return last;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "the move did not end: " << json::serialize(last);
    return last;
  }
  std::string server_of(std::string_view tenant) const {
    const auto r = get("/admin/tenants/" + std::string(tenant), admin_token());
    EXPECT_EQ(r.status, 200u) << r.describe();
    return json_string(r.json(), "server");
  }
  std::string database_of(std::string_view tenant) const {
    const auto r = get("/admin/tenants/" + std::string(tenant), admin_token());
    return json_string(r.json(), "database");
  }
  // The ids in the tenant's users table, read straight from a cluster.
  static std::multiset<std::string> user_ids(const std::vector<std::vector<std::string>>& rows) {
    std::multiset<std::string> ids;
    for (const auto& row : rows) ids.insert(row.at(0));
    return ids;
  }
  std::multiset<std::string> ids_on_main(const std::string& database) const {
    return user_ids(query_as_superuser("SELECT id::text FROM users", database));
  }
  std::multiset<std::string> ids_on_b2(const std::string& database) const {
    return user_ids(b2_.query("SELECT id::text FROM users", database));
  }
  // Replication objects of moves, on a cluster.
  static std::size_t move_objects(const std::vector<std::vector<std::string>>& rows) {
    return rows.empty() ? 0 : std::stoul(rows.at(0).at(0));
  }
  // Slots and subscriptions of moves of `database` (the fixture cluster is shared with other
  // tests, which move their own tenants).
  static std::string objects_of(const std::string& database) {
    return "SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'tenantd_move_%' AND database = '" +
           database +
           "') + (SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname "
           "LIKE 'tenantd_move_%' AND d.datname = '" +
           database + "')";
  }
  std::size_t leftovers_on_main(const std::string& database) const {
    return move_objects(query_as_superuser(objects_of(database), "postgres"));
  }
  std::size_t leftovers_on_b2(const std::string& database) const {
    return move_objects(b2_.query(objects_of(database)));
  }
  // Whether the application role can open a session on `database` of the cluster at `port`.
  static std::string app_role_connects(int port, const std::string& user, const std::string& password,
                                       const std::string& database) {
    const auto conninfo = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user + " password=" + password +
                          " dbname=" + database + " connect_timeout=5";
    PGconn* conn = PQconnectdb(conninfo.c_str());
    std::string outcome = PQstatus(conn) == CONNECTION_OK ? "connected" : PQerrorMessage(conn);
    PQfinish(conn);
    return outcome;
  }
  static std::vector<std::vector<std::string>> query_as_superuser(const std::string& sql, const std::string& db) {
    return admin_query(sql, db);
  }

  second_cluster b2_;
};

TEST_F(moves, a_tenant_moves_under_load_and_back_with_every_write_once_and_no_request_failed) {
  const auto tenant_id = unique_name("mv_");
  const auto owner = tenant_with_owner(tenant_id);
  ASSERT_EQ(server_of(tenant_id), "main");
  const auto database = database_of(tenant_id);
  std::vector<std::string> before;  // rows to copy
  for (int i = 0; i < 300; ++i) {
    const json::object body{
        {"email", "pre" + std::to_string(i) + "@example.com"}, {"first_name", "P"}, {"last_name", "Q"}};
    const auto r = post("/api/users", body, owner.token);
    ASSERT_EQ(r.status, 201u) << r.describe();
    before.push_back(json_string(r.json(), "id"));
  }
  add_b2();
  const auto initial = ids_on_main(database);

  write_load load(*this, client(), owner.token, before.front());
  std::this_thread::sleep_for(300ms);

  // There.
  const auto started = start_move(tenant_id, "b2");
  ASSERT_EQ(started.status, 202u) << started.describe();
  const auto move_id = json_string(started.json(), "id");
  EXPECT_TRUE(is_uuid(move_id));
  EXPECT_EQ(json_string(started.json(), "state"), "copying");
  EXPECT_EQ(json_string(started.json(), "from"), "main");
  EXPECT_EQ(json_string(started.json(), "to"), "b2");
  EXPECT_EQ(started.header_or_empty("location"), "/admin/moves/" + move_id);
  // A second move of the same tenant while this one runs.
  expect_problem(start_move(tenant_id, "b2"), 409, "move_in_progress");
  const auto there = wait_for_move(move_id);
  ASSERT_EQ(json_string(there, "state"), "done") << json::serialize(there);
  const double freeze_there = json_field(there, "freeze_ms").to_number<double>();
  EXPECT_GT(freeze_there, 0.0);
  EXPECT_LE(freeze_there, 1000.0) << "MOVE_FREEZE_MAX_MS";
  EXPECT_EQ(server_of(tenant_id), "b2");
  std::this_thread::sleep_for(500ms);  // writes served from b2

  // The source no longer takes the application role; nothing of the replication is left.
  const auto& main = pg_cluster();
  EXPECT_NE(app_role_connects(main.port, main.app_user, main.app_password, database).find("permission denied"),
            std::string::npos);
  EXPECT_EQ(leftovers_on_main(database), 0u);
  EXPECT_EQ(leftovers_on_b2(database), 0u);
  EXPECT_TRUE(query_as_superuser("SELECT 1 FROM pg_publication", database).empty());

  // And back: the old source on main is dropped first (it is past use).
  const auto back = start_move(tenant_id, "main");
  ASSERT_EQ(back.status, 202u) << back.describe();
  const auto returned = wait_for_move(json_string(back.json(), "id"));
  ASSERT_EQ(json_string(returned, "state"), "done") << json::serialize(returned);
  EXPECT_EQ(server_of(tenant_id), "main");
  std::this_thread::sleep_for(500ms);
  load.stop();

  const auto failures = load.failures();
  EXPECT_TRUE(failures.empty()) << failures.size() << " requests failed, the first: " << failures.front();
  const auto acked = load.acked();
  EXPECT_GT(acked.size(), 20u);
  EXPECT_GT(load.reads(), 20);
  // The ledger: every acknowledged write is on the tenant's database exactly once, next to
  // what was there before the moves, and nothing else.
  const auto after = ids_on_main(database);
  std::multiset<std::string> expected = initial;
  expected.insert(acked.begin(), acked.end());
  EXPECT_EQ(after.size(), expected.size());
  EXPECT_TRUE(after == expected) << "rows on the target differ from the writes acknowledged";
  EXPECT_EQ(leftovers_on_main(database), 0u);
  EXPECT_EQ(leftovers_on_b2(database), 0u);
  EXPECT_NE(app_role_connects(b2_.port(), b2_.role(), b2_.password(), database).find("permission denied"),
            std::string::npos)
      << "the source on b2 is fenced after the move back";

  // GET /admin/moves lists both, newest first.
  const auto listed = get("/admin/moves", admin_token());
  ASSERT_EQ(listed.status, 200u);
  const auto listed_items = json_field(listed.json(), "items");
  const auto& items = listed_items.as_array();
  ASSERT_GE(items.size(), 2u);
  EXPECT_EQ(json_string(items.at(0), "id"), json_string(back.json(), "id"));
  EXPECT_EQ(json_string(items.at(1), "id"), move_id);

  // /metrics counts what this process drove.
  http_client raw(server().port());
  raw.set_checks(false);  // Prometheus text, not the API's JSON
  const auto metrics = raw.get("/metrics");
  ASSERT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.body.find("tenantd_moves_total{result=\"done\"} 2\n"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("tenantd_move_freeze_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("tenantd_moves_running 0\n"), std::string::npos);
  EXPECT_NE(metrics.body.find("tenantd_tenant_pool_server_connections{server=\"b2\"}"), std::string::npos);

  // tenantd tenants check: clean, move leftovers looked for.
  const auto check = run_cli(server(), {"tenants", "check"}, mover_env());
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_NE(check.output.find("move leftovers (replication objects of no move in progress): none"), std::string::npos)
      << check.output;
}

TEST_F(moves, the_contract_refuses_what_cannot_be_moved) {
  const auto tenant_id = unique_name("mv_");
  (void)tenant_with_owner(tenant_id);
  add_b2();
  EXPECT_EQ(post("/admin/tenants/" + tenant_id + "/move", json::object{{"to", "b2"}}).status, 401u);
  expect_problem(start_move(tenant_id, "nowhere"), 400, "invalid_input");
  expect_problem(start_move(tenant_id, "main"), 400, "invalid_input");  // its own server
  expect_problem(start_move(tenant_id, "Not A Name"), 400, "invalid_input");
  expect_problem(post("/admin/tenants/" + tenant_id + "/move", json::object{}, admin_token()), 400, "invalid_input");
  expect_problem(start_move("no_such_tenant", "b2"), 404, "tenant_not_found");
  expect_problem(get("/admin/moves/" + std::string("5b1c8e0e-2f4a-4c77-9a51-0c3f7f1d2a10"), admin_token()), 404,
                 "not_found");
  expect_problem(get("/admin/moves/not-a-uuid", admin_token()), 404, "not_found");
  const auto none = get("/admin/moves", admin_token());
  ASSERT_EQ(none.status, 200u);
  EXPECT_TRUE(json_field(none.json(), "items").as_array().empty());
  EXPECT_EQ(server_of(tenant_id), "main");
}

// Without MOVE_DATABASE_USERNAME a move names the missing setting.
class moves_unconfigured : public e2e_test {
 protected:
  second_cluster b2_;
};

TEST_F(moves_unconfigured, a_move_names_the_missing_setting) {
  const auto tenant_id = unique_name("mv_");
  (void)tenant_with_owner(tenant_id);
  const auto added = post("/admin/servers", json::object{{"name", "b2"}, {"url", b2_.url()}}, server().admin_token());
  ASSERT_EQ(added.status, 201u) << added.describe();
  const auto r = post("/admin/tenants/" + tenant_id + "/move", json::object{{"to", "b2"}}, server().admin_token());
  expect_problem(r, 409, "move_unavailable");
  EXPECT_NE(r.body.find("MOVE_DATABASE_USERNAME"), std::string::npos) << r.body;
}

// The source is locked by a transaction that does not end, so no cut-over gets its locks
// within MOVE_FREEZE_MAX_MS: each is abandoned (writes let go to the source), then the move is
// aborted; the tenant never left main and nothing of the move is left anywhere.
class moves_bounded : public moves {
 protected:
  env_overrides server_env() const override {
    auto env = mover_env();
    env["MOVE_FREEZE_MAX_MS"] = "200";
    return env;
  }
  // A session on the tenant's database that takes a lock letting the copy read (and, holding
  // no transaction id, not keeping the slot from being made) but conflicting with the
  // cut-over's, and keeps it until ROLLBACK.
  static held_session lock_out_cut_overs(const std::string& database) {
    held_session blocker(pg_cluster(), pg_cluster().superuser, database);
    blocker.exec("BEGIN");
    blocker.exec("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE");
    return blocker;
  }
};

TEST_F(moves_bounded, a_cut_over_that_cannot_lock_the_source_in_time_is_abandoned_and_the_move_aborted) {
  const auto tenant_id = unique_name("mv_");
  const auto owner = tenant_with_owner(tenant_id);
  const auto database = database_of(tenant_id);
  add_b2();
  auto blocker = lock_out_cut_overs(database);
  const auto started = start_move(tenant_id, "b2");
  ASSERT_EQ(started.status, 202u) << started.describe();
  const auto move_id = json_string(started.json(), "id");

  const auto ended = wait_for_move(move_id);
  blocker.exec("ROLLBACK");
  EXPECT_EQ(json_string(ended, "state"), "aborted") << json::serialize(ended);
  EXPECT_NE(json_string(ended, "error").find("locked in time"), std::string::npos) << json::serialize(ended);
  EXPECT_GE(json_field(ended, "attempts").to_number<int>(), 2);
  EXPECT_EQ(server_of(tenant_id), "main");
  // The tenant is served from main as before, writes included.
  const auto wrote = post(
      "/api/users", json::object{{"email", "after@example.com"}, {"first_name", "A"}, {"last_name", "B"}}, owner.token);
  EXPECT_EQ(wrote.status, 201u) << wrote.describe();
  EXPECT_EQ(ids_on_main(database).count(json_string(wrote.json(), "id")), 1u);
  EXPECT_FALSE(b2_.has_database(database)) << "the target database is dropped";
  EXPECT_EQ(leftovers_on_main(database), 0u);
  EXPECT_EQ(leftovers_on_b2(database), 0u);
  EXPECT_TRUE(query_as_superuser("SELECT 1 FROM pg_publication", database).empty());
}

// The target server goes away during the move (stopped, immediate): the move is aborted, the
// tenant serves from main throughout, and what the move left on the target (its subscription
// and database: the server was away at the abort) is reported by `tenants check` and removed
// by `tenants reconcile` once the server is back.
TEST_F(moves_bounded, the_target_going_away_aborts_the_move_and_reconcile_removes_what_it_left) {
  const auto tenant_id = unique_name("mv_");
  const auto owner = tenant_with_owner(tenant_id);
  const auto database = database_of(tenant_id);
  add_b2();
  // Keeps every cut-over from reaching the flip, so the move is still before it when the
  // target goes away, however fast the copy is.
  auto blocker = lock_out_cut_overs(database);
  const auto started = start_move(tenant_id, "b2");
  ASSERT_EQ(started.status, 202u) << started.describe();
  const auto move_id = json_string(started.json(), "id");
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline &&
         json_string(get("/admin/moves/" + move_id, admin_token()).json(), "state") == "copying")
    std::this_thread::sleep_for(10ms);
  b2_.stop("immediate");
  const auto ended = wait_for_move(move_id);
  blocker.exec("ROLLBACK");
  EXPECT_EQ(json_string(ended, "state"), "aborted") << json::serialize(ended);
  EXPECT_EQ(server_of(tenant_id), "main");
  const auto wrote =
      post("/api/users", json::object{{"email", "during@example.com"}, {"first_name", "D"}, {"last_name", "E"}},
           owner.token);
  EXPECT_EQ(wrote.status, 201u) << wrote.describe();
  EXPECT_EQ(leftovers_on_main(database), 0u) << "the slot on the source is dropped at the abort";

  b2_.start();
  const auto dirty = run_cli(server(), {"tenants", "check"}, mover_env());
  EXPECT_EQ(dirty.exit_code, 1) << dirty.output;
  EXPECT_NE(dirty.output.find("b2: database " + database), std::string::npos) << dirty.output;
  const auto reconciled = run_cli(server(), {"tenants", "reconcile"}, mover_env());
  EXPECT_EQ(reconciled.exit_code, 0) << reconciled.output;
  EXPECT_FALSE(b2_.has_database(database)) << reconciled.output;
  EXPECT_EQ(leftovers_on_b2(database), 0u);
  const auto clean = run_cli(server(), {"tenants", "check"}, mover_env());
  EXPECT_EQ(clean.exit_code, 0) << clean.output;
  EXPECT_EQ(ids_on_main(database).count(json_string(wrote.json(), "id")), 1u);
}

// The mover is killed (SIGKILL) at a step; the move is taken over once its lease runs out (by
// `tenantd tenants reconcile` or the server's own background task, whichever comes first) and
// finished: the tenant ends on the target with every row, and nothing of the move is left.
class moves_killed : public moves, public ::testing::WithParamInterface<const char*> {};

TEST_P(moves_killed, the_move_is_taken_over_and_finished_with_nothing_lost) {
  const auto tenant_id = unique_name("mv_");
  const auto owner = tenant_with_owner(tenant_id);
  const auto database = database_of(tenant_id);
  for (int i = 0; i < 50; ++i) {
    const json::object body{
        {"email", "k" + std::to_string(i) + "@example.com"}, {"first_name", "K"}, {"last_name", "L"}};
    ASSERT_EQ(post("/api/users", body, owner.token).status, 201u);
  }
  add_b2();
  const auto rows = ids_on_main(database);
  auto env = mover_env();
  env["TENANTD_FAULT_POINT"] = GetParam();
  const auto killed = run_cli(server(), {"tenants", "move", tenant_id, "--to", "b2"}, env);
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;
  const auto listed = get("/admin/moves", admin_token());
  ASSERT_EQ(listed.status, 200u);
  const auto listed_items = json_field(listed.json(), "items");
  const auto& items = listed_items.as_array();
  ASSERT_EQ(items.size(), 1u) << listed.body;
  const auto move_id = json_string(items.at(0), "id");

  // The tenant is served meanwhile (from one server or the other).
  const auto read = get("/api/users?page_size=1", owner.token);
  EXPECT_EQ(read.status, 200u) << read.describe();

  std::this_thread::sleep_for(2500ms);  // MOVE_LEASE_S=2
  const auto reconciled = run_cli(server(), {"tenants", "reconcile"}, mover_env());
  EXPECT_EQ(reconciled.exit_code, 0) << reconciled.output;
  const auto ended = wait_for_move(move_id);
  ASSERT_EQ(json_string(ended, "state"), "done") << json::serialize(ended);
  EXPECT_EQ(server_of(tenant_id), "b2");
  EXPECT_TRUE(ids_on_b2(database) == rows);
  const auto wrote = post(
      "/api/users", json::object{{"email", "x@example.com"}, {"first_name", "X"}, {"last_name", "Y"}}, owner.token);
  EXPECT_EQ(wrote.status, 201u) << wrote.describe();
  EXPECT_EQ(ids_on_b2(database).count(json_string(wrote.json(), "id")), 1u);
  EXPECT_EQ(leftovers_on_main(database), 0u);
  EXPECT_EQ(leftovers_on_b2(database), 0u);
  const auto check = run_cli(server(), {"tenants", "check"}, mover_env());
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

INSTANTIATE_TEST_SUITE_P(each_step, moves_killed,
                         ::testing::Values("move_after_target", "move_after_subscribe", "move_before_flip",
                                           "move_after_flip", "move_after_unsubscribe"));

}  // namespace
}  // namespace tenantd::test

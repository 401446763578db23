// Sessions as a client sees them: refresh rotation and reuse detection under concurrency,
// the rows a session leaves in master staying bounded, logout of one session (with and
// without a body) and of all, and a deleted tenant's tokens never working again, not even
// after the tenant is restored from a backup under the same id.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tenantd::test {
namespace {

namespace json = boost::json;

class sessions : public e2e_test {
 protected:
  http_response refresh(std::string_view refresh_token) const {
    return post("/auth/refresh", json::object{{"refresh_token", refresh_token}});
  }
  // Refreshes and returns the new pair; the refresh must answer 200.
  session rotate(const session& s) const {
    const auto r = refresh(s.refresh_token);
    EXPECT_EQ(r.status, 200u) << r.describe();
    session next = s;
    next.token = json_string(r.json(), "token");
    next.refresh_token = json_string(r.json(), "refresh_token");
    return next;
  }
  unsigned me(std::string_view token) const { return get("/api/me", token).status; }
  std::int64_t master_count(const std::string& sql) const {
    const auto rows = admin_query(sql, server().master_database());
    return rows.empty() ? -1 : std::stoll(rows[0][0]);
  }
};

TEST_F(sessions, eight_concurrent_refreshes_of_one_token_have_one_winner_then_the_session_is_revoked) {
  const auto owner = tenant_with_owner("race_co");
  std::mutex mutex;
  std::vector<http_response> answers;
  answers.reserve(8);
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::atomic<int> ready{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      ++ready;
      while (ready.load() < 8) std::this_thread::yield();
      auto r = client().send_json("POST", "/auth/refresh", json::object{{"refresh_token", owner.refresh_token}});
      std::lock_guard lock(mutex);
      answers.push_back(std::move(r));
    });
  for (auto& t : threads) t.join();
  std::vector<const http_response*> winners;
  winners.reserve(answers.size());
  for (const auto& r : answers) {
    if (r.status == 200)
      winners.push_back(&r);
    else
      expect_problem(r, 401);
  }
  ASSERT_EQ(winners.size(), 1u) << "exactly one refresh may win";
  const auto winner = winners.front()->json();
  EXPECT_EQ(refresh(json_string(winner, "refresh_token")).status, 401u) << "the session must be revoked";
  EXPECT_EQ(me(json_string(winner, "token")), 401u) << "the winner's access token must stop working";
  EXPECT_EQ(me(owner.token), 401u) << "the session's first access token must stop working";
  EXPECT_EQ(login("owner.race_co@example.com").tenant_id, "race_co") << "a new login starts a new session";
}

TEST_F(sessions, presenting_a_rotated_token_revokes_the_session) {
  const auto first = tenant_with_owner("reuse_co");
  auto current = rotate(first);
  current = rotate(current);
  expect_problem(refresh(first.refresh_token), 401);
  EXPECT_EQ(refresh(current.refresh_token).status, 401u) << "the current refresh token died with the session";
  EXPECT_EQ(me(current.token), 401u);
}

TEST_F(sessions, a_session_keeps_a_bounded_number_of_refresh_token_rows) {
  auto s = tenant_with_owner("bound_co");
  const auto first = s;
  for (int i = 0; i < 50; ++i) s = rotate(s);
  EXPECT_LE(master_count("SELECT count(*) FROM refresh_tokens"), 9) << "50 refreshes of one session";
  EXPECT_EQ(master_count("SELECT count(*) FROM sessions"), 1);
  EXPECT_EQ(me(s.token), 200u);
  EXPECT_EQ(me(first.token), 200u) << "access tokens of the session stay valid until they expire";
  // A token rotated a few refreshes ago is still recognized as reused.
  auto older = s;
  s = rotate(s);
  s = rotate(s);
  expect_problem(refresh(older.refresh_token), 401);
  EXPECT_EQ(me(s.token), 401u) << "reuse of a recent token must revoke the session";
}

TEST_F(sessions, logout_without_a_body_ends_only_the_callers_session) {
  const auto a = tenant_with_owner("out_co");
  const auto b = login("owner.out_co@example.com");
  const auto r = client().request("POST", "/auth/logout", bearer(a.token));  // no body, no Content-Type
  EXPECT_EQ(r.status, 204u) << r.describe();
  EXPECT_EQ(me(a.token), 401u);
  EXPECT_EQ(refresh(a.refresh_token).status, 401u);
  EXPECT_EQ(me(b.token), 200u) << "another session of the same account keeps working";
  EXPECT_EQ(rotate(b).tenant_id, "out_co");
}

TEST_F(sessions, logout_with_an_empty_object_ends_only_the_callers_session) {
  const auto a = tenant_with_owner("out_co");
  const auto b = login("owner.out_co@example.com");
  EXPECT_EQ(post("/auth/logout", json::object{}, a.token).status, 204u);
  EXPECT_EQ(me(a.token), 401u);
  EXPECT_EQ(me(b.token), 200u);
}

TEST_F(sessions, logout_all_ends_every_session_of_the_account_in_the_tenant) {
  const auto a = tenant_with_owner("all_co");
  const auto b = login("owner.all_co@example.com");
  const auto other = add_member(a, "other@all.example");
  EXPECT_EQ(post("/auth/logout", json::object{{"all", true}}, a.token).status, 204u);
  EXPECT_EQ(me(a.token), 401u);
  EXPECT_EQ(me(b.token), 401u);
  EXPECT_EQ(refresh(b.refresh_token).status, 401u);
  EXPECT_EQ(me(other.token), 200u) << "another account's session is not touched";
}

TEST_F(sessions, deleting_a_tenant_ends_its_sessions_and_a_restore_does_not_revive_them) {
  const auto owner = tenant_with_owner("gone_co");
  const auto admin = bearer(server().admin_token());
  const auto backup = client().send_json("POST", "/admin/tenants/gone_co/backup", json::object{}, admin);
  ASSERT_EQ(backup.status, 201u) << backup.describe();
  const auto name = json_string(backup.json(), "backup");
  const auto deleted = client().request("DELETE", "/admin/tenants/gone_co", admin);
  ASSERT_EQ(deleted.status / 100, 2u) << deleted.describe();
  EXPECT_EQ(master_count("SELECT count(*) FROM sessions WHERE tenant_id = 'gone_co' AND ended_at IS NULL"), 0)
      << "deletion must end every session";

  const auto restored =
      client().send_json("POST", "/admin/tenants/gone_co/restore", json::object{{"backup", name}}, admin);
  ASSERT_EQ(restored.status, 201u) << restored.describe();
  EXPECT_EQ(me(owner.token), 401u) << "an access token from before the deletion works again";
  EXPECT_EQ(refresh(owner.refresh_token).status, 401u) << "a refresh token from before the deletion works again";
  EXPECT_EQ(master_count("SELECT count(*) FROM sessions WHERE tenant_id = 'gone_co'"), 0)
      << "a restored tenant starts with no session";
  EXPECT_EQ(login("owner.gone_co@example.com").tenant_id, "gone_co") << "its members can log in again";
}

}  // namespace
}  // namespace tenantd::test

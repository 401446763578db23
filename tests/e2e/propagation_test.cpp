// Two server processes on one master database: a change made through server A (member
// removed, role lowered, tenant suspended, user deleted, logout everywhere) stops the token
// working on server B in under a second. B's access cache lives 30 s, so this measures the
// LISTEN/NOTIFY path; it must also survive the listener's connection being killed.
#include "support/e2e_fixture.hpp"
#include "support/e2e_listeners.hpp"
#include "support/pg_cluster.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How long a test waits for server B to refuse. Generous, so that machine speed never decides
// a test: what proves LISTEN/NOTIFY is the control test below, where B keeps answering from
// its cache for the same budget when no notification comes (its TTL is 10 minutes while the
// listener is connected). Typical propagation times are printed, not asserted.
constexpr auto propagation_budget = 5000ms;

struct refusal {
  unsigned status{0};
  std::chrono::milliseconds after{0};  // since the change was acknowledged by server A
  std::string body;
};

class propagation : public e2e_test {
 protected:
  void SetUp() override {
    e2e_test::SetUp();
    if (HasFatalFailure()) return;
    second_ = std::make_unique<e2e_server>();
    second_->share_databases_with(server());
    try {
      second_->start();
    } catch (const std::exception& e) {
      FAIL() << "the second tenantd did not start: " << e.what();
    }
    ASSERT_TRUE(second_->wait_ready()) << second_->log_tail();
    b_ = std::make_unique<http_client>(second_->port());
  }

  void TearDown() override {
    if (second_ && HasFailure()) std::cerr << "---- server B log tail ----\n" << second_->log_tail() << "\n";
    b_.reset();
    second_.reset();  // before A drops the databases
    e2e_test::TearDown();
  }

  // GET `target` on server B with `token`.
  http_response on_b(std::string_view target, std::string_view token) const { return b_->get(target, bearer(token)); }

  // Checks B serves `target` (filling its cache), runs `change` on A, then polls B every
  // 20 ms until it stops answering 200; returns when (after `change` returned) and how.
  refusal measure(std::string_view target, std::string_view token, const std::function<void()>& change) const {
    for (int i = 0; i < 2; ++i) {
      const auto warm = on_b(target, token);
      EXPECT_EQ(warm.status, 200u) << "server B before the change:\n" << warm.describe();
    }
    change();
    const auto acknowledged = clock_type::now();
    const auto deadline = acknowledged + propagation_budget;
    for (;;) {
      const auto r = on_b(target, token);
      const auto now = clock_type::now();
      if (r.status != 200 || now >= deadline)
        return {r.status, std::chrono::duration_cast<std::chrono::milliseconds>(now - acknowledged), r.body};
      std::this_thread::sleep_for(20ms);  // polling with a deadline
    }
  }

  static void expect_refused_within_budget(const refusal& r, std::initializer_list<unsigned> statuses) {
    EXPECT_NE(r.status, 200u) << "server B still accepted the token " << r.after.count() << " ms after the change";
    EXPECT_TRUE(std::find(statuses.begin(), statuses.end(), r.status) != statuses.end())
        << "status " << r.status << ": " << r.body;
    std::cout << "[ propagation ] refused with " << r.status << " after " << r.after.count() << " ms\n";
  }

  e2e_server& server_b() { return *second_; }
  const http_client* b_client() const { return b_.get(); }

 private:
  std::unique_ptr<e2e_server> second_;
  std::unique_ptr<http_client> b_;
};

TEST_F(propagation, removed_member_is_refused_on_the_other_server) {
  const auto owner = tenant_with_owner("prop_rm");
  const auto member = add_member(owner, "leaver@prop.example");
  const auto refused = measure("/api/me", member.token, [&] {
    const auto r = del("/api/members/" + member.user_id, owner.token);
    ASSERT_EQ(r.status, 204u) << r.describe();
  });
  expect_refused_within_budget(refused, {401, 403});
  EXPECT_EQ(on_b("/api/me", owner.token).status, 200u) << "the owner must be unaffected";
}

TEST_F(propagation, lowered_role_applies_on_the_other_server) {
  const auto owner = tenant_with_owner("prop_role");
  const auto admin = add_member(owner, "admin@prop.example");
  const auto promoted = put("/api/members/" + admin.user_id, json::object{{"role", "admin"}}, owner.token);
  ASSERT_EQ(promoted.status, 200u) << promoted.describe();
  const auto refused = measure("/api/members", admin.token, [&] {
    const auto r = put("/api/members/" + admin.user_id, json::object{{"role", "member"}}, owner.token);
    ASSERT_EQ(r.status, 200u) << r.describe();
  });
  expect_refused_within_budget(refused, {403});
  // The token still works for what a member may do, with the new role.
  const auto me = on_b("/api/me", admin.token);
  ASSERT_EQ(me.status, 200u) << me.describe();
  EXPECT_EQ(json_string(me.json(), "role"), "member") << me.describe();
}

TEST_F(propagation, suspended_tenant_is_refused_on_the_other_server) {
  const auto owner = tenant_with_owner("prop_susp");
  const auto refused = measure("/api/me", owner.token, [&] {
    const auto r = post("/admin/tenants/prop_susp/suspend", json::object{}, server().admin_token());
    ASSERT_EQ(r.status, 200u) << r.describe();
  });
  expect_refused_within_budget(refused, {401, 403});
}

TEST_F(propagation, deleted_user_is_refused_on_the_other_server) {
  const auto owner = tenant_with_owner("prop_del");
  const auto member = add_member(owner, "gone@prop.example");
  const auto refused = measure("/api/me", member.token, [&] {
    const auto r = del("/api/users/" + member.user_id, owner.token);
    ASSERT_EQ(r.status, 204u) << r.describe();
  });
  expect_refused_within_budget(refused, {401, 403});
}

TEST_F(propagation, logout_everywhere_is_refused_on_the_other_server) {
  const auto owner = tenant_with_owner("prop_out");
  const auto first = login(owner.email, default_password, "prop_out");
  const auto second = login(owner.email, default_password, "prop_out");
  const auto refused = measure("/api/me", second.token, [&] {
    const auto r = post("/auth/logout", json::object{{"all", true}}, first.token);
    ASSERT_EQ(r.status, 204u) << r.describe();
  });
  expect_refused_within_budget(refused, {401});
  EXPECT_EQ(on_b("/api/me", owner.token).status, 401u) << "every session of the account ended";
}

// Ends a membership in master directly, without the notification the server would send:
// what a missed notification looks like to the other processes.
void remove_membership_silently(const std::string& master, const std::string& tenant, const std::string& account) {
  admin_exec("DELETE FROM memberships WHERE tenant_id = '" + tenant + "' AND account_id = '" + account + "'", master);
}

// Polls `target` on a server until it stops answering 200 or `budget` passes.
refusal poll_until_refused(const http_client& client, std::string_view target, std::string_view token,
                           clock_type::time_point since, std::chrono::milliseconds budget) {
  for (;;) {
    const auto r = client.get(target, bearer(token));
    const auto now = clock_type::now();
    if (r.status != 200 || now - since >= budget)
      return {r.status, std::chrono::duration_cast<std::chrono::milliseconds>(now - since), r.body};
    std::this_thread::sleep_for(20ms);  // polling with a deadline
  }
}

// The control for every test above: without a notification B keeps its cached answer for the
// whole budget, so a refusal within it can only come from LISTEN/NOTIFY.
TEST_F(propagation, without_a_notification_the_cache_keeps_answering) {
  const auto owner = tenant_with_owner("prop_ctl");
  const auto member = add_member(owner, "cached@prop.example");
  ASSERT_EQ(on_b("/api/me", member.token).status, 200u);
  remove_membership_silently(server().master_database(), "prop_ctl", member.user_id);
  const auto held = poll_until_refused(*b_client(), "/api/me", member.token, clock_type::now(), propagation_budget);
  EXPECT_EQ(held.status, 200u) << "B refused after " << held.after.count()
                               << " ms without a notification: the cache is not in play, so the propagation "
                                  "tests prove nothing";
  admin_exec("SELECT pg_notify('tenantd_invalidate', 'member:prop_ctl:" + member.user_id + "')",
             server().master_database());
  expect_refused_within_budget(
      poll_until_refused(*b_client(), "/api/me", member.token, clock_type::now(), propagation_budget), {401, 403});
}

TEST_F(propagation, listener_reconnects_after_its_connection_is_killed_and_forgets_what_it_missed) {
  const auto owner = tenant_with_owner("prop_kill");
  const auto missed = add_member(owner, "missed@prop.example");
  const auto late = add_member(owner, "late@prop.example");

  // A change whose notification B never sees: B still answers from its cache.
  ASSERT_EQ(on_b("/api/me", missed.token).status, 200u);
  remove_membership_silently(server().master_database(), "prop_kill", missed.user_id);
  ASSERT_EQ(on_b("/api/me", missed.token).status, 200u) << "B should still answer from its cache";

  const auto before = listener_backends(server().master_database());
  ASSERT_EQ(before.size(), 2u) << "one listener per server process";
  const auto killed = clock_type::now();
  for (const auto& pid : before) admin_exec("SELECT pg_terminate_backend(" + pid + ")");

  // On reconnect B clears its caches, since notifications may have been missed meanwhile.
  const auto cleared = poll_until_refused(*b_client(), "/api/me", missed.token, killed, 10s);
  EXPECT_TRUE(cleared.status == 401 || cleared.status == 403) << cleared.status << ": " << cleared.body;
  std::cout << "[ propagation ] cache cleared " << cleared.after.count() << " ms after the listener was killed\n";

  // Both listeners are back on new connections (the reconnect back-off starts at 200 ms).
  std::set<std::string> after;
  const auto deadline = clock_type::now() + 15s;
  for (;;) {
    after = listener_backends(server().master_database());
    bool fresh = after.size() == 2;
    for (const auto& pid : after) fresh = fresh && before.count(pid) == 0;
    if (fresh || clock_type::now() >= deadline) break;
    std::this_thread::sleep_for(20ms);  // polling with a deadline
  }
  ASSERT_EQ(after.size(), 2u) << "the listeners did not reconnect; B log:\n" << server_b().log_tail();
  for (const auto& pid : after) EXPECT_EQ(before.count(pid), 0u) << "backend " << pid << " survived termination";
  EXPECT_NE(server_b().log_text().find("invalidation listener lost its connection"), std::string::npos)
      << server_b().log_tail();

  // And notifications flow again.
  const auto refused = measure("/api/me", late.token, [&] {
    const auto r = del("/api/members/" + late.user_id, owner.token);
    ASSERT_EQ(r.status, 204u) << r.describe();
  });
  expect_refused_within_budget(refused, {401, 403});
}

}  // namespace
}  // namespace tenantd::test

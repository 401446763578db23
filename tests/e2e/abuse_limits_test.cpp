// Abuse limits as a client sees them: the hourly per-account cap on login failures, the
// registration limit per client, password guessing through registration, the client address
// (X-Forwarded-For ignored unless the peer is a trusted proxy), and an unknown email costing
// as much time as a wrong password.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace tenantd::test {
namespace {

namespace json = boost::json;

// ---- per account: a second, hourly window ------------------------------------------------

class account_hourly_limit : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "1000"}, {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "4"}};
  }
};

TEST_F(account_hourly_limit, failures_past_the_hourly_cap_lock_the_account_for_up_to_an_hour) {
  (void)tenant_with_owner("hour_co", "victim@hour.example");
  set_registration(login("victim@hour.example").token, "open");
  (void)register_user("hour_co", "bystander@hour.example");

  for (int i = 0; i < 4; ++i)
    expect_problem(login_response("victim@hour.example", "wrong-password-x"), 401, "invalid_credentials");
  const auto locked = login_response("victim@hour.example", "wrong-password-x");
  expect_problem(locked, 429, "too_many_attempts");
  const auto retry_after = locked.header_or_empty("retry-after");
  ASSERT_FALSE(retry_after.empty()) << locked.describe();
  const auto wait = std::stoll(retry_after);
  EXPECT_GT(wait, 15 * 60) << "the hourly window, not the 15-minute one, must be the reason:\n" << locked.describe();
  EXPECT_LE(wait, 3600) << locked.describe();

  const auto right = login_response("victim@hour.example", default_password);
  expect_problem(right, 429, "too_many_attempts");
  EXPECT_EQ(login("bystander@hour.example").tenant_id, "hour_co") << "another account must not be locked";
}

// ---- registrations per client --------------------------------------------------------------

class registration_limit : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"REGISTER_PER_CLIENT", "3"}}; }
};

TEST_F(registration_limit, too_many_registrations_from_one_client_are_429) {
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(register_response("reg_co", "not-an-email").status, 400u) << "invalid requests must not count";
  const auto owner = tenant_with_owner("reg_co");  // registration 1
  set_registration(owner.token, "open");
  EXPECT_EQ(register_response("reg_co", "two@reg.example").status, 201u);
  EXPECT_EQ(register_response("reg_co", "three@reg.example").status, 201u);
  const auto fourth = register_response("reg_co", "four@reg.example");
  expect_problem(fourth, 429, "too_many_requests");
  EXPECT_TRUE(fourth.has_header("retry-after")) << fourth.describe();
  EXPECT_EQ(login_response("four@reg.example", default_password).status, 401u) << "the refused account exists";
  // Logging in is not registering: existing users are unaffected.
  EXPECT_EQ(login("two@reg.example").tenant_id, "reg_co");
}

// ---- registering an existing email checks its password: a login attempt ----------------------

class register_guessing : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"}}; }
};

TEST_F(register_guessing, wrong_passwords_through_registration_lock_the_account) {
  (void)tenant_with_owner("home_co", "victim@guess.example");
  const auto attacker = tenant_with_owner("bait_co", "attacker@guess.example");
  set_registration(attacker.token, "open");
  for (int i = 0; i < 3; ++i)
    expect_problem(register_response("bait_co", "victim@guess.example", "guess-number-" + std::to_string(i)), 409,
                   "email_taken");
  const auto locked = register_response("bait_co", "victim@guess.example", "guess-number-4");
  expect_problem(locked, 429, "too_many_attempts");
  EXPECT_TRUE(locked.has_header("retry-after")) << locked.describe();
  expect_problem(register_response("bait_co", "victim@guess.example", default_password), 429, "too_many_attempts");
  expect_problem(login_response("victim@guess.example", default_password), 429, "too_many_attempts");
  EXPECT_EQ(login("attacker@guess.example").tenant_id, "bait_co") << "another account must not be locked";
}

TEST_F(register_guessing, wrong_passwords_through_tenant_creation_lock_the_account) {
  (void)tenant_with_owner("home_co", "victim@guess.example");
  const auto owner_with = [](std::string_view password) {
    return json::object{
        {"email", "victim@guess.example"}, {"password", password}, {"first_name", "Vic"}, {"last_name", "Tim"}};
  };
  for (int i = 0; i < 3; ++i) {
    const auto r =
        create_tenant_response("bait_" + std::to_string(i), "Bait", owner_with("guess-number-" + std::to_string(i)));
    expect_problem(r, 401, "invalid_credentials");
  }
  const auto locked = create_tenant_response("bait_9", "Bait", owner_with(default_password));
  expect_problem(locked, 429, "too_many_attempts");
  EXPECT_TRUE(locked.has_header("retry-after")) << locked.describe();
  EXPECT_TRUE(
      admin_query("SELECT 1 FROM pg_database WHERE datname = '" + server().tenant_database("bait_9") + "'").empty())
      << "a refused creation made a database";
  expect_problem(login_response("victim@guess.example", default_password), 429, "too_many_attempts");
}

// ---- the client address -------------------------------------------------------------------

class client_limit : public e2e_test {
 protected:
  http_response login_with(std::string_view email, std::string_view password, const header_list& headers) const {
    return post("/auth/login", json::object{{"email", email}, {"password", password}}, {}, headers);
  }
  static header_list forwarded(std::string_view value) { return {{"X-Forwarded-For", std::string(value)}}; }
};

class client_limit_without_proxy : public client_limit {
 protected:
  env_overrides server_env() const override { return {{"LOGIN_MAX_FAILURES_PER_CLIENT", "3"}}; }
};

TEST_F(client_limit_without_proxy, a_spoofed_forwarded_for_does_not_dodge_the_client_limit) {
  (void)tenant_with_owner("spoof_co", "real@spoof.example");
  for (int i = 0; i < 3; ++i) {
    const auto r = login_with("nobody" + std::to_string(i) + "@spoof.example", "wrong-password-x",
                              forwarded("198.51.100." + std::to_string(i + 1)));
    expect_problem(r, 401, "invalid_credentials");
  }
  const auto spoofed = login_with("nobody9@spoof.example", "wrong-password-x", forwarded("198.51.100.77"));
  expect_problem(spoofed, 429, "too_many_attempts");
  EXPECT_TRUE(spoofed.has_header("retry-after")) << spoofed.describe();
  expect_problem(login_with("real@spoof.example", default_password, forwarded("203.0.113.200")), 429,
                 "too_many_attempts");
  const auto log = server().log_text();
  EXPECT_NE(log.find("route=/auth/login status=429"), std::string::npos) << server().log_tail();
  EXPECT_EQ(log.find("client=198.51.100."), std::string::npos) << "the access log took the header's word";
  EXPECT_NE(log.find("client=127.0.0.1"), std::string::npos) << server().log_tail();
}

class client_limit_behind_proxy : public client_limit {
 protected:
  env_overrides server_env() const override {
    return {{"LOGIN_MAX_FAILURES_PER_CLIENT", "3"}, {"TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"}};
  }
};

TEST_F(client_limit_behind_proxy, clients_behind_a_trusted_proxy_are_counted_separately) {
  (void)tenant_with_owner("proxy_co", "real@proxy.example");
  for (int i = 0; i < 3; ++i)
    expect_problem(
        login_with("nobody" + std::to_string(i) + "@proxy.example", "wrong-password-x", forwarded("203.0.113.10")), 401,
        "invalid_credentials");
  expect_problem(login_with("nobody8@proxy.example", "wrong-password-x", forwarded("203.0.113.10")), 429,
                 "too_many_attempts");
  // Prepending a made-up address does not help: the proxy appended the real one on the right.
  expect_problem(login_with("nobody8@proxy.example", "wrong-password-x", forwarded("192.0.2.99, 203.0.113.10")), 429,
                 "too_many_attempts");
  // Nor does a made-up address after a trusted one (an inner proxy hop is skipped).
  expect_problem(login_with("nobody8@proxy.example", "wrong-password-x", forwarded("203.0.113.10, 10.1.2.3")), 429,
                 "too_many_attempts");

  // Another client behind the same proxy is not locked.
  expect_problem(login_with("nobody8@proxy.example", "wrong-password-x", forwarded("203.0.113.11")), 401,
                 "invalid_credentials");
  const auto ok = login_with("real@proxy.example", default_password, forwarded("203.0.113.12"));
  EXPECT_EQ(ok.status, 200u) << ok.describe();

  const auto log = server().log_text();
  EXPECT_NE(log.find("client=203.0.113.11"), std::string::npos) << "the access log shows the client, not the proxy:\n"
                                                                << server().log_tail();
  EXPECT_NE(log.find("client=203.0.113.10"), std::string::npos) << server().log_tail();
  EXPECT_EQ(log.find("client=192.0.2.99"), std::string::npos) << server().log_tail();
}

// ---- timing: an unknown email costs a password check too -------------------------------------

class login_timing : public e2e_test {};

double median_ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST_F(login_timing, unknown_email_takes_about_as_long_as_a_wrong_password) {
  (void)tenant_with_owner("time_co", "known@time.example");
  std::vector<double> unknown, wrong;
  const auto timed = [this](std::string_view email) {
    const auto started = std::chrono::steady_clock::now();
    const auto r = login_response(email, "not-the-password");
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    EXPECT_EQ(r.status, 401u) << r.describe();
    return ms;
  };
  for (int i = 0; i < 15; ++i) {  // interleaved, so load on the machine hits both alike
    unknown.push_back(timed("nobody" + std::to_string(i) + "@time.example"));
    wrong.push_back(timed("known@time.example"));
  }
  const double u = median_ms(unknown);
  const double w = median_ms(wrong);
  // Generous bounds (shared, sanitized build; speed is a benchmark's business): without the
  // dummy hash an unknown email answers more than ten times faster than a wrong password.
  EXPECT_GT(u, 0.3 * w) << "unknown email median " << u << " ms, wrong password median " << w << " ms";
  EXPECT_LT(u, 3.0 * w) << "unknown email median " << u << " ms, wrong password median " << w << " ms";
}

}  // namespace
}  // namespace tenantd::test

// Login limits that cannot be raced, as a client sees them: concurrent wrong passwords get no
// more password checks than the failure limit allows (on one process and across processes
// sharing the master database, through login, registration and tenant creation), successful
// logins are limited per account and per client, and one client flooding the password-hashing
// queue does not keep another client's login waiting or refused.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tenantd::test {
namespace {

namespace json = boost::json;

// Runs `n` copies of `request` at once (each on its own connection) and counts the statuses.
std::map<unsigned, int> concurrently(int n, const std::function<http_response(int)>& request) {
  std::mutex mutex;
  std::map<unsigned, int> statuses;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  std::atomic<int> ready{0};
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < n) std::this_thread::yield();  // start together
      const auto r = request(i);
      std::lock_guard lock(mutex);
      ++statuses[r.status];
    });
  for (auto& t : threads) t.join();
  return statuses;
}

std::string describe(const std::map<unsigned, int>& statuses) {
  std::string out;
  for (const auto& [status, count] : statuses) out += std::to_string(status) + ": " + std::to_string(count) + "  ";
  return out;
}

json::object credentials(std::string_view email, std::string_view password) {
  return json::object{{"email", email}, {"password", password}};
}

// ---- failures: attempts in flight count --------------------------------------------------

class concurrent_guesses : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "10"},
            {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "1000"},
            {"LOGIN_MAX_FAILURES_PER_CLIENT", "1000"},
            {"ARGON2_MAX_QUEUE", "256"},
            {"POOL_ACQUIRE_TIMEOUT_MS", "30000"}};
  }
};

TEST_F(concurrent_guesses, forty_concurrent_wrong_passwords_get_ten_password_checks) {
  (void)tenant_with_owner("guess_co", "victim@guess.example");
  const http_client& c = client();
  const auto statuses = concurrently(40, [&c](int i) {
    return c.send_json("POST", "/auth/login",
                       credentials("victim@guess.example", "wrong-password-" + std::to_string(i)));
  });
  EXPECT_EQ(statuses.count(401) ? statuses.at(401) : 0, 10) << describe(statuses);
  EXPECT_EQ(statuses.count(429) ? statuses.at(429) : 0, 30) << describe(statuses);
  const auto locked = login_response("victim@guess.example", default_password);
  expect_problem(locked, 429, "too_many_attempts");
  EXPECT_TRUE(locked.has_header("retry-after")) << locked.describe();
}

TEST_F(concurrent_guesses, concurrent_registrations_with_wrong_passwords_get_ten_checks) {
  (void)tenant_with_owner("home_co", "victim@guess.example");
  const auto bait = tenant_with_owner("bait_co", "attacker@guess.example");
  set_registration(bait.token, "open");
  const http_client& c = client();
  const auto statuses = concurrently(30, [&c](int i) {
    return c.send_json("POST", "/auth/register",
                       json::object{{"email", "victim@guess.example"},
                                    {"password", "wrong-password-" + std::to_string(i)},
                                    {"first_name", "Vic"},
                                    {"last_name", "Tim"},
                                    {"tenant_id", "bait_co"}});
  });
  EXPECT_EQ(statuses.count(409) ? statuses.at(409) : 0, 10) << describe(statuses);
  EXPECT_EQ(statuses.count(429) ? statuses.at(429) : 0, 20) << describe(statuses);
}

// Each refused creation costs a database; a smaller limit keeps the test light.
class concurrent_owner_guesses : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"},
            {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "1000"},
            {"LOGIN_MAX_FAILURES_PER_CLIENT", "1000"},
            {"TENANT_CREATES_PER_CLIENT", "1000"},
            {"POOL_ACQUIRE_TIMEOUT_MS", "30000"}};
  }
};

TEST_F(concurrent_owner_guesses, concurrent_tenant_creations_with_wrong_owner_passwords_get_three_checks) {
  (void)tenant_with_owner("home_co", "victim@guess.example");
  const http_client& c = client();
  const auto statuses = concurrently(8, [&c](int i) {
    return c.send_json("POST", "/tenants",
                       json::object{{"id", "bait_" + std::to_string(i)},
                                    {"name", "Bait"},
                                    {"owner", json::object{{"email", "victim@guess.example"},
                                                           {"password", "wrong-password-" + std::to_string(i)},
                                                           {"first_name", "Vic"},
                                                           {"last_name", "Tim"}}}});
  });
  // Three owner passwords are checked (and refused: the code is the tenant-creation contract's
  // business); the other five are refused before any check.
  EXPECT_EQ(statuses.count(429) ? statuses.at(429) : 0, 5) << describe(statuses);
  EXPECT_EQ(statuses.count(201) ? statuses.at(201) : 0, 0) << describe(statuses);
  for (const auto& [status, count] : statuses) EXPECT_LT(status, 500u) << describe(statuses);
}

// Two processes behind a load balancer share the master database, and so the limit.
TEST_F(concurrent_guesses, the_account_limit_holds_across_processes) {
  (void)tenant_with_owner("guess_co", "victim@guess.example");
  e2e_server second;
  second.share_databases_with(server());
  second.start({{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "10"},
                {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "1000"},
                {"LOGIN_MAX_FAILURES_PER_CLIENT", "1000"},
                {"ARGON2_MAX_QUEUE", "256"},
                {"POOL_ACQUIRE_TIMEOUT_MS", "30000"}});
  ASSERT_TRUE(second.wait_ready());
  const http_client first_process(server().port());
  const http_client second_process(second.port());
  const auto statuses = concurrently(30, [&](int i) {
    const auto& c = i % 2 == 0 ? first_process : second_process;
    return c.send_json("POST", "/auth/login",
                       credentials("victim@guess.example", "wrong-password-" + std::to_string(i)));
  });
  EXPECT_EQ(statuses.count(401) ? statuses.at(401) : 0, 10) << describe(statuses);
  EXPECT_EQ(statuses.count(429) ? statuses.at(429) : 0, 20) << describe(statuses);
  expect_problem(second_process.send_json("POST", "/auth/login", credentials("victim@guess.example", default_password)),
                 429, "too_many_attempts");
  (void)second.stop();
}

// ---- successful logins are limited too -------------------------------------------------------

class success_limits : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {
        {"LOGIN_SUCCESSES_PER_ACCOUNT", "3"}, {"LOGIN_SUCCESSES_PER_CLIENT", "5"}, {"TRUSTED_PROXIES", "127.0.0.1"}};
  }
  http_response login_from(std::string_view client_address, std::string_view email) const {
    return post("/auth/login", credentials(email, default_password), {},
                {{"X-Forwarded-For", std::string(client_address)}});
  }
};

TEST_F(success_limits, an_account_gets_its_limit_of_logins_per_minute) {
  const auto owner = tenant_with_owner("busy_co", "busy@busy.example");  // login 1 (127.0.0.1)
  const auto bystander = add_member(owner, "calm@busy.example");         // another account
  EXPECT_EQ(login_from("198.51.100.1", "busy@busy.example").status, 200u);
  EXPECT_EQ(login_from("198.51.100.2", "busy@busy.example").status, 200u);
  const auto refused = login_from("198.51.100.3", "busy@busy.example");
  expect_problem(refused, 429, "too_many_requests");
  ASSERT_TRUE(refused.has_header("retry-after")) << refused.describe();
  EXPECT_GE(std::stoll(refused.header_or_empty("retry-after")), 1) << refused.describe();
  EXPECT_LE(std::stoll(refused.header_or_empty("retry-after")), 60) << refused.describe();
  EXPECT_EQ(login_from("198.51.100.4", "calm@busy.example").status, 200u) << "another account is not limited";
  (void)bystander;
}

TEST_F(success_limits, a_client_gets_its_limit_of_logins_per_minute) {
  const auto owner = tenant_with_owner("busy_co", "a@busy.example");  // from 127.0.0.1
  set_registration(owner.token, "open");
  for (const char* email : {"b@busy.example", "c@busy.example", "d@busy.example"})
    (void)register_user("busy_co", email);
  int ok = 0;
  for (const char* email : {"a@busy.example", "b@busy.example", "c@busy.example", "d@busy.example", "b@busy.example"})
    ok += login_from("203.0.113.7", email).status == 200u ? 1 : 0;
  EXPECT_EQ(ok, 5);
  const auto refused = login_from("203.0.113.7", "c@busy.example");
  expect_problem(refused, 429, "too_many_requests");
  EXPECT_TRUE(refused.has_header("retry-after")) << refused.describe();
  EXPECT_EQ(login_from("203.0.113.8", "d@busy.example").status, 200u) << "another client is not limited";
}

// ---- the password-hashing queue is shared fairly ---------------------------------------------

class fair_hashing : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"TRUSTED_PROXIES", "127.0.0.1"},
            {"ARGON2_THREADS", "1"},
            {"ARGON2_MAX_QUEUE", "16"},
            {"LOGIN_SUCCESSES_PER_ACCOUNT", "1000000"},
            {"LOGIN_SUCCESSES_PER_CLIENT", "1000000"},
            {"LOGIN_MAX_FAILURES_PER_CLIENT", "1000000"},
            {"MASTER_POOL_SIZE", "16"},
            {"POOL_ACQUIRE_TIMEOUT_MS", "30000"}};
  }
};

TEST_F(fair_hashing, another_clients_login_succeeds_while_one_client_floods) {
  const auto owner = tenant_with_owner("flood_co", "flooder@flood.example");
  (void)add_member(owner, "patient@flood.example");
  const http_client& c = client();
  const header_list flooder{{"X-Forwarded-For", "198.51.100.66"}};
  const header_list patient{{"X-Forwarded-For", "203.0.113.5"}};

  std::atomic<bool> probing{true};
  std::atomic<int> flood_served{0};
  std::atomic<int> flood_running{0};
  std::vector<std::thread> flood;
  flood.reserve(66);
  for (int t = 0; t < 66; ++t)
    flood.emplace_back([&] {
      ++flood_running;
      for (int i = 0; i < 2000 && probing.load(); ++i) {  // for as long as the probes run
        const auto r =
            c.send_json("POST", "/auth/login", credentials("flooder@flood.example", default_password), flooder);
        if (r.status == 200) ++flood_served;
      }
    });
  while (flood_running.load() < 66) std::this_thread::yield();

  std::vector<http_response> probes;
  probes.reserve(5);
  for (int i = 0; i < 5; ++i)
    probes.push_back(
        c.send_json("POST", "/auth/login", credentials("patient@flood.example", default_password), patient));
  probing = false;
  for (auto& t : flood) t.join();
  for (const auto& r : probes) EXPECT_EQ(r.status, 200u) << "the patient client was refused:\n" << r.describe();
  EXPECT_GT(flood_served.load(), 0) << "the flooding client gets its share too";
}

}  // namespace
}  // namespace tenantd::test

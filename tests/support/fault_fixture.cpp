// The fault-test fixture: private cluster, tenantd process, recorded API helpers.
#include "support/fault_fixture.hpp"

#include <boost/json.hpp>

#include <iostream>
#include <stdexcept>

namespace tenantd::test {

void fault_test::SetUp() {
  cluster_ = std::make_unique<fault_cluster>(cluster_options());
  server_ = std::make_unique<e2e_server>(cluster_->info());
  server_->create_master_database();
  if (!start_server_in_setup()) return;
  start_server();
  ASSERT_TRUE(server_->wait_ready()) << "GET /readyz never answered 200; log:\n" << server_->log_tail();
}

void fault_test::start_server() {
  env_overrides env{
      {"POOL_ACQUIRE_TIMEOUT_MS", std::to_string(fault_acquire_timeout.count())},
      {"STATEMENT_TIMEOUT_MS", std::to_string(fault_statement_timeout.count())},
      {"REGISTER_PER_CLIENT", "100000"},
  };
  for (const auto& [k, v] : server_env()) env[k] = v;
  server_->start(env);
}

void fault_test::TearDown() {
  if (!server_) return;
  end_server_checked(*server_, 120);
  if (HasFailure()) {
    const std::string pg_log = cluster_->log_text();
    std::cerr << "---- PostgreSQL log tail ----\n"
              << pg_log.substr(pg_log.size() > 6000 ? pg_log.size() - 6000 : 0) << "\n";
  }
  server_.reset();   // drops its databases while the cluster still exists
  cluster_.reset();  // then the cluster goes
}

timed_outcome fault_test::get(std::string_view target, std::string_view token) const {
  return timed_request(server_->port(), "GET", target, token);
}

timed_outcome fault_test::post(std::string_view target, const std::string& json, std::string_view token) const {
  return timed_request(server_->port(), "POST", target, token, json);
}

fault_tenant fault_test::create_tenant(const std::string& id) {
  boost::json::object owner{{"email", "owner." + id + "@example.com"},
                            {"password", "correct-horse-battery"},
                            {"first_name", "Olive"},
                            {"last_name", "Owner"}};
  boost::json::object body{{"id", id}, {"name", "Tenant " + id}, {"owner", owner}};
  const auto o = post("/tenants", boost::json::serialize(body));
  if (o.status() != 201) throw std::runtime_error("POST /tenants " + id + " failed: " + o.describe());
  const auto v = boost::json::parse(o.response.body);
  return {id, std::string(v.at("token").as_string())};
}

timed_outcome fault_test::create_user(const fault_tenant& tenant, const std::string& email) const {
  boost::json::object body{{"email", email}, {"first_name", "Lee"}, {"last_name", "Writer"}};
  return post("/api/users", boost::json::serialize(body), tenant.token);
}

std::vector<std::string> fault_test::stored_emails(const fault_tenant& tenant) {
  std::vector<std::string> emails;
  for (const auto& row : cluster_->query("SELECT email FROM users", server_->tenant_database(tenant.id)))
    emails.push_back(row.at(0));
  return emails;
}

std::optional<std::chrono::milliseconds> fault_test::wait_full_service(const fault_tenant& tenant,
                                                                       std::chrono::milliseconds timeout) {
  return poll_until(
      [&] { return get("/readyz").status() == 200 && get("/api/users?page_size=1", tenant.token).status() == 200; },
      timeout);
}

std::vector<std::string> fault_test::tenantd_backend_pids(const std::string& database) {
  std::string sql = "SELECT pid::text FROM pg_stat_activity WHERE application_name = 'tenantd'";
  if (!database.empty()) sql += " AND datname = '" + database + "'";
  std::vector<std::string> pids;
  for (const auto& row : cluster_->query(sql)) pids.push_back(row.at(0));
  return pids;
}

}  // namespace tenantd::test

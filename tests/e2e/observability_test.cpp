// Metrics and logs as an operator sees them: /metrics passes `promtool check metrics` and
// labels requests by route pattern; METRICS_PORT moves it; LOG_FORMAT=json writes one JSON
// object per line with separate access fields; slow statements are logged.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <boost/json/parse.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace tenantd::test {
namespace {

// Runs a shell command; returns its exit status and everything it printed.
std::pair<int, std::string> run_command(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

http_response fetch_metrics(std::uint16_t port) {
  http_client raw(port);
  raw.set_checks(false);
  return raw.get("/metrics");
}

using metrics_endpoint = e2e_test;

TEST_F(metrics_endpoint, passes_promtool_and_labels_requests_by_route_pattern) {
  const auto owner = tenant_with_owner("metrics_co");
  ASSERT_EQ(get("/api/me", owner.token).status, 200u);
  http_client raw(server().port());
  raw.set_checks(false);
  ASSERT_EQ(raw.get("/no/such/path/12345").status, 404u);

  const auto res = fetch_metrics(server().port());
  ASSERT_EQ(res.status, 200u) << res.describe();
  EXPECT_EQ(res.header_or_empty("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const auto& body = res.body;
  EXPECT_NE(body.find("tenantd_http_requests_total{route=\"/api/me\",method=\"GET\",status=\"200\"} 1\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("tenantd_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_EQ(body.find("12345"), std::string::npos) << "a raw path became a label";
  EXPECT_NE(
      body.find("tenantd_http_request_duration_seconds_bucket{route=\"/auth/login\",method=\"POST\",le=\"+Inf\"}"),
      std::string::npos);
  EXPECT_NE(body.find("tenantd_tenant_provisioning_total{outcome=\"created\"} 1\n"), std::string::npos);
  EXPECT_NE(body.find("tenantd_tenants{status=\"active\"} 1\n"), std::string::npos);
  EXPECT_NE(body.find("tenantd_tenant_pool_database_connections{database=\"" + server().tenant_database("metrics_co")),
            std::string::npos);
  for (const char* name : {"tenantd_http_requests_in_flight ", "tenantd_master_pool_connections ",
                           "tenantd_tenant_pool_budget_connections 64\n", "tenantd_tenant_pool_evictions_total 0\n",
                           "tenantd_password_hash_queue_depth ", "process_resident_memory_bytes ", "process_open_fds ",
                           "process_start_time_seconds ", "tenantd_uptime_seconds ", "tenantd_build_info{version=\"",
                           "tenantd_tenant_requests_last_minute{tenant=\"_other\"} ",
                           "tenantd_tenant_db_seconds_last_minute{tenant=\"_other\"} ", "tenantd_usage_entries ",
                           "tenantd_usage_dropped_total 0\n"})
    EXPECT_NE(body.find(name), std::string::npos) << name;

  // The page is a route like any other: in the request counters (and the access log) and
  // answered with a request id.
  EXPECT_FALSE(res.header_or_empty("x-request-id").empty()) << res.describe();
  const auto again = fetch_metrics(server().port());
  ASSERT_EQ(again.status, 200u) << again.describe();
  EXPECT_NE(again.body.find("tenantd_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"} 1\n"),
            std::string::npos)
      << again.body;

  const auto path = std::filesystem::temp_directory_path() / (unique_name("metrics_") + ".txt");
  std::ofstream(path) << body;
  const auto [status, output] = run_command("promtool check metrics < " + path.string());
  std::filesystem::remove(path);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << output;
}

class separate_metrics_port : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"METRICS_PORT", "0"}}; }
};

TEST_F(separate_metrics_port, serves_metrics_only_there) {
  std::smatch m;
  const std::string log = server().log_text();
  const std::regex line(R"(tenantd metrics on 127\.0\.0\.1:(\d+))");
  ASSERT_TRUE(std::regex_search(log, m, line)) << log;
  const auto metrics_port = static_cast<std::uint16_t>(std::stoi(m[1].str()));
  ASSERT_NE(metrics_port, server().port());

  const auto there = fetch_metrics(metrics_port);
  ASSERT_EQ(there.status, 200u) << there.describe();
  EXPECT_NE(there.body.find("tenantd_build_info"), std::string::npos);
  const auto main_port = get("/metrics");
  EXPECT_EQ(main_port.status, 404u) << main_port.describe();
  http_client raw(metrics_port);
  raw.set_checks(false);
  EXPECT_EQ(raw.get("/healthz").status, 404u);
}

class json_logs : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"LOG_FORMAT", "json"}, {"SLOW_QUERY_MS", "1"}}; }
};

TEST_F(json_logs, every_line_is_json_and_access_lines_have_fields) {
  const auto owner = tenant_with_owner("json_logs_co");  // CREATE DATABASE: a slow statement
  ASSERT_EQ(get("/api/me", owner.token, {{"X-Request-Id", "trace-me-1"}}).status, 200u);
  // A request whose target holds CR/LF-looking bytes and a quote must not break a line.
  http_client raw(server().port());
  raw.set_checks(false);
  (void)raw.get("/x%0d%0a\"quoted\\");

  bool found_access = false;
  bool found_slow = false;
  // Poll: the logger flushes info lines every second.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!(found_access && found_slow) && std::chrono::steady_clock::now() < deadline) {
    found_access = found_slow = false;
    std::istringstream lines(server().log_text());
    std::string line;
    while (std::getline(lines, line)) {
      if (line.empty() || line.starts_with("tenantd ")) continue;  // stdout banners, not log lines
      boost::system::error_code ec;
      const auto v = boost::json::parse(line, ec);
      ASSERT_FALSE(ec) << "not JSON: " << line;
      ASSERT_TRUE(v.is_object()) << line;
      const auto& o = v.as_object();
      EXPECT_TRUE(o.contains("time") && o.contains("level") && o.contains("msg")) << line;
      EXPECT_EQ(line.find(owner.token), std::string::npos) << "token in the log: " << line;
      EXPECT_EQ(line.find(default_password), std::string::npos) << "password in the log: " << line;
      if (json_string(v, "msg") == "access" && json_string(v, "request_id") == "trace-me-1") {
        found_access = true;
        EXPECT_EQ(json_string(v, "method"), "GET");
        EXPECT_EQ(json_string(v, "route"), "/api/me");
        EXPECT_EQ(json_field(v, "status"), boost::json::value(200));
        EXPECT_TRUE(json_field(v, "duration_ms").is_number()) << line;
        EXPECT_TRUE(json_field(v, "bytes").is_int64()) << line;
        EXPECT_EQ(json_string(v, "tenant_id"), owner.tenant_id);
        EXPECT_EQ(json_string(v, "user_id"), owner.user_id);
      }
      if (json_string(v, "msg").starts_with("slow query:") && json_string(v, "msg").find("master") != std::string::npos)
        found_slow = true;
    }
    if (!(found_access && found_slow)) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(found_access) << server().log_tail();
  EXPECT_TRUE(found_slow) << server().log_tail();
}

}  // namespace
}  // namespace tenantd::test

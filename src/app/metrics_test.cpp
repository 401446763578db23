#include "app/metrics.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <string>

namespace tenantd::app {
namespace {

TEST(request_metrics, counts_by_route_method_and_status) {
  request_metrics m;
  m.observe("/api/users/:id", "GET", 200, std::chrono::microseconds(1500));
  m.observe("/api/users/:id", "GET", 200, std::chrono::microseconds(2000));
  m.observe("/api/users/:id", "GET", 404, std::chrono::microseconds(100));
  std::string out;
  m.render(out);
  EXPECT_NE(out.find("tenantd_http_requests_total{route=\"/api/users/:id\",method=\"GET\",status=\"200\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("tenantd_http_requests_total{route=\"/api/users/:id\",method=\"GET\",status=\"404\"} 1\n"),
            std::string::npos);
  EXPECT_NE(out.find("# TYPE tenantd_http_request_duration_seconds histogram\n"), std::string::npos);
}

TEST(request_metrics, histogram_buckets_are_cumulative) {
  request_metrics m;
  m.observe("/", "GET", 200, std::chrono::microseconds(500));   // <= 0.001
  m.observe("/", "GET", 200, std::chrono::microseconds(3000));  // <= 0.005
  m.observe("/", "GET", 200, std::chrono::seconds(20));         // only +Inf
  std::string out;
  m.render(out);
  const std::string base = "tenantd_http_request_duration_seconds_bucket{route=\"/\",method=\"GET\",le=";
  EXPECT_NE(out.find(base + "\"0.001\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find(base + "\"0.0025\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find(base + "\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find(base + "\"10\"} 2\n"), std::string::npos);
  EXPECT_NE(out.find(base + "\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("tenantd_http_request_duration_seconds_count{route=\"/\",method=\"GET\"} 3\n"), std::string::npos);
  EXPECT_NE(out.find("tenantd_http_request_duration_seconds_sum{route=\"/\",method=\"GET\"} 20.0035\n"),
            std::string::npos);
}

TEST(request_metrics, unknown_methods_share_one_label) {
  request_metrics m;
  m.observe("unmatched", "BREW", 404, std::chrono::microseconds(1));
  m.observe("unmatched", "PROPFIND", 404, std::chrono::microseconds(1));
  std::string out;
  m.render(out);
  EXPECT_NE(out.find("tenantd_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 2\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("BREW"), std::string::npos);
}

TEST(escape_label_value, escapes_backslash_quote_and_newline) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(metrics, unmatched_requests_never_carry_the_raw_path) {
  metrics m({});
  api::access_entry e;
  e.method = "GET";
  e.route = "-";
  e.status = 404;
  m.observe(e);
  // render() needs no I/O when no master is configured; run it synchronously.
  std::string out;
  bool done = false;
  boost::asio::io_context io;
  boost::asio::co_spawn(io, m.render(), [&](std::exception_ptr, std::string text) {
    out = std::move(text);
    done = true;
  });
  io.run();
  ASSERT_TRUE(done);
  EXPECT_NE(out.find("route=\"unmatched\""), std::string::npos) << out;
  EXPECT_NE(out.find("tenantd_build_info{version=\"\"} 1\n"), std::string::npos);
  EXPECT_NE(out.find("process_open_fds "), std::string::npos);
}

}  // namespace
}  // namespace tenantd::app

namespace tenantd::app {
namespace {

// Series lines (not comments) of `family` in `out`.
std::vector<std::string> series_of(const std::string& out, const std::string& family) {
  std::vector<std::string> lines;
  std::size_t at = 0;
  while (at < out.size()) {
    const auto end = out.find('\n', at);
    const auto line = out.substr(at, end - at);
    if (line.rfind(family + "{", 0) == 0) lines.push_back(line);
    at = end == std::string::npos ? out.size() : end + 1;
  }
  return lines;
}

TEST(tenant_usage_metrics, thousand_tenants_give_at_most_21_series_per_family) {
  std::vector<usage_row> minute;
  std::int64_t all_requests = 0;
  for (int i = 0; i < 1000; ++i) {
    usage_row r;
    r.tenant_id = "tenant_" + std::to_string(i);
    r.counts.requests = i + 1;                // tenant_999 sends the most
    r.counts.db_time_us = (1000 - i) * 1000;  // tenant_0 uses the most database time
    all_requests += r.counts.requests;
    minute.push_back(r);
  }
  std::string out;
  render_tenant_usage(out, minute);
  const auto requests = series_of(out, "tenantd_tenant_requests_last_minute");
  const auto db = series_of(out, "tenantd_tenant_db_seconds_last_minute");
  EXPECT_EQ(requests.size(), 21U);
  EXPECT_EQ(db.size(), 21U);
  EXPECT_EQ(requests.front(), "tenantd_tenant_requests_last_minute{tenant=\"tenant_999\"} 1000");
  EXPECT_EQ(requests[19], "tenantd_tenant_requests_last_minute{tenant=\"tenant_980\"} 981");
  // The rest: 1 + ... + 980.
  EXPECT_EQ(requests.back(), "tenantd_tenant_requests_last_minute{tenant=\"_other\"} " + std::to_string(980 * 981 / 2));
  EXPECT_EQ(db.front(), "tenantd_tenant_db_seconds_last_minute{tenant=\"tenant_0\"} 1");
  std::int64_t shown = 0;
  for (int i = 980; i < 1000; ++i) shown += i + 1;
  EXPECT_EQ(shown + 980 * 981 / 2, all_requests) << "top series plus _other hold every request";
  EXPECT_NE(out.find("# TYPE tenantd_tenant_requests_last_minute gauge\n"), std::string::npos);
}

TEST(tenant_usage_metrics, few_tenants_each_have_a_series_and_other_is_zero) {
  usage_row a;
  a.tenant_id = "acme";
  a.counts.requests = 3;
  usage_row idle;  // database time only: not in the requests family
  idle.tenant_id = "idle_co";
  idle.counts.db_time_us = 250000;
  std::string out;
  render_tenant_usage(out, {a, idle});
  const auto requests = series_of(out, "tenantd_tenant_requests_last_minute");
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0], "tenantd_tenant_requests_last_minute{tenant=\"acme\"} 3");
  EXPECT_EQ(requests[1], "tenantd_tenant_requests_last_minute{tenant=\"_other\"} 0");
  const auto db = series_of(out, "tenantd_tenant_db_seconds_last_minute");
  ASSERT_EQ(db.size(), 2U);
  EXPECT_EQ(db[0], "tenantd_tenant_db_seconds_last_minute{tenant=\"idle_co\"} 0.25");
}

}  // namespace
}  // namespace tenantd::app

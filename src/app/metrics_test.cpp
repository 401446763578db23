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

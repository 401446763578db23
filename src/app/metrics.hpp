// Prometheus metrics (text exposition format 0.0.4), without a client library: request
// counters and latency histograms fed from the dispatcher's access entries, plus gauges read
// from the pools, the password hasher, the provisioner, the master database and /proc when
// the page is rendered. Thread-safe: observe() may run on any I/O thread.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/dispatcher.hpp"
#include "api/message.hpp"
#include "domain/usage.hpp"

namespace tenantd::db {
class pool;
}
namespace tenantd::tenancy {
class pool_registry;
class usage_recorder;
}  // namespace tenantd::tenancy
namespace tenantd::auth {
class password_hasher;
}
namespace tenantd::api {
class request_quota;
}

namespace tenantd::app {

inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// Upper bounds (seconds) of the request duration histogram; +Inf is implied.
inline constexpr std::array<double, 13> duration_buckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                         0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

// Request counters and latency histograms by route pattern, method and status. Label values
// are bounded: the route is a pattern (or "unmatched"), unknown methods become "other".
class request_metrics {
 public:
  void observe(std::string_view route, std::string_view method, unsigned status, std::chrono::microseconds duration);
  // Appends tenantd_http_requests_total and tenantd_http_request_duration_seconds.
  void render(std::string& out) const;

 private:
  struct counter_series {
    std::atomic<std::uint64_t> count{0};
  };
  struct histogram_series {
    std::array<std::atomic<std::uint64_t>, duration_buckets.size()> buckets{};  // not cumulative
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_micros{0};
  };
  template <class Series>
  Series& series(std::map<std::string, std::unique_ptr<Series>>& family, const std::string& key);

  mutable std::shared_mutex mutex_;
  std::map<std::string, std::unique_ptr<counter_series>> requests_;     // key: rendered labels
  std::map<std::string, std::unique_ptr<histogram_series>> durations_;  // key: rendered labels
};

// What the gauges are read from; null members are skipped.
struct metrics_sources {
  std::shared_ptr<db::pool> master;
  tenancy::pool_registry* pools{nullptr};
  auth::password_hasher* hasher{nullptr};
  const api::request_quota* quota{nullptr};       // tenantd_requests_throttled_total
  const tenancy::usage_recorder* usage{nullptr};  // the tenantd_tenant_*_last_minute families
  const tenancy::mover* mover{nullptr};           // tenantd_move* (moves this process drove)
  const tenancy::write_gate* gate{nullptr};       // tenantd_writes_held_total
  std::function<std::size_t()> requests_in_flight;
  std::function<std::size_t()> open_connections;
  std::string version;
  std::size_t busiest_tenants{10};                // per-tenant pool series kept
  std::chrono::seconds tenant_count_max_age{15};  // master is asked at most this often
};

class metrics {
 public:
  explicit metrics(metrics_sources sources);

  // Records one finished request (wire it into the dispatcher's access callback).
  void observe(const api::access_entry& entry);
  // The whole exposition. Reads tenant counts from master when the cached ones are older
  // than tenant_count_max_age; if master cannot be read, the last counts are kept.
  boost::asio::awaitable<std::string> render();
  // A 200 response carrying render()'s text with the exposition content type.
  boost::asio::awaitable<api::response> respond();

 private:
  boost::asio::awaitable<void> refresh_tenant_counts();

  metrics_sources sources_;
  request_metrics requests_;
  std::chrono::system_clock::time_point started_;
  std::chrono::steady_clock::time_point started_steady_;
  // POST /tenants answered 201 / with a 5xx (provisioning rolled back after a failure).
  std::atomic<std::uint64_t> tenants_created_{0};
  std::atomic<std::uint64_t> tenant_creations_failed_{0};
  std::mutex tenant_counts_mutex_;
  std::map<std::string, std::int64_t> tenant_counts_;
  std::chrono::steady_clock::time_point tenant_counts_at_{};
  bool tenant_counts_loaded_{false};
};

// Tenants with their own series in a per-tenant usage family; the rest share tenant="_other"
// (a tenant id starts with a letter, so it never collides).
inline constexpr std::size_t usage_top_tenants = 20;

// Appends the per-tenant usage families for one minute's totals (usage_recorder::minute_totals):
// tenantd_tenant_requests_last_minute and tenantd_tenant_db_seconds_last_minute, gauges, each
// with a series for the `top` tenants with the largest value (ties by id) and one
// tenant="_other" series summing the rest, so at most top + 1 series whatever the tenants.
void render_tenant_usage(std::string& out, const std::vector<usage_row>& minute, std::size_t top = usage_top_tenants);

// Escapes a label value for the text format (backslash, double quote, newline).
std::string escape_label_value(std::string_view value);

}  // namespace tenantd::app

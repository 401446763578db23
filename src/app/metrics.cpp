// Prometheus text exposition, rendered by hand: counters and histograms in maps of atomic
// series, gauges read at scrape time.
#include "app/metrics.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "api/request_quota.hpp"
#include "auth/password_hasher.hpp"
#include "db/inspection.hpp"
#include "db/pool.hpp"
#include "domain/tenant_status.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/usage_recorder.hpp"

namespace tenantd::app {
namespace {

std::string_view bounded_method(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
    if (method == known) return known;
  return "other";
}

// Shortest text that reads back as the same double ("0.0025", "1e-06", "12.5").
std::string format_double(double value) {
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  return ec == std::errc{} ? std::string(buf.data(), end) : std::string("NaN");
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

template <class Number>
void sample(std::string& out, std::string_view name, std::string_view labels, Number value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ");
  if constexpr (std::is_floating_point_v<Number>)
    out.append(format_double(value));
  else
    out.append(std::to_string(value));
  out.append("\n");
}

template <class Number>
void gauge(std::string& out, std::string_view name, std::string_view help, Number value) {
  header(out, name, "gauge", help);
  sample(out, name, "", value);
}

// Resident set size from /proc/self/statm (pages), 0 if unreadable.
std::uint64_t resident_memory_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  std::uint64_t n = 0;
  while (const dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n > 0 ? n - 1 : 0;  // minus the descriptor opendir itself holds
}

// Process start in seconds since the epoch: boot time (/proc/stat btime) + start ticks
// (/proc/self/stat field 22). Falls back to `fallback` when /proc cannot be read.
double process_start_seconds(double fallback) {
  std::ifstream stat_file("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return fallback;
  std::istringstream fields(text.substr(close_paren + 2));
  std::string field;
  unsigned long long start_ticks = 0;
  for (int i = 3; fields >> field; ++i) {  // field 3 is the state, after "pid (comm)"
    if (i == 22) {
      start_ticks = std::stoull(field);
      break;
    }
  }
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) {
      const double boot = std::stod(line.substr(6));
      const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
      if (start_ticks == 0 || ticks <= 0) return fallback;
      return boot + static_cast<double>(start_ticks) / ticks;
    }
  }
  return fallback;
}

// Appends `value` escaped as a Prometheus label value.
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  append_label_value(out, value);
  return out;
}

void render_tenant_usage(std::string& out, const std::vector<usage_row>& minute, std::size_t top) {
  const auto family = [&](std::string_view name, std::string_view help, auto value_of) {
    std::vector<std::pair<double, const std::string*>> ranked;
    ranked.reserve(minute.size());
    for (const auto& r : minute)
      if (const double v = value_of(r.counts); v > 0) ranked.emplace_back(v, &r.tenant_id);
    const auto shown = std::min(top, ranked.size());
    std::partial_sort(
        ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(shown), ranked.end(),
        [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : *a.second < *b.second; });
    header(out, name, "gauge", help);
    double rest = 0;
    for (std::size_t i = shown; i < ranked.size(); ++i) rest += ranked[i].first;
    for (std::size_t i = 0; i < shown; ++i)
      sample(out, name, "tenant=\"" + escape_label_value(*ranked[i].second) + "\"", ranked[i].first);
    sample(out, name, "tenant=\"_other\"", rest);
  };
  family("tenantd_tenant_requests_last_minute",
         "Requests answered per tenant in the previous complete minute by this process, for the 20 tenants with the "
         "most; tenant=\"_other\" sums the rest.",
         [](const usage_counts& c) { return static_cast<double>(c.requests); });
  family("tenantd_tenant_db_seconds_last_minute",
         "Database time per tenant in the previous complete minute in this process, for the 20 tenants with the most; "
         "tenant=\"_other\" sums the rest.",
         [](const usage_counts& c) { return static_cast<double>(c.db_time_us) / 1e6; });
}

template <class Series>
Series& request_metrics::series(std::map<std::string, std::unique_ptr<Series>>& family, const std::string& key) {
  {
    std::shared_lock lock(mutex_);
    if (auto it = family.find(key); it != family.end()) return *it->second;
  }
  std::unique_lock lock(mutex_);
  auto& slot = family[key];
  if (!slot) slot = std::make_unique<Series>();
  return *slot;
}

void request_metrics::observe(std::string_view route, std::string_view method, unsigned status,
                              std::chrono::microseconds duration) {
  // The label texts are built in buffers each thread reuses: no allocation per request once
  // they have grown (they key the series, found under a shared lock).
  thread_local std::string route_label;
  thread_local std::string status_label;
  route_label.assign("route=\"");
  append_label_value(route_label, route);
  route_label.append("\",method=\"").append(bounded_method(method)).append("\"");
  status_label.assign(route_label).append(",status=\"").append(std::to_string(status)).append("\"");
  series(requests_, status_label).count.fetch_add(1, std::memory_order_relaxed);
  auto& h = series(durations_, route_label);
  const double seconds = static_cast<double>(duration.count()) / 1e6;
  const auto bucket = static_cast<std::size_t>(
      std::lower_bound(duration_buckets.begin(), duration_buckets.end(), seconds) - duration_buckets.begin());
  if (bucket < h.buckets.size()) h.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  h.sum_micros.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, duration.count())),
                         std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
}

void request_metrics::render(std::string& out) const {
  std::shared_lock lock(mutex_);
  header(out, "tenantd_http_requests_total", "counter", "HTTP requests answered, by route pattern, method and status.");
  for (const auto& [labels, s] : requests_)
    sample(out, "tenantd_http_requests_total", labels, s->count.load(std::memory_order_relaxed));
  header(out, "tenantd_http_request_duration_seconds", "histogram",
         "Time from routing to the response, by route pattern and method.");
  for (const auto& [labels, h] : durations_) {
    // Read the count first: buckets may run ahead of it, never behind, so +Inf >= every bucket.
    std::uint64_t cumulative = 0;
    std::array<std::uint64_t, duration_buckets.size()> counts{};
    for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = h->buckets[i].load(std::memory_order_relaxed);
    std::uint64_t total = h->count.load(std::memory_order_relaxed);
    std::uint64_t in_buckets = 0;
    for (auto c : counts) in_buckets += c;
    total = std::max(total, in_buckets);
    for (std::size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      sample(out, "tenantd_http_request_duration_seconds_bucket",
             labels + ",le=\"" + format_double(duration_buckets[i]) + "\"", cumulative);
    }
    sample(out, "tenantd_http_request_duration_seconds_bucket", labels + ",le=\"+Inf\"", total);
    sample(out, "tenantd_http_request_duration_seconds_sum", labels,
           static_cast<double>(h->sum_micros.load(std::memory_order_relaxed)) / 1e6);
    sample(out, "tenantd_http_request_duration_seconds_count", labels, total);
  }
}

metrics::metrics(metrics_sources sources)
    : sources_(std::move(sources)),
      started_(std::chrono::system_clock::now()),
      started_steady_(std::chrono::steady_clock::now()) {}

void metrics::observe(const api::access_entry& entry) {
  const bool matched = !entry.route.empty() && entry.route != "-";
  requests_.observe(matched ? entry.route : std::string_view("unmatched"), entry.method, entry.status, entry.duration);
  if (entry.route == "/tenants" && entry.method == "POST") {
    if (entry.status == 201)
      tenants_created_.fetch_add(1, std::memory_order_relaxed);
    else if (entry.status >= 500)
      tenant_creations_failed_.fetch_add(1, std::memory_order_relaxed);
  }
}

boost::asio::awaitable<void> metrics::refresh_tenant_counts() {
  {
    std::lock_guard lock(tenant_counts_mutex_);
    if (tenant_counts_loaded_ && std::chrono::steady_clock::now() - tenant_counts_at_ < sources_.tenant_count_max_age)
      co_return;
    tenant_counts_at_ = std::chrono::steady_clock::now();  // one refresh per period, even if it fails
  }
  if (!sources_.master) co_return;
  try {
    auto conn = co_await sources_.master->acquire();
    auto counts = co_await db::inspection::count_tenants_by_status(*conn);
    std::lock_guard lock(tenant_counts_mutex_);
    tenant_counts_ = std::move(counts);
    tenant_counts_loaded_ = true;
  } catch (const std::exception& e) {
    spdlog::warn("metrics: cannot count tenants: {}", e.what());
  }
}

boost::asio::awaitable<std::string> metrics::render() {
  co_await refresh_tenant_counts();
  std::string out;
  out.reserve(16384);
  requests_.render(out);
  if (sources_.requests_in_flight)
    gauge(out, "tenantd_http_requests_in_flight", "Requests being handled right now.", sources_.requests_in_flight());
  if (sources_.open_connections)
    gauge(out, "tenantd_http_connections", "Client connections open on the API port.", sources_.open_connections());

  if (sources_.master) {
    const auto s = sources_.master->stats();
    gauge(out, "tenantd_master_pool_connections", "Open connections of the master pool (idle and in use).", s.open);
    gauge(out, "tenantd_master_pool_idle_connections", "Idle connections of the master pool.", s.idle);
    gauge(out, "tenantd_master_pool_waiters", "Requests waiting for a master connection.", s.waiters);
  }
  if (sources_.pools) {
    auto& pools = *sources_.pools;
    gauge(out, "tenantd_tenant_pool_connections", "Open connections to tenant databases, all tenants together.",
          pools.connections_in_use_or_idle());
    gauge(out, "tenantd_tenant_pool_budget_connections",
          "Connections allowed to tenant databases on each database server.", pools.settings().max_connections);
    gauge(out, "tenantd_tenant_pools", "Tenant pools currently open.", pools.pool_count());
    gauge(out, "tenantd_tenant_pools_starved", "Tenant pools waiting for a slot of the connection budget.",
          pools.starved_pools());
    header(out, "tenantd_tenant_pool_server_connections", "gauge",
           "Open connections to tenant databases per database server (each has its own budget).");
    for (const auto& [server, n] : pools.connections_by_server())
      sample(out, "tenantd_tenant_pool_server_connections", "server=\"" + escape_label_value(server) + "\"", n);
    const auto health = pools.server_health_list();
    header(out, "tenantd_db_server_answering", "gauge",
           "1 while a database server answers, 0 while its probes get nothing and its calls fail fast with 503.");
    for (const auto& h : health)
      sample(out, "tenantd_db_server_answering", "server=\"" + escape_label_value(h.server) + "\"",
             h.answering ? 1 : 0);
    header(out, "tenantd_db_server_outages_total", "counter",
           "Times a database server was found not answering (its waiting calls then failed with 503).");
    for (const auto& h : health)
      sample(out, "tenantd_db_server_outages_total", "server=\"" + escape_label_value(h.server) + "\"", h.outages);
    header(out, "tenantd_tenant_pool_evictions_total", "counter",
           "Idle tenant connections closed to make room under a server's budget.");
    sample(out, "tenantd_tenant_pool_evictions_total", "", pools.evictions());
    const auto busiest = pools.busiest(sources_.busiest_tenants);
    header(out, "tenantd_tenant_pool_database_connections", "gauge",
           "Open connections per tenant database, for the busiest databases only.");
    for (const auto& p : busiest)
      sample(out, "tenantd_tenant_pool_database_connections", "database=\"" + escape_label_value(p.database) + "\"",
             p.stats.open);
    header(out, "tenantd_tenant_pool_database_waiters", "gauge",
           "Requests waiting for a connection per tenant database, for the busiest databases only.");
    for (const auto& p : busiest)
      sample(out, "tenantd_tenant_pool_database_waiters", "database=\"" + escape_label_value(p.database) + "\"",
             p.stats.waiters);
  }
  {
    std::lock_guard lock(tenant_counts_mutex_);
    if (tenant_counts_loaded_) {
      header(out, "tenantd_tenants", "gauge", "Tenants in the master database by status (refreshed every 15 s).");
      std::map<std::string, std::int64_t> all;
      for (const auto status : all_tenant_statuses) all[std::string(to_string(status))] = 0;
      for (const auto& [status, n] : tenant_counts_) all[status] = n;
      for (const auto& [status, n] : all)
        sample(out, "tenantd_tenants", "status=\"" + escape_label_value(status) + "\"", n);
    }
  }
  header(out, "tenantd_tenant_provisioning_total", "counter",
         "Tenant creations through POST /tenants by outcome: created, or failed (server error, rolled back).");
  sample(out, "tenantd_tenant_provisioning_total", "outcome=\"created\"", tenants_created_.load());
  sample(out, "tenantd_tenant_provisioning_total", "outcome=\"failed\"", tenant_creations_failed_.load());
  if (sources_.quota) {
    header(out, "tenantd_requests_throttled_total", "counter",
           "Authenticated requests refused with 429 past a request quota, by scope (tenant or session).");
    for (const auto scope : {api::quota_scope::tenant, api::quota_scope::session})
      sample(out, "tenantd_requests_throttled_total", "scope=\"" + std::string(api::to_string(scope)) + "\"",
             sources_.quota->throttled(scope));
  }
  if (sources_.usage) {
    const auto& usage = *sources_.usage;
    render_tenant_usage(out,
                        usage.minute_totals(tenancy::usage_recorder::minute_of(std::chrono::system_clock::now()) - 60));
    gauge(out, "tenantd_usage_entries",
          "Per-tenant usage entries (tenant, minute) held in memory until the next flush.", usage.entries());
    header(out, "tenantd_usage_dropped_total", "counter",
           "Usage events dropped because USAGE_MAX_TENANTS entries were held (counts are then incomplete).");
    sample(out, "tenantd_usage_dropped_total", "", usage.overflow());
  }
  if (sources_.mover) {
    const auto m = sources_.mover->stats();
    gauge(out, "tenantd_moves_running", "Tenant moves this process is driving right now.", m.running);
    header(out, "tenantd_moves_total", "counter", "Tenant moves this process drove to their end, by result.");
    sample(out, "tenantd_moves_total", "result=\"done\"", m.done);
    sample(out, "tenantd_moves_total", "result=\"aborted\"", m.aborted);
    header(out, "tenantd_move_cutovers_abandoned_total", "counter",
           "Cut-overs given up (the tenant stayed on its server) because they would have held writes past "
           "MOVE_FREEZE_MAX_MS.");
    sample(out, "tenantd_move_cutovers_abandoned_total", "", m.cutovers_abandoned);
    header(out, "tenantd_move_freeze_seconds", "histogram",
           "How long the cut-over of each finished move held the tenant's writes.");
    for (std::size_t i = 0; i < m.freeze_buckets.size(); ++i) {
      std::ostringstream le;
      le << tenancy::move_stats::freeze_bounds[i];
      sample(out, "tenantd_move_freeze_seconds_bucket", "le=\"" + le.str() + "\"", m.freeze_buckets[i]);
    }
    sample(out, "tenantd_move_freeze_seconds_bucket", "le=\"+Inf\"", m.freeze_count);
    sample(out, "tenantd_move_freeze_seconds_sum", "", m.freeze_sum);
    sample(out, "tenantd_move_freeze_seconds_count", "", m.freeze_count);
  }
  if (sources_.gate) {
    header(out, "tenantd_writes_held_total", "counter",
           "Writes that waited while a move's cut-over held their tenant (they ran afterwards, on the new server).");
    sample(out, "tenantd_writes_held_total", "", sources_.gate->writes_held());
  }
  if (sources_.hasher)
    gauge(out, "tenantd_password_hash_queue_depth", "Password hashes waiting or running.",
          sources_.hasher->queue_depth());

  const auto started_seconds =
      static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(started_.time_since_epoch()).count()) /
      1000.0;
  gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", resident_memory_bytes());
  gauge(out, "process_open_fds", "Number of open file descriptors.", open_fds());
  gauge(out, "process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
        process_start_seconds(started_seconds));
  gauge(out, "tenantd_uptime_seconds", "Seconds since the server started.",
        static_cast<double>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_steady_)
                .count()) /
            1000.0);
  header(out, "tenantd_build_info", "gauge", "Always 1; the version is in the label.");
  sample(out, "tenantd_build_info", "version=\"" + escape_label_value(sources_.version) + "\"", 1);
  co_return out;
}

boost::asio::awaitable<api::response> metrics::respond() {
  api::response res;
  res.status = 200;
  res.content_type = std::string(metrics_content_type);
  res.body = co_await render();
  res.set_header("Cache-Control", "no-store");
  co_return res;
}

}  // namespace tenantd::app

// Latency buckets, their quantile estimate, and merging of usage counts.
#include "domain/usage.hpp"

#include <algorithm>
#include <cstdio>

namespace tenantd {

std::size_t usage_latency_bucket(std::chrono::microseconds latency) noexcept {
  const auto it = std::lower_bound(usage_latency_bounds_us.begin(), usage_latency_bounds_us.end(), latency.count());
  return static_cast<std::size_t>(it - usage_latency_bounds_us.begin());
}

double usage_latency_quantile_ms(const std::array<std::int64_t, usage_latency_bucket_count>& buckets, double q) {
  std::int64_t total = 0;
  for (const auto n : buckets) total += n;
  if (total <= 0) return 0.0;
  const double rank = q * static_cast<double>(total);
  double seen = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const auto n = static_cast<double>(buckets[i]);
    const double lower = i == 0 ? 0.0 : static_cast<double>(usage_latency_bounds_us[i - 1]);
    if (n > 0 && seen + n >= rank) {
      if (i == usage_latency_bounds_us.size()) return lower / 1000.0;
      const double upper = static_cast<double>(usage_latency_bounds_us[i]);
      return (lower + (upper - lower) * std::clamp((rank - seen) / n, 0.0, 1.0)) / 1000.0;
    }
    seen += n;
  }
  return static_cast<double>(usage_latency_bounds_us.back()) / 1000.0;
}

void usage_counts::merge(const usage_counts& other) noexcept {
  requests += other.requests;
  errors_4xx += other.errors_4xx;
  errors_5xx += other.errors_5xx;
  for (std::size_t i = 0; i < latency.size(); ++i) latency[i] += other.latency[i];
  statements += other.statements;
  db_time_us += other.db_time_us;
  connections_max = std::max(connections_max, other.connections_max);
  db_size_bytes = std::max(db_size_bytes, other.db_size_bytes);
  last_activity_ms = std::max(last_activity_ms, other.last_activity_ms);
}

std::optional<std::int64_t> parse_utc_time(std::string_view text) {
  const auto digits = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > text.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  const auto at = [&](std::size_t i, char c) { return i < text.size() && text[i] == c; };
  const auto year = digits(0, 4), month = digits(5, 2), day = digits(8, 2), hour = digits(11, 2),
             minute = digits(14, 2);
  if (!year || !month || !day || !hour || !minute || !at(4, '-') || !at(7, '-') || !at(10, 'T') || !at(13, ':'))
    return std::nullopt;
  std::size_t rest = 16;
  int second = 0;
  if (at(16, ':')) {
    const auto s = digits(17, 2);
    if (!s) return std::nullopt;
    second = *s;
    rest = 19;
  }
  const auto zone = text.substr(rest);
  if (zone != "Z" && zone != "+00:00") return std::nullopt;
  if (*hour > 23 || *minute > 59 || second > 59) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(*year), std::chrono::month(static_cast<unsigned>(*month)),
                                         std::chrono::day(static_cast<unsigned>(*day))};
  if (!date.ok()) return std::nullopt;
  const auto days = std::chrono::sys_days(date).time_since_epoch().count();
  return static_cast<std::int64_t>(days) * 86400 + std::int64_t{*hour} * 3600 + std::int64_t{*minute} * 60 + second;
}

std::string format_utc_time(std::int64_t unix_seconds) {
  const auto day_count = unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400;
  const std::chrono::year_month_day date{std::chrono::sys_days(std::chrono::days(day_count))};
  const auto in_day = unix_seconds - day_count * 86400;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<long long>(in_day / 3600), static_cast<long long>(in_day % 3600 / 60),
                static_cast<long long>(in_day % 60));
  return buf;
}

}  // namespace tenantd

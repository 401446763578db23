// Per-tenant usage by minute as the recorder (tenancy/usage_recorder.hpp) counts it, the
// master table (db/usage_repository.hpp) keeps it and GET /admin/usage shows it, with the
// fixed latency buckets and the quantile estimate made from them.
#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tenantd {

// Upper bounds (microseconds) of the latency buckets; a last bucket holds everything slower.
inline constexpr std::array<std::int64_t, 12> usage_latency_bounds_us{
    1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000};
inline constexpr std::size_t usage_latency_bucket_count = usage_latency_bounds_us.size() + 1;

// The bucket a latency falls in (a latency equal to a bound is in that bound's bucket).
std::size_t usage_latency_bucket(std::chrono::microseconds latency) noexcept;
// The q-quantile (0 < q <= 1) in milliseconds estimated from bucket counts, interpolating
// linearly inside the bucket that holds it; the last bucket answers its lower bound.
// 0 when the buckets are empty.
double usage_latency_quantile_ms(const std::array<std::int64_t, usage_latency_bucket_count>& buckets, double q);

struct usage_counts {
  std::int64_t requests{0};
  std::int64_t errors_4xx{0};
  std::int64_t errors_5xx{0};
  std::array<std::int64_t, usage_latency_bucket_count> latency{};  // requests per bucket
  std::int64_t statements{0};
  std::int64_t db_time_us{0};
  std::int64_t connections_max{0};   // the most connections seen held at a sample
  std::int64_t db_size_bytes{-1};    // the largest sample in the minute; -1: none
  std::int64_t last_activity_ms{0};  // Unix milliseconds of the latest event; 0: none

  // Adds counts; takes the larger of maxima, sizes and times.
  void merge(const usage_counts& other) noexcept;
};

struct usage_row {
  std::string tenant_id;
  std::int64_t minute{0};  // Unix seconds at the start of the minute
  usage_counts counts;
};

// An ISO-8601 UTC time as GET /admin/usage takes it: "YYYY-MM-DDTHH:MM[:SS]" followed by
// "Z" or "+00:00" (no fractions, no other offsets), to Unix seconds; nullopt otherwise.
std::optional<std::int64_t> parse_utc_time(std::string_view text);
// Unix seconds as "YYYY-MM-DDTHH:MM:SSZ".
std::string format_utc_time(std::int64_t unix_seconds);

}  // namespace tenantd

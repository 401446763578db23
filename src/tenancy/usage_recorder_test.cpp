// The usage recorder: exact counts from several threads, the latency histogram and its
// quantiles, minutes kept apart, the memory cap with 10,000 tenants, take/restore.
#include "tenancy/usage_recorder.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace tenantd::tenancy {
namespace {

using namespace std::chrono_literals;
using clock_type = usage_recorder::clock;

const clock_type::time_point minute_start{std::chrono::seconds(1'800'000'000 - 1'800'000'000 % 60)};

TEST(usage_recorder, counts_are_exact_with_several_threads) {
  usage_recorder usage(1000);
  constexpr int threads = 4;
  constexpr int per_thread = 5000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string tenant = i % 2 == 0 ? "acme" : "globex";
        const unsigned status = i % 10 == 0 ? 404U : (i % 25 == 0 ? 503U : 200U);
        usage.record_request(tenant, status, 3ms, minute_start + 10s);
        usage.record_statements(tenant, 2, 150us, minute_start + 10s);
        if (t == 0 && i == 0) usage.record_connections(tenant, 3, minute_start + 11s);
      }
    });
  for (auto& w : workers) w.join();
  const auto rows = usage.take(minute_start + 20s);
  ASSERT_EQ(rows.size(), 2U);
  for (const auto& r : rows) {
    EXPECT_EQ(r.minute, usage_recorder::minute_of(minute_start));
    EXPECT_EQ(r.counts.requests, threads * per_thread / 2) << r.tenant_id;
    EXPECT_EQ(r.counts.statements, threads * per_thread) << r.tenant_id;
    EXPECT_EQ(r.counts.db_time_us, std::int64_t{threads} * (per_thread / 2) * 150) << r.tenant_id;
    EXPECT_EQ(r.counts.latency[usage_latency_bucket(3ms)], threads * per_thread / 2);
  }
  EXPECT_EQ(rows[0].tenant_id, "acme");  // even i: every multiple of 10 is a 404, and of 25 also of 50
  EXPECT_EQ(rows[0].counts.errors_4xx, threads * per_thread / 10);
  EXPECT_EQ(rows[0].counts.errors_5xx, 0);
  EXPECT_EQ(rows[1].counts.errors_4xx, 0);
  EXPECT_EQ(rows[1].counts.errors_5xx, threads * (per_thread / 50));  // odd multiples of 25
  EXPECT_EQ(rows[0].counts.connections_max, 3);
  EXPECT_EQ(rows[0].counts.last_activity_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>((minute_start + 10s).time_since_epoch()).count())
      << "a connection sample is not activity";
  EXPECT_EQ(usage.entries(), 0U);
  EXPECT_TRUE(usage.take(minute_start + 20s).empty()) << "take() empties the recorder";
}

TEST(usage_recorder, minutes_are_kept_apart) {
  usage_recorder usage(100);
  usage.record_request("acme", 200, 1ms, minute_start + 59s);
  usage.record_request("acme", 200, 1ms, minute_start + 60s);
  usage.record_request("acme", 200, 1ms, minute_start + 61s);
  const auto rows = usage.take(minute_start + 70s);
  ASSERT_EQ(rows.size(), 2U);
  EXPECT_EQ(rows[0].counts.requests, 1);
  EXPECT_EQ(rows[1].counts.requests, 2);
  EXPECT_EQ(rows[1].minute - rows[0].minute, 60);
}

TEST(usage_recorder, latency_buckets_and_quantiles) {
  EXPECT_EQ(usage_latency_bucket(0us), 0U);
  EXPECT_EQ(usage_latency_bucket(1000us), 0U) << "a latency equal to a bound is in its bucket";
  EXPECT_EQ(usage_latency_bucket(1001us), 1U);
  EXPECT_EQ(usage_latency_bucket(10s), usage_latency_bucket_count - 1);

  std::array<std::int64_t, usage_latency_bucket_count> buckets{};
  EXPECT_EQ(usage_latency_quantile_ms(buckets, 0.5), 0.0);
  buckets[usage_latency_bucket(4ms)] = 100;  // all in (2.5 ms, 5 ms]
  EXPECT_DOUBLE_EQ(usage_latency_quantile_ms(buckets, 0.5), 3.75);
  EXPECT_DOUBLE_EQ(usage_latency_quantile_ms(buckets, 1.0), 5.0);
  buckets[usage_latency_bucket(10s)] = 100;  // half beyond the last bound
  EXPECT_DOUBLE_EQ(usage_latency_quantile_ms(buckets, 0.99), 5000.0);
  EXPECT_DOUBLE_EQ(usage_latency_quantile_ms(buckets, 0.5), 5.0);
}

TEST(usage_recorder, memory_stays_bounded_with_10000_tenants) {
  constexpr std::size_t cap = 1000;
  usage_recorder usage(cap);
  for (int i = 0; i < 10'000; ++i) {
    usage.record_request("tenant_" + std::to_string(i), 200, 1ms, minute_start);
    usage.record_statements("tenant_" + std::to_string(i), 1, 1us, minute_start);
    EXPECT_LE(usage.entries(), cap);
  }
  EXPECT_EQ(usage.entries(), cap);
  EXPECT_EQ(usage.overflow(), 2U * (10'000 - cap)) << "every dropped event is counted";
  usage.record_request("tenant_0", 200, 1ms, minute_start);  // held tenants keep counting
  const auto rows = usage.take(minute_start);
  EXPECT_EQ(rows.size(), cap);
  std::int64_t requests = 0;
  for (const auto& r : rows) requests += r.counts.requests;
  EXPECT_EQ(requests, static_cast<std::int64_t>(cap) + 1);
  EXPECT_EQ(usage.entries(), 0U);
  usage.record_request("tenant_9999", 200, 1ms, minute_start + 60s);
  EXPECT_EQ(usage.entries(), 1U) << "take() frees the places";
}

TEST(usage_recorder, restore_after_a_failed_flush_loses_nothing) {
  usage_recorder usage(10);
  usage.record_request("acme", 200, 1ms, minute_start);
  auto taken = usage.take(minute_start);
  usage.record_request("acme", 500, 1ms, minute_start + 1s);  // recorded while the flush ran
  usage.restore(taken);
  const auto rows = usage.take(minute_start + 2s);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].counts.requests, 2);
  EXPECT_EQ(rows[0].counts.errors_5xx, 1);
  const auto totals = usage.minute_totals(usage_recorder::minute_of(minute_start));
  ASSERT_EQ(totals.size(), 1U);
  EXPECT_EQ(totals[0].counts.requests, 2) << "restored rows are not counted twice";
}

TEST(usage_recorder, connection_samples_create_nothing_and_sizes_do) {
  usage_recorder usage(10);
  usage.record_connections("idle", 2, minute_start);
  EXPECT_EQ(usage.entries(), 0U);
  usage.record_database_size("idle", 8'000'000, minute_start);
  usage.record_database_size("idle", 9'000'000, minute_start);
  const auto rows = usage.take(minute_start);
  ASSERT_EQ(rows.size(), 1U);
  EXPECT_EQ(rows[0].counts.db_size_bytes, 9'000'000);
  EXPECT_EQ(rows[0].counts.requests, 0);
}

TEST(usage_recorder, minute_totals_combine_held_and_flushed_rows) {
  usage_recorder usage(10);
  const auto minute = usage_recorder::minute_of(minute_start);
  usage.record_request("acme", 200, 1ms, minute_start + 5s);
  usage.take(minute_start + 6s);
  usage.record_request("acme", 200, 1ms, minute_start + 7s);
  usage.record_request("globex", 200, 1ms, minute_start + 8s);
  auto totals = usage.minute_totals(minute);
  ASSERT_EQ(totals.size(), 2U);
  EXPECT_EQ(totals[0].counts.requests, 2);
  EXPECT_EQ(totals[1].counts.requests, 1);
  usage.take(minute_start + 200s);  // two minutes later: the old minute is forgotten
  EXPECT_TRUE(usage.minute_totals(minute).empty());
}

}  // namespace
}  // namespace tenantd::tenancy

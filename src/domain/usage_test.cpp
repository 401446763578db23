// Usage helpers: merging counts, and the UTC times GET /admin/usage reads and writes.
#include "domain/usage.hpp"

#include <gtest/gtest.h>

namespace tenantd {
namespace {

TEST(usage, merge_adds_counts_and_keeps_maxima) {
  usage_counts a;
  a.requests = 2;
  a.latency[3] = 2;
  a.connections_max = 5;
  a.last_activity_ms = 100;
  usage_counts b;
  b.requests = 3;
  b.errors_5xx = 1;
  b.latency[3] = 1;
  b.connections_max = 2;
  b.db_size_bytes = 42;
  b.last_activity_ms = 50;
  a.merge(b);
  EXPECT_EQ(a.requests, 5);
  EXPECT_EQ(a.errors_5xx, 1);
  EXPECT_EQ(a.latency[3], 3);
  EXPECT_EQ(a.connections_max, 5);
  EXPECT_EQ(a.db_size_bytes, 42);
  EXPECT_EQ(a.last_activity_ms, 100);
}

TEST(usage, utc_times_parse_and_format) {
  EXPECT_EQ(parse_utc_time("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_utc_time("2026-12-06T03:42Z"), 1796528520);
  EXPECT_EQ(parse_utc_time("2026-12-06T03:42:00+00:00"), 1796528520);
  EXPECT_EQ(format_utc_time(1796528520), "2026-12-06T03:42:00Z");
  EXPECT_EQ(format_utc_time(0), "1970-01-01T00:00:00Z");
  for (const char* bad :
       {"", "2026-12-06", "2026-12-06T03:42", "2026-12-06T03:42:00+01:00", "2026-02-30T00:00Z", "2026-12-06T24:00Z",
        "2026-12-06T03:42:00.5Z", "2026-12-06 03:42Z", "yesterday", "2026-12-06T03:42Zjunk"})
    EXPECT_FALSE(parse_utc_time(bad)) << bad;
}

}  // namespace
}  // namespace tenantd

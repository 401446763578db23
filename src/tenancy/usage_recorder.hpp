// Per-tenant usage of this process, by minute, kept in memory until the background task
// flushes it to master (db/usage_repository.hpp): requests, 4xx and 5xx answers, a latency
// histogram, statements and database time, connections held (sampled), database size
// (sampled) and the last activity. Cheap on the request path: a tenant's counters sit in
// one of `shard_count` maps, each behind its own mutex, so I/O threads recording for
// different tenants rarely meet; no allocation once a tenant's minute exists.
// Memory is bounded: at most `max_tenant_minutes` (tenant, minute) entries are held; events
// for a new tenant past that are dropped and counted (overflow()). After a failed flush the
// rows taken are put back whatever the cap, so the bound is twice the cap while master is away.
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "domain/usage.hpp"

namespace tenantd::tenancy {

class usage_recorder {
 public:
  static constexpr std::size_t shard_count = 16;
  using clock = std::chrono::system_clock;

  explicit usage_recorder(std::size_t max_tenant_minutes);
  usage_recorder(const usage_recorder&) = delete;
  usage_recorder& operator=(const usage_recorder&) = delete;

  // One answered request of `tenant_id`; 4xx and 5xx are counted apart.
  void record_request(std::string_view tenant_id, unsigned status, std::chrono::microseconds latency,
                      clock::time_point now = clock::now());
  // `statements` statements that kept a tenant connection busy for `db_time` together.
  void record_statements(std::string_view tenant_id, std::int64_t statements, std::chrono::microseconds db_time,
                         clock::time_point now = clock::now());
  // A sample of the connections the tenant holds (kept if it is the minute's largest).
  // Samples are not activity: they never create an entry, so an idle tenant costs nothing.
  void record_connections(std::string_view tenant_id, std::int64_t held, clock::time_point now = clock::now());
  // A sample of the tenant database's size; creates the minute's entry if needed.
  void record_database_size(std::string_view tenant_id, std::int64_t bytes, clock::time_point now = clock::now());

  // Everything recorded since the last take(), removed from memory (sorted by tenant, minute).
  // The rows of the minute of `now` and the one before are also kept for minute_totals().
  std::vector<usage_row> take(clock::time_point now = clock::now());
  // Puts rows back (a flush that failed), merged with what was recorded meanwhile.
  void restore(const std::vector<usage_row>& rows);
  // A copy of what take() would return, leaving it in place.
  std::vector<usage_row> snapshot() const;
  // The tenants active in the given minute with their request counts and database time, from
  // both what is still held and what take() returned since (kept for the current and the
  // previous minute only): what the top-N metrics are computed from.
  std::vector<usage_row> minute_totals(std::int64_t minute) const;
  // Tenant ids with an entry right now (for sampling sizes and connections).
  std::vector<std::string> active_tenants() const;

  // (tenant, minute) entries held right now.
  std::size_t entries() const noexcept { return entries_.load(std::memory_order_relaxed); }
  // Events dropped because the cap was reached (each request or statement batch counts one).
  std::uint64_t overflow() const noexcept { return overflow_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept { return max_entries_; }

  static std::int64_t minute_of(clock::time_point t) noexcept;

 private:
  struct key {
    std::string tenant_id;
    std::int64_t minute;
  };
  struct key_view {
    std::string_view tenant_id;
    std::int64_t minute;
  };
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(const key& k) const noexcept { return (*this)(key_view{k.tenant_id, k.minute}); }
    std::size_t operator()(const key_view& k) const noexcept;
  };
  struct key_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return a.minute == b.minute && std::string_view(a.tenant_id) == std::string_view(b.tenant_id);
    }
  };
  using minute_map = std::unordered_map<key, usage_counts, key_hash, key_equal>;
  struct shard {
    mutable std::mutex mutex;
    minute_map entries;
  };

  // Runs `change` on the tenant's entry for the minute of `now`. A missing entry is created
  // when `create` is set and the cap allows (else the event is dropped, counted as overflow
  // when `create` is set).
  template <class Change>
  void update(std::string_view tenant_id, clock::time_point now, bool create, Change&& change);
  shard& shard_for(std::string_view tenant_id) noexcept;

  std::size_t max_entries_;
  std::array<shard, shard_count> shards_;
  std::atomic<std::size_t> entries_{0};
  std::atomic<std::uint64_t> overflow_{0};
  // What take() returned for the current and previous minute, for minute_totals().
  mutable std::mutex recent_mutex_;
  minute_map recent_;
};

}  // namespace tenantd::tenancy

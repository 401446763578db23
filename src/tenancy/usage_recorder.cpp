// Sharded per-(tenant, minute) counters; see usage_recorder.hpp for the bounds.
#include "tenancy/usage_recorder.hpp"

#include <algorithm>
#include <functional>

namespace tenantd::tenancy {
namespace {

std::int64_t unix_ms(usage_recorder::clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

void sort_rows(std::vector<usage_row>& rows) {
  std::sort(rows.begin(), rows.end(), [](const usage_row& a, const usage_row& b) {
    return a.tenant_id != b.tenant_id ? a.tenant_id < b.tenant_id : a.minute < b.minute;
  });
}

}  // namespace

usage_recorder::usage_recorder(std::size_t max_tenant_minutes) : max_entries_(max_tenant_minutes) {}

std::int64_t usage_recorder::minute_of(clock::time_point t) noexcept {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  return seconds - (((seconds % 60) + 60) % 60);
}

std::size_t usage_recorder::key_hash::operator()(const key_view& k) const noexcept {
  return std::hash<std::string_view>{}(k.tenant_id) ^ (static_cast<std::size_t>(k.minute) * 0x9E3779B97F4A7C15ULL);
}

usage_recorder::shard& usage_recorder::shard_for(std::string_view tenant_id) noexcept {
  return shards_[std::hash<std::string_view>{}(tenant_id) % shard_count];
}

template <class Change>
void usage_recorder::update(std::string_view tenant_id, clock::time_point now, bool create, Change&& change) {
  const key_view k{tenant_id, minute_of(now)};
  auto& s = shard_for(tenant_id);
  std::lock_guard lock(s.mutex);
  if (auto it = s.entries.find(k); it != s.entries.end()) {
    change(it->second);
    return;
  }
  if (!create) return;
  // Claim a place under the cap before inserting; entries_ only shrinks in take().
  if (entries_.fetch_add(1, std::memory_order_relaxed) >= max_entries_) {
    entries_.fetch_sub(1, std::memory_order_relaxed);
    overflow_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  auto& counts = s.entries.try_emplace(key{std::string(tenant_id), k.minute}).first->second;
  change(counts);
}

void usage_recorder::record_request(std::string_view tenant_id, unsigned status, std::chrono::microseconds latency,
                                    clock::time_point now) {
  const auto bucket = usage_latency_bucket(latency);
  const auto at = unix_ms(now);
  update(tenant_id, now, true, [&](usage_counts& c) {
    ++c.requests;
    if (status >= 400 && status < 500) ++c.errors_4xx;
    if (status >= 500) ++c.errors_5xx;
    ++c.latency[bucket];
    c.last_activity_ms = std::max(c.last_activity_ms, at);
  });
}

void usage_recorder::record_statements(std::string_view tenant_id, std::int64_t statements,
                                       std::chrono::microseconds db_time, clock::time_point now) {
  const auto at = unix_ms(now);
  update(tenant_id, now, true, [&](usage_counts& c) {
    c.statements += statements;
    c.db_time_us += db_time.count();
    c.last_activity_ms = std::max(c.last_activity_ms, at);
  });
}

void usage_recorder::record_connections(std::string_view tenant_id, std::int64_t held, clock::time_point now) {
  update(tenant_id, now, false, [&](usage_counts& c) { c.connections_max = std::max(c.connections_max, held); });
}

void usage_recorder::record_database_size(std::string_view tenant_id, std::int64_t bytes, clock::time_point now) {
  update(tenant_id, now, true, [&](usage_counts& c) { c.db_size_bytes = std::max(c.db_size_bytes, bytes); });
}

std::vector<usage_row> usage_recorder::take(clock::time_point now) {
  std::vector<usage_row> rows;
  for (auto& s : shards_) {
    minute_map taken;
    {
      std::lock_guard lock(s.mutex);
      taken.swap(s.entries);
      entries_.fetch_sub(taken.size(), std::memory_order_relaxed);
    }
    for (auto& [k, counts] : taken) rows.push_back({k.tenant_id, k.minute, counts});
  }
  sort_rows(rows);
  const auto oldest_kept = minute_of(now) - 60;
  std::lock_guard lock(recent_mutex_);
  std::erase_if(recent_, [&](const auto& entry) { return entry.first.minute < oldest_kept; });
  for (const auto& r : rows)
    if (r.minute >= oldest_kept) recent_[key{r.tenant_id, r.minute}].merge(r.counts);
  return rows;
}

void usage_recorder::restore(const std::vector<usage_row>& rows) {
  for (const auto& r : rows) {
    auto& s = shard_for(r.tenant_id);
    std::lock_guard lock(s.mutex);
    auto [it, inserted] = s.entries.try_emplace(key{r.tenant_id, r.minute});
    if (inserted) entries_.fetch_add(1, std::memory_order_relaxed);
    it->second.merge(r.counts);
  }
  // They will be taken again: what take() kept of them for minute_totals() would count twice.
  std::lock_guard lock(recent_mutex_);
  for (const auto& r : rows) {
    auto it = recent_.find(key_view{r.tenant_id, r.minute});
    if (it != recent_.end()) recent_.erase(it);
  }
}

std::vector<usage_row> usage_recorder::snapshot() const {
  std::vector<usage_row> rows;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    for (const auto& [k, counts] : s.entries) rows.push_back({k.tenant_id, k.minute, counts});
  }
  sort_rows(rows);
  return rows;
}

std::vector<usage_row> usage_recorder::minute_totals(std::int64_t minute) const {
  std::unordered_map<std::string, usage_counts> totals;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    for (const auto& [k, counts] : s.entries)
      if (k.minute == minute) totals[k.tenant_id].merge(counts);
  }
  {
    std::lock_guard lock(recent_mutex_);
    for (const auto& [k, counts] : recent_)
      if (k.minute == minute) totals[k.tenant_id].merge(counts);
  }
  std::vector<usage_row> rows;
  rows.reserve(totals.size());
  for (auto& [tenant, counts] : totals) rows.push_back({tenant, minute, counts});
  sort_rows(rows);
  return rows;
}

std::vector<std::string> usage_recorder::active_tenants() const {
  std::vector<std::string> ids;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    for (const auto& entry : s.entries) ids.push_back(entry.first.tenant_id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace tenantd::tenancy

// Pool registry: lazy per-tenant pools in one shard per I/O thread, a global budget across the
// shards and LRU eviction of idle connections.
#include "tenancy/pool_registry.hpp"

#include "db/conninfo.hpp"
#include "domain/io_thread.hpp"

#include <algorithm>
#include <cassert>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace tenantd::tenancy {
namespace {
constexpr std::chrono::milliseconds min_connect_timeout{10000};
}  // namespace

std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout) {
  return db::service_conninfo({s.host, s.port, s.user, s.password}, database, statement_timeout);
}

pool_key pool_key_of(const tenant_record& tenant) { return pool_key{"main", tenant.database_name}; }

pool_registry::pool_registry(std::vector<boost::asio::any_io_executor> shard_executors,
                             tenant_connection_settings settings)
    : settings_(std::move(settings)) {
  if (shard_executors.empty()) throw std::invalid_argument("pool_registry: no shard executor");
  shards_.reserve(shard_executors.size());
  for (auto& ex : shard_executors) shards_.push_back(std::make_unique<shard>(std::move(ex)));
}

pool_registry::pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings)
    : pool_registry(std::vector<boost::asio::any_io_executor>{std::move(executor)}, std::move(settings)) {}

pool_registry::~pool_registry() {
  shutdown();
  guard_->retire();
}

std::shared_ptr<db::pool> pool_registry::pool_for(const tenant_record& tenant) {
  const auto index = io_thread::shard(shards_.size());
  auto& home = *shards_[index];
#ifndef NDEBUG
  if (shards_.size() > 1) {  // one shard may be shared by the threads of one io_context
    auto expected = std::thread::id{};
    const auto self = std::this_thread::get_id();
    const bool first = home.owner.compare_exchange_strong(expected, self);
    assert((first || expected == self) && "a pool registry shard is used from two threads");
    (void)first;
  }
#endif
  const auto key = pool_key_of(tenant);
  std::shared_ptr<db::pool> own;
  {
    std::lock_guard lock(home.mutex);
    if (auto it = home.pools.find(key); it != home.pools.end()) own = it->second;
  }
  if (own) {
    // The common case: room in the budget, or this thread's pool already has its connections.
    if (!budget_nearly_full()) return own;
    const auto st = own->stats();
    if (st.open > 0 || st.opening > 0) return own;
  }
  if (budget_nearly_full())
    if (auto other = borrowable(index, key)) return other;
  return own ? own : create_pool(home, index, tenant);
}

bool pool_registry::budget_nearly_full() const noexcept {
  // One slot per shard of slack: the last slots go to tenants that hold nothing anywhere.
  return shards_.size() > 1 && used_.load() + shards_.size() >= settings_.max_connections;
}

std::shared_ptr<db::pool> pool_registry::borrowable(std::size_t own_shard, const pool_key& key) const {
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    if (i == own_shard) continue;
    if (auto p = find(pool_ref{i, key}); p && p->stats().open > 0) return p;
  }
  return nullptr;
}

std::shared_ptr<db::pool> pool_registry::create_pool(shard& home, std::size_t index, const tenant_record& tenant) {
  db::pool_options options;
  options.connection.conninfo = tenant_conninfo(settings_, tenant.database_name, settings_.statement_timeout);
  // Connects are the pool's background work and a waiter is not tied to one, so a connect may
  // take longer than a request waits: a late one still feeds the pool. A short connect
  // timeout would only turn a busy postmaster into a back-off.
  options.connection.connect_timeout = std::max(settings_.acquire_timeout, min_connect_timeout);
  options.connection.query_timeout = settings_.statement_timeout + std::chrono::milliseconds(1000);
  options.max_size = settings_.pool_size;
  options.pipeline_depth = settings_.pipeline_depth;
  options.acquire_timeout = settings_.acquire_timeout;
  options.idle_timeout = settings_.idle_timeout;
  options.connection.slow_query_threshold = settings_.slow_query_threshold;
  options.connection.handshake_executor = settings_.handshake_executor;
  options.connection.label = "tenant=" + tenant.id + " database=" + tenant.database_name;
  const pool_ref ref{index, pool_key_of(tenant)};
  // A pool, or a background connect holding it, may outlive the registry: its callbacks then
  // do nothing (callback_guard).
  options.reserve_slot = [this, ref, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && reserve_slot(ref);
  };
  options.release_slot = [this, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) slot_released();
  };
  options.on_idle = [this, ref, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) connection_parked(ref);
  };
  options.yield_connection = [this, ref, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && should_yield(ref);
  };
  auto created = db::pool::create(home.executor, std::move(options));
  std::lock_guard lock(home.mutex);
  // Only this shard's thread creates its pools, so none can have appeared since the lookup.
  home.pools.emplace(ref.key, created);
  return created;
}

std::shared_ptr<db::pool> pool_registry::find(const pool_ref& ref) const {
  const auto& home = *shards_[ref.shard];
  std::lock_guard lock(home.mutex);
  if (auto it = home.pools.find(ref.key); it != home.pools.end()) return it->second;
  return nullptr;
}

std::vector<std::pair<pool_key, std::shared_ptr<db::pool>>> pool_registry::all_pools() const {
  std::vector<std::pair<pool_key, std::shared_ptr<db::pool>>> all;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    for (const auto& [key, p] : s->pools) all.emplace_back(key, p);
  }
  return all;
}

std::size_t pool_registry::held_by(const pool_ref& ref) const {
  // Established ones; the connection being asked for is still opening.
  const auto p = find(ref);
  return p ? p->stats().open : 0;
}

bool pool_registry::reserve_slot(const pool_ref& requester) {
  std::optional<std::size_t> holds;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = used_.load();
    while (current < settings_.max_connections) {
      if (used_.compare_exchange_weak(current, current + 1)) return true;
    }
    if (!holds) holds = held_by(requester);
    if (!evict_idle_except(requester, *holds)) break;
  }
  const auto held = holds.value_or(0);
  // Holding its fair share or more, a pool is busy, not starved: it waits for its own.
  if (held > 0 && held >= fair_share()) return false;
  {
    std::lock_guard lock(starved_mutex_);
    const auto queued = std::find_if(starved_.begin(), starved_.end(), [&](const starved_pool& s) {
      return s.pool.shard == requester.shard && s.pool.key == requester.key;
    });
    if (queued == starved_.end()) {
      starved_.push_back({requester, held == 0});
      starved_count_.store(starved_.size());
      if (held == 0) starved_empty_count_.fetch_add(1);
    } else if (held == 0 && !queued->holds_nothing) {
      queued->holds_nothing = true;
      starved_empty_count_.fetch_add(1);
    }
  }
  // A slot freed between the refusal and the queueing would otherwise be missed.
  if (used_.load() < settings_.max_connections) wake_starved();
  return false;
}

void pool_registry::slot_released() {
  used_.fetch_sub(1);
  if (starved_count_.load() != 0) wake_starved();
}

// A connection went idle in the pool `parked`. If another pool is starved, the idle one is
// closed, which frees its slot for the starved pool (slot_released -> wake_starved): always
// when a starved pool holds nothing, otherwise only when this pool holds more than its fair
// share (so two pools below their share never take connections from each other in turn).
void pool_registry::connection_parked(const pool_ref& parked) {
  if (starved_count_.load() == 0) return;
  const auto p = find(parked);
  if (!p) return;
  if (starved_empty_count_.load() == 0 && held_by(parked) <= fair_share()) return;
  if (p->close_one_idle()) evictions_.fetch_add(1);
}

// A connection of `releasing` is being released while pools are starved: it is closed for them
// when that pool holds more than its fair share, even if its own requests queue.
bool pool_registry::should_yield(const pool_ref& releasing) {
  if (starved_count_.load() == 0) return false;
  if (held_by(releasing) <= fair_share()) return false;
  evictions_.fetch_add(1);
  return true;
}

std::size_t pool_registry::fair_share() const {
  std::size_t wanting = 0;
  for (const auto& [key, p] : all_pools()) {
    const auto s = p->stats();
    if (s.open > 0 || s.opening > 0 || s.waiters > 0) ++wanting;
  }
  return std::max<std::size_t>(1, settings_.max_connections / std::max<std::size_t>(1, wanting));
}

void pool_registry::wake_starved() {
  for (;;) {
    std::optional<pool_ref> next;
    {
      std::lock_guard lock(starved_mutex_);
      if (starved_.empty()) return;
      next = std::move(starved_.front().pool);
      if (starved_.front().holds_nothing) starved_empty_count_.fetch_sub(1);
      starved_.pop_front();
      starved_count_.store(starved_.size());
    }
    const auto p = find(*next);
    if (p && p->budget_freed()) return;
  }
}

std::size_t pool_registry::starved_pools() const {
  std::lock_guard lock(starved_mutex_);
  return starved_.size();
}

bool pool_registry::evict_idle_except(const pool_ref& requester, std::size_t requester_holds) {
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<db::pool>>> candidates;
  const auto own = find(requester);
  for (auto& [key, p] : all_pools())
    if (p != own) candidates.emplace_back(std::chrono::steady_clock::time_point{}, std::move(p));
  std::erase_if(candidates, [](auto& c) {
    if (c.second->stats().idle == 0) return true;
    c.first = c.second->last_used();
    return false;
  });
  std::sort(candidates.begin(), candidates.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // A tenant with no connection takes any idle one; one that holds some, only a long-idle one.
  const auto idle_before = requester_holds == 0 ? std::chrono::steady_clock::time_point::max()
                                                : std::chrono::steady_clock::now() - settings_.reclaim_idle_after;
  for (const auto& c : candidates) {
    if (c.second->close_one_idle(idle_before)) {
      evictions_.fetch_add(1);
      return true;
    }
    if (requester_holds == 0) return false;  // the least recently used pool's idle one just went
  }
  return false;
}

std::vector<tenant_pool_stats> pool_registry::busiest(std::size_t n) const {
  std::unordered_map<pool_key, db::pool_stats, pool_key_hash> per_tenant;
  for (const auto& [key, p] : all_pools()) {
    const auto s = p->stats();
    auto& sum = per_tenant[key];
    sum.open += s.open;
    sum.idle += s.idle;
    sum.opening += s.opening;
    sum.waiters += s.waiters;
    sum.pipelined = sum.pipelined || s.pipelined;
    sum.connect_failing = sum.connect_failing || s.connect_failing;
  }
  std::vector<tenant_pool_stats> all;
  all.reserve(per_tenant.size());
  for (auto& [key, stats] : per_tenant) all.push_back({key.database, stats});
  const auto busier = [](const tenant_pool_stats& a, const tenant_pool_stats& b) {
    if (a.stats.open != b.stats.open) return a.stats.open > b.stats.open;
    if (a.stats.waiters != b.stats.waiters) return a.stats.waiters > b.stats.waiters;
    return a.database < b.database;
  };
  const auto keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(), busier);
  all.resize(keep);
  return all;
}

void pool_registry::drop(const std::string& database_name) {
  const pool_key key{"main", database_name};
  std::vector<std::shared_ptr<db::pool>> victims;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    if (auto it = s->pools.find(key); it != s->pools.end()) {
      victims.push_back(std::move(it->second));
      s->pools.erase(it);
    }
  }
  for (auto& v : victims) v->shutdown();
}

void pool_registry::sweep() {
  for (const auto& [key, p] : all_pools()) p->close_idle_older_than(settings_.idle_timeout);
  std::vector<std::shared_ptr<db::pool>> forgotten;  // destroyed after the locks are released
  for (auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    for (auto it = s->pools.begin(); it != s->pools.end();) {
      const auto st = it->second->stats();
      if (st.open == 0 && st.opening == 0 && st.waiters == 0 &&
          std::chrono::steady_clock::now() - it->second->last_used() > settings_.idle_timeout) {
        forgotten.push_back(std::move(it->second));
        it = s->pools.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void pool_registry::shutdown() {
  std::vector<std::shared_ptr<db::pool>> all;
  for (auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    for (auto& [key, p] : s->pools) all.push_back(std::move(p));
    s->pools.clear();
  }
  for (auto& p : all) p->shutdown();
}

std::size_t pool_registry::pool_count() const {
  std::unordered_map<pool_key, bool, pool_key_hash> tenants;
  for (const auto& [key, p] : all_pools()) tenants[key] = true;
  return tenants.size();
}

}  // namespace tenantd::tenancy

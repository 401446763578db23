// Pool registry: lazy per-tenant pools, a global budget and LRU eviction of idle connections.
#include "tenancy/pool_registry.hpp"

#include "db/conninfo.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace tenantd::tenancy {
namespace {
constexpr std::chrono::milliseconds min_connect_timeout{10000};
}  // namespace

std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout) {
  return db::service_conninfo({s.host, s.port, s.user, s.password}, database, statement_timeout);
}

pool_registry::pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings)
    : executor_(std::move(executor)), settings_(std::move(settings)) {}

pool_registry::~pool_registry() {
  shutdown();
  guard_->retire();
}

std::shared_ptr<db::pool> pool_registry::pool_for(const tenant_record& tenant) {
  std::lock_guard lock(mutex_);
  if (auto it = pools_.find(tenant.database_name); it != pools_.end()) return it->second;
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
  const std::string name = tenant.database_name;
  // A pool, or a background connect holding it, may outlive the registry: its callbacks then
  // do nothing (callback_guard).
  options.reserve_slot = [this, name, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && reserve_slot(name);
  };
  options.release_slot = [this, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) slot_released();
  };
  options.on_idle = [this, name, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) connection_parked(name);
  };
  options.yield_connection = [this, name, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && should_yield(name);
  };
  auto created = db::pool::create(executor_, std::move(options));
  pools_.emplace(tenant.database_name, created);
  return created;
}

std::size_t pool_registry::held_by(const std::string& database) const {
  std::shared_ptr<db::pool> p;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(database); it != pools_.end()) p = it->second;
  }
  if (!p) return 0;
  return p->stats().open;  // established ones; the connection being asked for is still opening
}

bool pool_registry::reserve_slot(const std::string& requester) {
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
    const auto queued =
        std::find_if(starved_.begin(), starved_.end(), [&](const starved_pool& s) { return s.database == requester; });
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

// A connection went idle in `database`'s pool. If another pool is starved, the idle one is
// closed, which frees its slot for the starved pool (slot_released -> wake_starved): always
// when a starved pool holds nothing, otherwise only when this pool holds more than its fair
// share (so two pools below their share never take connections from each other in turn).
void pool_registry::connection_parked(const std::string& database) {
  if (starved_count_.load() == 0) return;
  std::shared_ptr<db::pool> parked;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(database); it != pools_.end()) parked = it->second;
  }
  if (!parked) return;
  if (starved_empty_count_.load() == 0 && parked->stats().open <= fair_share()) return;
  if (parked->close_one_idle()) evictions_.fetch_add(1);
}

// A connection of `database` is being released while pools are starved: it is closed for them
// when its pool holds more than its fair share, even if its own requests queue.
bool pool_registry::should_yield(const std::string& database) {
  if (starved_count_.load() == 0) return false;
  std::shared_ptr<db::pool> releasing;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(database); it != pools_.end()) releasing = it->second;
  }
  if (!releasing || releasing->stats().open <= fair_share()) return false;
  evictions_.fetch_add(1);
  return true;
}

std::size_t pool_registry::fair_share() const {
  std::size_t wanting = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, p] : pools_) {
      const auto s = p->stats();
      if (s.open > 0 || s.opening > 0 || s.waiters > 0) ++wanting;
    }
  }
  return std::max<std::size_t>(1, settings_.max_connections / std::max<std::size_t>(1, wanting));
}

void pool_registry::wake_starved() {
  for (;;) {
    std::string database;
    {
      std::lock_guard lock(starved_mutex_);
      if (starved_.empty()) return;
      database = std::move(starved_.front().database);
      if (starved_.front().holds_nothing) starved_empty_count_.fetch_sub(1);
      starved_.pop_front();
      starved_count_.store(starved_.size());
    }
    std::shared_ptr<db::pool> p;
    {
      std::lock_guard lock(mutex_);
      if (auto it = pools_.find(database); it != pools_.end()) p = it->second;
    }
    if (p && p->budget_freed()) return;
  }
}

std::size_t pool_registry::starved_pools() const {
  std::lock_guard lock(starved_mutex_);
  return starved_.size();
}

bool pool_registry::evict_idle_except(const std::string& requester, std::size_t requester_holds) {
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<db::pool>>> candidates;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, p] : pools_)
      if (name != requester) candidates.emplace_back(std::chrono::steady_clock::time_point{}, p);
  }
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
  std::vector<tenant_pool_stats> all;
  {
    std::lock_guard lock(mutex_);
    all.reserve(pools_.size());
    for (const auto& [name, p] : pools_) all.push_back({name, p->stats()});
  }
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
  std::shared_ptr<db::pool> victim;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(database_name); it != pools_.end()) {
      victim = it->second;
      pools_.erase(it);
    }
  }
  if (victim) victim->shutdown();
}

void pool_registry::sweep() {
  std::vector<std::shared_ptr<db::pool>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, p] : pools_) all.push_back(p);
  }
  for (const auto& p : all) p->close_idle_older_than(settings_.idle_timeout);
  all.clear();
  std::vector<std::shared_ptr<db::pool>> forgotten;  // destroyed after the lock is released
  std::lock_guard lock(mutex_);
  for (auto it = pools_.begin(); it != pools_.end();) {
    const auto s = it->second->stats();
    if (s.open == 0 && s.opening == 0 && s.waiters == 0 &&
        std::chrono::steady_clock::now() - it->second->last_used() > settings_.idle_timeout) {
      forgotten.push_back(std::move(it->second));
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
}

void pool_registry::shutdown() {
  std::unordered_map<std::string, std::shared_ptr<db::pool>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(pools_);
  }
  for (auto& [name, p] : all) p->shutdown();
}

std::size_t pool_registry::pool_count() const {
  std::lock_guard lock(mutex_);
  return pools_.size();
}

}  // namespace tenantd::tenancy

// Pool registry: lazy per-tenant pools keyed by (server, database), a budget per database
// server and LRU eviction of idle connections within a server.
#include "tenancy/pool_registry.hpp"

#include "db/connection.hpp"
#include "db/conninfo.hpp"
#include "domain/server.hpp"

#include <algorithm>
#include <optional>
#include <vector>

namespace tenantd::tenancy {
namespace {
constexpr std::chrono::milliseconds min_connect_timeout{10000};
}  // namespace

std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout) {
  return db::service_conninfo({s.host, s.port, s.user, s.password, {}, {}}, database, statement_timeout);
}

pool_key pool_key_of(const tenant_record& tenant) {
  return {tenant.db_server.value_or(std::string(main_server_name)), tenant.database_name};
}

pool_registry::pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings,
                             endpoint_lookup servers)
    : executor_(std::move(executor)), settings_(std::move(settings)), servers_(std::move(servers)) {}

pool_registry::~pool_registry() {
  shutdown();
  guard_->retire();
}

pool_registry::budget& pool_registry::budget_of(const std::string& server) {
  auto& slot = budgets_[server];
  if (!slot) {
    slot = std::make_unique<budget>();
    slot->watch = db::server_watch::create(executor_, {.server = server});
  }
  return *slot;
}

std::shared_ptr<db::pool> pool_registry::find_pool(const pool_key& key) const {
  std::lock_guard lock(mutex_);
  if (auto it = pools_.find(key); it != pools_.end()) return it->second;
  return nullptr;
}

std::shared_ptr<db::pool> pool_registry::pool_for(const tenant_record& tenant,
                                                  const std::optional<db::server_endpoint>& known) {
  auto key = pool_key_of(tenant);
  if (auto found = find_pool(key)) return found;
  // main is the settings' server; another one's endpoint comes from the servers directory
  // (looked up without the lock: it may take the directory's own).
  db::server_endpoint endpoint{settings_.host, settings_.port, settings_.user, settings_.password, {}, {}};
  if (key.server != main_server_name) {
    auto found = known ? known : (servers_ ? servers_(key.server) : std::nullopt);
    if (!found) throw db::unavailable_error("database server " + key.server + " is not known to this process");
    endpoint = std::move(*found);
  }
  std::lock_guard lock(mutex_);
  if (auto it = pools_.find(key); it != pools_.end()) return it->second;
  db::pool_options options;
  options.connection.conninfo = db::service_conninfo(endpoint, key.database, settings_.statement_timeout);
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
  options.lanes = settings_.lanes;
  options.connection.label = "tenant=" + tenant.id + " server=" + key.server + " database=" + key.database;
  budget* b = &budget_of(key.server);
  options.connection.watch = b->watch;
  // A pool, or a background connect holding it, may outlive the registry: its callbacks then
  // do nothing (callback_guard). Budgets live as long as the registry.
  options.reserve_slot = [this, b, key, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && reserve_slot(*b, key);
  };
  options.release_slot = [this, b, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) slot_released(*b);
  };
  options.on_idle = [this, b, key, guard = guard_] {
    const callback_guard::call call(*guard);
    if (call.alive()) connection_parked(*b, key);
  };
  options.yield_connection = [this, b, key, guard = guard_] {
    const callback_guard::call call(*guard);
    return call.alive() && should_yield(*b, key);
  };
  options.budget_full = [this, b, guard = guard_] {
    const callback_guard::call call(*guard);
    return !call.alive() || b->used.load() >= settings_.max_connections;
  };
  auto created = db::pool::create(executor_, std::move(options));
  pools_.emplace(std::move(key), created);
  return created;
}

std::size_t pool_registry::held_by(const pool_key& key) const {
  const auto p = find_pool(key);
  if (!p) return 0;
  return p->stats().open;  // established ones; the connection being asked for is still opening
}

bool pool_registry::reserve_slot(budget& b, const pool_key& requester) {
  std::optional<std::size_t> holds;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto current = b.used.load();
    while (current < settings_.max_connections) {
      if (b.used.compare_exchange_weak(current, current + 1)) {
        used_.fetch_add(1);
        return true;
      }
    }
    if (!holds) holds = held_by(requester);
    if (!evict_idle_except(requester, *holds)) break;
  }
  const auto held = holds.value_or(0);
  // Holding its fair share or more, a pool is busy, not starved: it waits for its own.
  if (held > 0 && held >= fair_share(requester.server)) return false;
  {
    std::lock_guard lock(b.starved_mutex);
    const auto queued =
        std::find_if(b.starved.begin(), b.starved.end(), [&](const starved_pool& s) { return s.key == requester; });
    if (queued == b.starved.end()) {
      b.starved.push_back({requester, held == 0});
      b.starved_count.store(b.starved.size());
      if (held == 0) b.starved_empty_count.fetch_add(1);
    } else if (held == 0 && !queued->holds_nothing) {
      queued->holds_nothing = true;
      b.starved_empty_count.fetch_add(1);
    }
  }
  // A slot freed between the refusal and the queueing would otherwise be missed.
  if (b.used.load() < settings_.max_connections) wake_starved(b);
  return false;
}

void pool_registry::slot_released(budget& b) {
  b.used.fetch_sub(1);
  used_.fetch_sub(1);
  if (b.starved_count.load() != 0) wake_starved(b);
}

// A connection went idle in `key`'s pool. If another pool of its server is starved, the idle
// one is closed, which frees its slot for the starved pool (slot_released -> wake_starved):
// always when a starved pool holds nothing, otherwise only when this pool holds more than its
// fair share (so two pools below their share never take connections from each other in turn).
void pool_registry::connection_parked(budget& b, const pool_key& key) {
  if (b.starved_count.load() == 0) return;
  const auto parked = find_pool(key);
  if (!parked) return;
  if (b.starved_empty_count.load() == 0 && parked->stats().open <= fair_share(key.server)) return;
  if (parked->close_one_idle()) evictions_.fetch_add(1);
}

// A connection of `key` is being released while pools of its server are starved: it is
// closed for them when its pool holds more than its fair share, even if its own requests queue.
bool pool_registry::should_yield(budget& b, const pool_key& key) {
  if (b.starved_count.load() == 0) return false;
  const auto releasing = find_pool(key);
  if (!releasing || releasing->stats().open <= fair_share(key.server)) return false;
  evictions_.fetch_add(1);
  return true;
}

std::size_t pool_registry::fair_share(const std::string& server) const {
  std::size_t wanting = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, p] : pools_) {
      if (key.server != server) continue;
      const auto s = p->stats();
      if (s.open > 0 || s.opening > 0 || s.waiters > 0) ++wanting;
    }
  }
  return std::max<std::size_t>(1, settings_.max_connections / std::max<std::size_t>(1, wanting));
}

void pool_registry::wake_starved(budget& b) {
  for (;;) {
    pool_key key;
    {
      std::lock_guard lock(b.starved_mutex);
      if (b.starved.empty()) return;
      key = std::move(b.starved.front().key);
      if (b.starved.front().holds_nothing) b.starved_empty_count.fetch_sub(1);
      b.starved.pop_front();
      b.starved_count.store(b.starved.size());
    }
    const auto p = find_pool(key);
    if (p && p->budget_freed()) return;
  }
}

std::size_t pool_registry::starved_pools() const {
  std::vector<const budget*> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [server, b] : budgets_) all.push_back(b.get());
  }
  std::size_t n = 0;
  for (const auto* b : all) n += b->starved_count.load();
  return n;
}

std::size_t pool_registry::connections_in_use_or_idle(const std::string& server) const {
  std::lock_guard lock(mutex_);
  if (auto it = budgets_.find(server); it != budgets_.end()) return it->second->used.load();
  return 0;
}

std::map<std::string, std::size_t> pool_registry::connections_by_server() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, std::size_t> out;
  for (const auto& [server, b] : budgets_) out[server] = b->used.load();
  return out;
}

bool pool_registry::evict_idle_except(const pool_key& requester, std::size_t requester_holds) {
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::shared_ptr<db::pool>>> candidates;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, p] : pools_)
      if (key.server == requester.server && !(key == requester))
        candidates.emplace_back(std::chrono::steady_clock::time_point{}, p);
  }
  std::erase_if(candidates, [](auto& c) {
    if (c.second->stats().idle == 0) return true;
    c.first = c.second->last_used();
    return false;
  });
  std::sort(candidates.begin(), candidates.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // A tenant with no connection takes an idle one unused for a moment (so that a busy tenant's
  // pipelined connection, idle between two statements, is not taken from it: pools holding
  // nothing would otherwise close each other's connections in turn, each then reconnecting);
  // one that holds some, only a long-idle one.
  const auto now = std::chrono::steady_clock::now();
  const auto idle_before = now - (requester_holds == 0 ? settings_.reclaim_recent_after : settings_.reclaim_idle_after);
  for (const auto& c : candidates) {
    if (c.second->close_one_idle(idle_before)) {
      evictions_.fetch_add(1);
      return true;
    }
  }
  return false;
}

std::vector<tenant_pool_stats> pool_registry::busiest(std::size_t n) const {
  std::vector<tenant_pool_stats> all;
  {
    std::lock_guard lock(mutex_);
    all.reserve(pools_.size());
    for (const auto& [key, p] : pools_) all.push_back({key.server, key.database, p->stats()});
  }
  const auto busier = [](const tenant_pool_stats& a, const tenant_pool_stats& b) {
    if (a.stats.open != b.stats.open) return a.stats.open > b.stats.open;
    if (a.stats.waiters != b.stats.waiters) return a.stats.waiters > b.stats.waiters;
    if (a.database != b.database) return a.database < b.database;
    return a.server < b.server;
  };
  const auto keep = std::min(n, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(), busier);
  all.resize(keep);
  return all;
}

void pool_registry::drop(const pool_key& key) {
  std::shared_ptr<db::pool> victim;
  {
    std::lock_guard lock(mutex_);
    if (auto it = pools_.find(key); it != pools_.end()) {
      victim = it->second;
      pools_.erase(it);
    }
  }
  if (victim) victim->shutdown();
}

void pool_registry::drop_server(const std::string& server) {
  std::vector<std::shared_ptr<db::pool>> victims;
  {
    std::lock_guard lock(mutex_);
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (it->first.server == server) {
        victims.push_back(std::move(it->second));
        it = pools_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& p : victims) p->shutdown();
}

void pool_registry::relieve_starved() {
  std::vector<budget*> starved;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [server, b] : budgets_)
      if (b->starved_count.load() != 0) starved.push_back(b.get());
  }
  for (auto* b : starved) {
    std::optional<pool_key> oldest;
    {
      std::lock_guard lock(b->starved_mutex);
      if (!b->starved.empty()) oldest = b->starved.front().key;
    }
    // The close returns the slot (slot_released), which offers it to the starved pools in order.
    if (oldest) (void)evict_idle_except(*oldest, held_by(*oldest));
  }
}

void pool_registry::sweep() {
  std::vector<std::shared_ptr<db::pool>> all;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, p] : pools_) all.push_back(p);
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
  std::unordered_map<pool_key, std::shared_ptr<db::pool>, pool_key_hash> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(pools_);
    for (auto& [server, b] : budgets_) b->watch->stop();
  }
  for (auto& [key, p] : all) p->shutdown();
}

std::vector<server_health> pool_registry::server_health_list() const {
  std::vector<server_health> list;
  std::lock_guard lock(mutex_);
  list.reserve(budgets_.size());
  for (const auto& [server, b] : budgets_) list.push_back({server, !b->watch->down(), b->watch->outages()});
  std::sort(list.begin(), list.end(),
            [](const server_health& a, const server_health& b) { return a.server < b.server; });
  return list;
}

std::size_t pool_registry::pool_count() const {
  std::lock_guard lock(mutex_);
  return pools_.size();
}

}  // namespace tenantd::tenancy

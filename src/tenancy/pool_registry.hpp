// Per-tenant connection pools under one global connection budget. A pool is created on a
// tenant's first request and never holds more than pool_size connections, so one tenant
// cannot take the whole budget. When the budget is full, the least recently used idle
// connection of another tenant is closed to make room (a busy one never is); when there is
// none, the pool is queued as starved, in arrival order, and is offered the next slot that
// frees up: a connection closed anywhere, or one going idle in another tenant's pool (which
// is then closed for it). Idle connections close after the idle timeout (sweep()).
//
// A tenant that already holds its fair share (budget ÷ tenants holding or waiting for
// connections) or more is not starved, only busy: it may take another tenant's idle
// connection only once that one has sat unused for `reclaim_idle_after`, and otherwise waits
// for its own. Without that, active tenants × pool_size > budget makes every pool steal from
// the others in turn, and the server spends its time opening connections. A tenant holding
// less than its share is queued as starved too, and a pool holding more than its share gives
// a connection back to it when it releases one, even while its own requests queue (and any
// pool gives an idle connection to a starved one holding nothing).
//
// Shards: one per I/O thread (serve() runs one io_context per thread). A tenant gets a pool
// in each shard whose thread serves one of its requests, and that pool (with its pipelined
// connection) runs on that thread's executor and is used by requests on that thread:
// pool_for picks the calling thread's shard (io_thread::index()). pool_size applies per shard
// (a tenant may hold pool_size × shards connections) and the budget to all shards together.
// For the budget each shard's pool is a participant of its own: its fair share is budget ÷
// pools holding or waiting for connections, and what it holds is its own connections. (When
// the fairness counted the tenant's connections in every shard, a tenant's new pool on one
// thread was "not starved" because of connections held by its pool on the other thread,
// which it could never use: at the default budget, bench (a) stalled.)
// Borrowing: when the budget is (nearly) full and the calling thread's pool of a tenant holds
// no connection while the tenant's pool in another shard does, pool_for returns that one: the
// request then crosses threads (the pool is thread-safe) instead of taking another tenant's
// connection or waiting. With room in the budget every thread uses its own pool.
// Eviction, the starved queue, drop(), sweep() and the metrics span all shards.
#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "db/pool.hpp"
#include "domain/records.hpp"

namespace tenantd::tenancy {

struct tenant_connection_settings {
  std::string host;
  std::string port;
  std::string user;
  std::string password;
  std::size_t pool_size{4};         // per tenant
  std::size_t max_connections{64};  // all tenants together
  std::chrono::milliseconds acquire_timeout{2000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds slow_query_threshold{0};  // log statements slower than this (0 = off)
  // A tenant holding connections may close another's idle one only after it has been idle this long.
  std::chrono::milliseconds reclaim_idle_after{1000};
  // Single statements of the request path share one pipelined connection per tenant pool, at
  // most this many in flight (then they take exclusive connections); 0 turns pipelining off.
  std::size_t pipeline_depth{32};
  // Where new connections' connect steps run (db::connection_options::handshake_executor);
  // unset: on the pool's own executor.
  std::optional<boost::asio::any_io_executor> handshake_executor{};
};

// Which pools a tenant's connections come from: its database on a PostgreSQL server. Only the
// one server ("main", the TENANT_DB_* settings) exists for now.
struct pool_key {
  std::string server{"main"};
  std::string database;
  bool operator==(const pool_key&) const = default;
};
struct pool_key_hash {
  std::size_t operator()(const pool_key& k) const noexcept {
    return std::hash<std::string>{}(k.database) * 31U + std::hash<std::string>{}(k.server);
  }
};
pool_key pool_key_of(const tenant_record& tenant);

// One tenant pool's connection counts (summed over the shards), for metrics.
struct tenant_pool_stats {
  std::string database;
  db::pool_stats stats;
};

// libpq conninfo for a database on the tenant server, with timeouts and keepalives.
std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout);

class pool_registry {
 public:
  // One shard per executor: shard k's pools run on shard_executors[k] (I/O thread k's).
  pool_registry(std::vector<boost::asio::any_io_executor> shard_executors, tenant_connection_settings settings);
  // One shard (tools and tests that run one io_context).
  pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings);
  ~pool_registry();

  // The pool of the tenant's database in the calling I/O thread's shard, created on first use
  // (no connection is opened here). In debug builds with several shards, asserts that each shard is only ever
  // used from one thread.
  std::shared_ptr<db::pool> pool_for(const tenant_record& tenant);
  // Closes and forgets the pools of a database in every shard (tenant deleted or suspended).
  void drop(const std::string& database_name);
  // Closes connections idle longer than the idle timeout; forgets pools left empty (every shard).
  void sweep();
  void shutdown();

  // Connections of all shards together (the budget's count).
  std::size_t connections_in_use_or_idle() const noexcept { return used_.load(); }
  // Tenant databases with a pool in at least one shard.
  std::size_t pool_count() const;
  std::size_t shard_count() const noexcept { return shards_.size(); }
  // Idle connections of other tenants closed to make room under the budget, since start.
  std::uint64_t evictions() const noexcept { return evictions_.load(); }
  // Pools waiting for a budget slot right now.
  std::size_t starved_pools() const;
  // The `n` tenant databases with the most open connections (then waiters) over all shards,
  // busiest first.
  std::vector<tenant_pool_stats> busiest(std::size_t n) const;
  const tenant_connection_settings& settings() const noexcept { return settings_; }

 private:
  struct shard {
    explicit shard(boost::asio::any_io_executor ex) : executor(std::move(ex)) {}
    boost::asio::any_io_executor executor;
    // Taken by the shard's own thread (pool_for) and, briefly, by the budget's decisions,
    // sweep and metrics from other threads: uncontended on the request path.
    mutable std::mutex mutex;
    std::unordered_map<pool_key, std::shared_ptr<db::pool>, pool_key_hash> pools;
#ifndef NDEBUG
    std::atomic<std::thread::id> owner{};  // the one thread that calls pool_for on it
#endif
  };
  struct pool_ref {
    std::size_t shard;
    pool_key key;
  };

  std::shared_ptr<db::pool> create_pool(shard& home, std::size_t index, const tenant_record& tenant);
  std::shared_ptr<db::pool> find(const pool_ref& ref) const;
  // Every pool of every shard, with the key it serves.
  std::vector<std::pair<pool_key, std::shared_ptr<db::pool>>> all_pools() const;
  bool reserve_slot(const pool_ref& requester);
  // Connections the pool `ref` holds (established ones; not the one being asked for).
  std::size_t held_by(const pool_ref& ref) const;
  // Another shard's pool of `key` that holds connections, when the budget is nearly full
  // (see "Borrowing" above); null otherwise.
  std::shared_ptr<db::pool> borrowable(std::size_t own_shard, const pool_key& key) const;
  bool budget_nearly_full() const noexcept;
  bool evict_idle_except(const pool_ref& requester, std::size_t requester_holds);
  void slot_released();
  void connection_parked(const pool_ref& parked);
  // Offers freed capacity to starved pools, oldest first, until one takes it.
  void wake_starved();
  bool should_yield(const pool_ref& releasing);
  // budget ÷ pools (of all shards) holding or waiting for connections, at least 1.
  std::size_t fair_share() const;

  struct starved_pool {
    pool_ref pool;
    bool holds_nothing;  // when it was queued
  };

  // Lets the pools' callbacks (which may run on any thread, and after the registry is gone
  // when a background connect outlives it) know whether the registry still exists: the
  // destructor retires the guard and waits for calls in progress to finish.
  class callback_guard {
   public:
    class call {
     public:
      explicit call(callback_guard& g) noexcept : guard_(g) { guard_.active_.fetch_add(1); }
      ~call() { guard_.active_.fetch_sub(1); }
      call(const call&) = delete;
      call& operator=(const call&) = delete;
      bool alive() const noexcept { return guard_.alive_.load(); }

     private:
      callback_guard& guard_;
    };
    void retire() noexcept {
      alive_.store(false);
      while (active_.load() != 0) std::this_thread::yield();
    }

   private:
    std::atomic<bool> alive_{true};
    std::atomic<int> active_{0};
  };

  tenant_connection_settings settings_;
  std::shared_ptr<callback_guard> guard_ = std::make_shared<callback_guard>();
  std::vector<std::unique_ptr<shard>> shards_;  // fixed at construction
  std::atomic<std::size_t> used_{0};
  std::atomic<std::uint64_t> evictions_{0};
  mutable std::mutex starved_mutex_;  // never held while taking a shard's or a pool's lock
  std::deque<starved_pool> starved_;  // pools waiting for a slot, oldest first
  std::atomic<std::size_t> starved_count_{0};
  std::atomic<std::size_t> starved_empty_count_{0};  // of which held nothing when queued
};

}  // namespace tenantd::tenancy

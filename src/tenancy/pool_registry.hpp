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
#pragma once
#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
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

// One tenant pool's connection counts, for metrics.
struct tenant_pool_stats {
  std::string database;
  db::pool_stats stats;
};

// libpq conninfo for a database on the tenant server, with timeouts and keepalives.
std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout);

class pool_registry {
 public:
  pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings);
  ~pool_registry();

  // The pool of the tenant's database, created on first use (no connection is opened here).
  std::shared_ptr<db::pool> pool_for(const tenant_record& tenant);
  // Closes and forgets the pool of a database (tenant deleted or suspended).
  void drop(const std::string& database_name);
  // Closes connections idle longer than the idle timeout; forgets pools left empty.
  void sweep();
  void shutdown();

  std::size_t connections_in_use_or_idle() const noexcept { return used_.load(); }
  std::size_t pool_count() const;
  // Idle connections of other tenants closed to make room under the budget, since start.
  std::uint64_t evictions() const noexcept { return evictions_.load(); }
  // Pools waiting for a budget slot right now.
  std::size_t starved_pools() const;
  // The `n` pools with the most open connections (then waiters), busiest first.
  std::vector<tenant_pool_stats> busiest(std::size_t n) const;
  const tenant_connection_settings& settings() const noexcept { return settings_; }

 private:
  bool reserve_slot(const std::string& requester);
  // Connections `database`'s pool holds, not counting the one it is asking a slot for.
  std::size_t held_by(const std::string& database) const;
  bool evict_idle_except(const std::string& requester, std::size_t requester_holds);
  void slot_released();
  void connection_parked(const std::string& database);
  // Offers freed capacity to starved pools, oldest first, until one takes it.
  void wake_starved();
  bool should_yield(const std::string& database);
  // budget ÷ pools holding or waiting for connections, at least 1.
  std::size_t fair_share() const;

  struct starved_pool {
    std::string database;
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

  boost::asio::any_io_executor executor_;
  tenant_connection_settings settings_;
  std::shared_ptr<callback_guard> guard_ = std::make_shared<callback_guard>();
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<db::pool>> pools_;
  std::atomic<std::size_t> used_{0};
  std::atomic<std::uint64_t> evictions_{0};
  mutable std::mutex starved_mutex_;  // never held while taking mutex_ or a pool's lock
  std::deque<starved_pool> starved_;  // pools waiting for a slot, oldest first
  std::atomic<std::size_t> starved_count_{0};
  std::atomic<std::size_t> starved_empty_count_{0};  // of which held nothing when queued
};

}  // namespace tenantd::tenancy

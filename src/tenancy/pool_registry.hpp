// Per-tenant connection pools under a connection budget per database server. A pool is keyed
// by (server, database), created on a tenant's first request and never holds more than
// pool_size connections, so one tenant cannot take the whole budget. Each server has its own
// budget of max_connections (what that PostgreSQL server can take); everything below is per
// server: when its budget is full, the least recently used idle connection of another tenant
// on the same server is closed to make room (a busy one never is); when there is
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
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "db/conninfo.hpp"
#include "db/pool.hpp"
#include "db/server_watch.hpp"
#include "domain/records.hpp"

namespace tenantd::tenancy {

// What a tenant pool is for: a database on a database server (db_servers' name).
struct pool_key {
  std::string server;
  std::string database;
  bool operator==(const pool_key&) const = default;
};

struct pool_key_hash {
  std::size_t operator()(const pool_key& key) const noexcept {
    const auto a = std::hash<std::string>{}(key.server);
    const auto b = std::hash<std::string>{}(key.database);
    return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  }
};

// The pool key of a tenant's database (a tenant without a server is on main).
pool_key pool_key_of(const tenant_record& tenant);

// How the registry reaches a server other than the settings' own (main): the endpoint of the
// request path's role there, or nullopt when the server is unknown. Called with no lock held.
using endpoint_lookup = std::function<std::optional<db::server_endpoint>(const std::string& server)>;

struct tenant_connection_settings {
  std::string host;
  std::string port;
  std::string user;
  std::string password;
  std::size_t pool_size{4};         // per tenant
  std::size_t max_connections{64};  // all tenants of one database server together
  std::chrono::milliseconds acquire_timeout{2000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds statement_timeout{5000};
  std::chrono::milliseconds slow_query_threshold{0};  // log statements slower than this (0 = off)
  // A tenant holding connections may close another's idle one only after it has been idle this long.
  std::chrono::milliseconds reclaim_idle_after{1000};
  // A tenant holding none may close another's idle connection once it has been idle this long.
  std::chrono::milliseconds reclaim_recent_after{100};
  // Single statements of the request path share one pipelined connection per tenant pool, at
  // most this many in flight (then they take exclusive connections); 0 turns pipelining off.
  std::size_t pipeline_depth{32};
  // Where new connections' connect steps run (db::connection_options::handshake_executor);
  // unset: on the pool's own executor.
  std::optional<boost::asio::any_io_executor> handshake_executor{};
  // The I/O lanes (db::pool_options::lanes): a busy tenant gets a pipelined connection on each.
  std::vector<boost::asio::any_io_executor> lanes{};
};

// Whether a database server answers, as this process's server watch sees it (metrics).
struct server_health {
  std::string server;
  bool answering{true};
  std::uint64_t outages{0};  // times it was found not answering, since start
};

// One tenant pool's connection counts, for metrics.
struct tenant_pool_stats {
  std::string server;
  std::string database;
  db::pool_stats stats;
};

// libpq conninfo for a database on the settings' server (main), with timeouts and keepalives.
std::string tenant_conninfo(const tenant_connection_settings& s, const std::string& database,
                            std::chrono::milliseconds statement_timeout);

class pool_registry {
 public:
  // `settings` hold main's host, port and role; `servers` finds the others (none: every
  // tenant is on main).
  pool_registry(boost::asio::any_io_executor executor, tenant_connection_settings settings,
                endpoint_lookup servers = {});
  ~pool_registry();

  // The pool of the tenant's database on its server, created on first use (no connection is
  // opened here). `endpoint`: the tenant's server as the caller just looked it up (a server
  // other than main); without it the registry's lookup is asked. Throws db::unavailable_error
  // when the tenant's server is unknown.
  std::shared_ptr<db::pool> pool_for(const tenant_record& tenant,
                                     const std::optional<db::server_endpoint>& endpoint = std::nullopt);
  // The tenant's pool if this process has it already (no endpoint needed: a server's pools
  // are dropped when its endpoint changes), else null.
  std::shared_ptr<db::pool> existing_pool(const tenant_record& tenant) const { return find_pool(pool_key_of(tenant)); }
  // Closes and forgets the pool of a database (tenant deleted or suspended).
  void drop(const pool_key& key);
  // Closes and forgets every pool of a server (the server was removed or changed).
  void drop_server(const std::string& server);
  // Closes connections idle longer than the idle timeout; forgets pools left empty.
  void sweep();
  // For each server with starved pools, closes an idle connection the oldest starved one may
  // take (as its own request would), so that a starved pool does not wait for some other
  // request to make room: idle pipelined connections are never released, only closed. Cheap
  // when nothing is starved; run it often (every 50 ms).
  void relieve_starved();
  void shutdown();

  // Over every server.
  std::size_t connections_in_use_or_idle() const noexcept { return used_.load(); }
  // On one server.
  std::size_t connections_in_use_or_idle(const std::string& server) const;
  // On each server this process has opened pools for, by name.
  std::map<std::string, std::size_t> connections_by_server() const;
  std::size_t pool_count() const;
  // Idle connections of other tenants closed to make room under a budget, since start.
  std::uint64_t evictions() const noexcept { return evictions_.load(); }
  // Pools waiting for a budget slot right now, over every server.
  std::size_t starved_pools() const;
  // Each server this process has opened pools for: whether it answers (db::server_watch).
  std::vector<server_health> server_health_list() const;
  // The `n` pools with the most open connections (then waiters), busiest first.
  std::vector<tenant_pool_stats> busiest(std::size_t n) const;
  const tenant_connection_settings& settings() const noexcept { return settings_; }

 private:
  struct starved_pool {
    pool_key key;
    bool holds_nothing;  // when it was queued
  };
  // One database server's connection budget and its starved pools. Created on the server's
  // first pool and kept for the registry's life (the pools' callbacks hold a pointer to it).
  struct budget {
    std::atomic<std::size_t> used{0};
    mutable std::mutex starved_mutex;  // never held while taking mutex_ or a pool's lock
    std::deque<starved_pool> starved;  // pools waiting for a slot, oldest first
    std::atomic<std::size_t> starved_count{0};
    std::atomic<std::size_t> starved_empty_count{0};  // of which held nothing when queued
    // Whether the server answers; shared by the connections of all its pools.
    std::shared_ptr<db::server_watch> watch;
  };

  budget& budget_of(const std::string& server);  // with mutex_ held
  std::shared_ptr<db::pool> find_pool(const pool_key& key) const;
  bool reserve_slot(budget& b, const pool_key& requester);
  // Connections `key`'s pool holds, not counting the one it is asking a slot for.
  std::size_t held_by(const pool_key& key) const;
  bool evict_idle_except(const pool_key& requester, std::size_t requester_holds);
  void slot_released(budget& b);
  void connection_parked(budget& b, const pool_key& key);
  // Offers freed capacity to the server's starved pools, oldest first, until one takes it.
  void wake_starved(budget& b);
  bool should_yield(budget& b, const pool_key& key);
  // The server's budget ÷ its pools holding or waiting for connections, at least 1.
  std::size_t fair_share(const std::string& server) const;

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
  endpoint_lookup servers_;
  std::shared_ptr<callback_guard> guard_ = std::make_shared<callback_guard>();
  mutable std::mutex mutex_;
  std::unordered_map<pool_key, std::shared_ptr<db::pool>, pool_key_hash> pools_;
  std::unordered_map<std::string, std::unique_ptr<budget>> budgets_;  // by server; never erased
  std::atomic<std::size_t> used_{0};                                  // over every server
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace tenantd::tenancy

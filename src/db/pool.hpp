// A bounded pool of connections to one database. Waiters queue in order with a deadline;
// broken connections and connections left inside a transaction are discarded, never reused.
// Thread-safe: acquire/release may happen from any I/O thread.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "db/connection.hpp"

namespace tenantd::db {

struct pool_options {
  connection_options connection;
  std::size_t max_size{4};
  std::chrono::milliseconds acquire_timeout{2000};  // then unavailable_error (-> 503)
  std::chrono::milliseconds idle_timeout{60000};    // idle connections closed after this
  // Called before opening a new connection; returns false when a global budget forbids it
  // (the waiter then queues until a connection of this pool is released, or times out).
  std::function<bool()> reserve_slot;
  // Called when a connection of this pool is closed, to return the budget slot.
  std::function<void()> release_slot;
  // Called (outside the pool's lock) when a released connection is parked idle because no
  // waiter of this pool wanted it; a global budget may then close it for a starved pool.
  std::function<void()> on_idle;
  // After a failed connect, new connections are not attempted for this long (doubling on
  // each further failure up to connect_backoff_max): acquires that would need one fail at
  // once, while connections already open keep serving. Stops a reconnect storm.
  std::chrono::milliseconds connect_backoff_initial{100};
  std::chrono::milliseconds connect_backoff_max{1000};
};

struct pool_stats {
  std::size_t open{0};  // connections open (idle + in use)
  std::size_t idle{0};
  std::size_t waiters{0};
  bool connect_failing{false};  // the last connect failed and the back-off window is running
};

class pool;

// Exclusive use of one connection; returns it to the pool on destruction.
class pooled_connection {
 public:
  pooled_connection() = default;
  pooled_connection(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn);
  pooled_connection(pooled_connection&&) noexcept;
  pooled_connection& operator=(pooled_connection&&) noexcept;
  ~pooled_connection();

  connection* operator->() const noexcept { return conn_.get(); }
  connection& operator*() const noexcept { return *conn_; }
  explicit operator bool() const noexcept { return conn_ != nullptr; }

 private:
  std::shared_ptr<pool> owner_;
  std::unique_ptr<connection> conn_;
};

class pool : public std::enable_shared_from_this<pool> {
 public:
  static std::shared_ptr<pool> create(boost::asio::any_io_executor executor, pool_options options);
  ~pool();

  // An idle connection, a new one (if under max_size and reserve_slot agrees), or the next
  // one released, in FIFO order. Throws unavailable_error after acquire_timeout or when
  // connecting fails.
  boost::asio::awaitable<pooled_connection> acquire();

  pool_stats stats() const;
  // Closes idle connections unused for longer than idle_timeout; returns how many closed.
  std::size_t close_idle_older_than(std::chrono::steady_clock::duration age);
  // Closes the idle connection released longest ago, if there is one and it was released
  // before `idle_before` (for a global budget's LRU eviction).
  bool close_one_idle(std::chrono::steady_clock::time_point idle_before = std::chrono::steady_clock::time_point::max());
  // A global budget slot may have become free: the oldest waiter (if any, and if this pool is
  // under max_size) retries opening a connection. Returns false when no waiter could use it;
  // the next waiter to queue then retries at once.
  bool budget_freed();
  // Time the pool was last used (acquire or release), for LRU decisions.
  std::chrono::steady_clock::time_point last_used() const;
  // Closes every idle connection and fails all waiters; connections in use are closed on return.
  void shutdown();

 private:
  friend class pooled_connection;
  struct impl;
  pool(boost::asio::any_io_executor executor, pool_options options);
  void release(std::unique_ptr<connection> conn) noexcept;
  std::unique_ptr<impl> impl_;
};

}  // namespace tenantd::db

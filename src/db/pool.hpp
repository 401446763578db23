// A bounded pool of connections to one database. Waiters queue in order with a deadline;
// connections are opened by the pool in the background, so a waiter takes whichever comes
// first, a released connection or a new one. Broken connections and connections left inside
// a transaction are discarded, never reused; one that owes the cleanup of a db::transaction or
// db::advisory_lock destroyed while open (connection::cleanup_pending) is cleaned first, in the
// background, and reused if that works. Thread-safe: acquire/release may happen from any I/O
// thread.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/pipeline.hpp"

namespace tenantd::db {

struct pool_options {
  connection_options connection;
  std::size_t max_size{4};
  std::chrono::milliseconds acquire_timeout{2000};  // then unavailable_error (-> 503)
  std::chrono::milliseconds idle_timeout{60000};    // idle connections closed after this
  // Called before opening a new connection (on the pool's executor, by the background
  // connect); returns false when a global budget forbids it (the waiters then wait for a
  // connection of this pool to be released, or for budget_freed(), or time out).
  std::function<bool()> reserve_slot;
  // Called when a connection of this pool is closed, to return the budget slot.
  std::function<void()> release_slot;
  // Called (outside the pool's lock) when a released connection is parked idle because no
  // waiter of this pool wanted it; a global budget may then close it for a starved pool.
  std::function<void()> on_idle;
  // Called (outside the pool's lock) when a reusable connection is released; true when a
  // global budget wants it closed, even though this pool's own waiters queue, so that its slot
  // goes to a pool starved of connections (this one holds more than its fair share).
  std::function<bool()> yield_connection;
  // True when a global budget has no slot left for a new connection right now (a look, not a
  // reservation). With the pipelined connection full, exec_prepared then queues its statement
  // on it rather than wait for an exclusive connection that only a release could give.
  std::function<bool()> budget_full;
  // After a failed connect, new connections are not attempted for this long (doubling on
  // each further failure up to connect_backoff_max): with no connection open, acquires fail
  // at once; otherwise they wait for one of the open ones. Stops a reconnect storm.
  std::chrono::milliseconds connect_backoff_initial{100};
  std::chrono::milliseconds connect_backoff_max{1000};
  // Statements in flight at most on the pool's shared pipelined connection (exec_prepared);
  // 0: no pipeline, exec_prepared takes an exclusive connection.
  std::size_t pipeline_depth{0};
  // The I/O lanes (io_contexts run by one thread each, tenantd::this_threads_lane() numbers
  // them): the first pipelined connection is driven on the lane of the caller that opened it,
  // and callers of every lane share it (the results are handed across threads) while it has
  // fewer than `lane_share_below` statements in flight: one connection per tenant keeps
  // PostgreSQL's work batched (bench (a): a connection per lane cost PostgreSQL 1.5x the CPU
  // per query). Past that, a lane without its own opens one in the background, so one busy
  // tenant is not held to one backend's core. Empty: one pipelined connection, on the pool's
  // executor.
  std::vector<boost::asio::any_io_executor> lanes{};
  std::size_t lane_share_below{16};
};

struct pool_stats {
  std::size_t open{0};  // connections open (idle + in use)
  std::size_t idle{0};
  std::size_t opening{0};    // background connects in flight (not counted in open)
  bool pipelined{false};     // one of the open connections is a shared pipelined one
  std::size_t pipelines{0};  // pipelined connections open (at most one per lane)
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
  friend class pool;
  // Takes the connection out without returning it (it stays counted as open in the pool).
  std::unique_ptr<connection> detach() noexcept;
  std::shared_ptr<pool> owner_;
  std::unique_ptr<connection> conn_;
};

class pool : public statement_runner, public std::enable_shared_from_this<pool> {
 public:
  static std::shared_ptr<pool> create(boost::asio::any_io_executor executor, pool_options options);
  ~pool() override;

  // One statement as its own implicit transaction: on the shared pipelined connection when
  // pipeline_depth > 0 and it has room (the connection is taken from the pool on first use and
  // replaced once broken), else on an exclusive connection from acquire(). With the pipelined
  // connection full, an exclusive connection is taken only when one is idle or can be opened
  // without waiting for another's release (under max_size, and budget_full says no); otherwise
  // the statement queues on the pipelined connection past its depth. Throws pg_error for
  // the statement's own failure and unavailable_error as acquire() does, or when the pipelined
  // connection breaks while the statement is in flight (every statement in flight then fails).
  // Never for work that needs a transaction or session state: take acquire() for that.
  boost::asio::awaitable<result_set> exec_prepared(const statement& stmt, std::span<const param> params) override;

  // An idle connection, or else, in FIFO order, whichever comes first: a connection released
  // by its holder or one the pool opens in the background for the queue (if under max_size
  // and reserve_slot agrees). A connect that completes after its waiter left still feeds the
  // pool. Throws unavailable_error after acquire_timeout (which bounds the wait, not one
  // connect attempt), when the pool is shut down, or when a connect fails while the pool has
  // no connection open that could be released (the oldest waiter gets the connect error).
  boost::asio::awaitable<pooled_connection> acquire();

  pool_stats stats() const;
  // Closes idle connections unused for longer than idle_timeout; returns how many closed.
  std::size_t close_idle_older_than(std::chrono::steady_clock::duration age);
  // Closes the idle connection released longest ago, if there is one and it was released
  // before `idle_before` (for a global budget's LRU eviction).
  bool close_one_idle(std::chrono::steady_clock::time_point idle_before = std::chrono::steady_clock::time_point::max());
  // A global budget slot may have become free: if waiters are queued (and the pool is under
  // max_size) a background connect starts for them. Returns false when no waiter could use
  // it; the next waiter to queue then asks the budget at once.
  bool budget_freed();
  // Time the pool was last used (acquire, release, or a statement of a pipelined connection
  // completing), for LRU decisions.
  std::chrono::steady_clock::time_point last_used() const;
  // Closes every idle connection and fails all waiters; connections in use are closed on return.
  void shutdown();

 private:
  friend class pooled_connection;
  struct impl;
  pool(boost::asio::any_io_executor executor, pool_options options);
  void release(std::unique_ptr<connection> conn) noexcept;
  // The pipelined connection for a caller on `lane`: its lane's, else (while it has none)
  // another lane's, else it opens its lane's; null while another caller opens the first one.
  boost::asio::awaitable<std::shared_ptr<pipeline>> shared_pipeline(std::size_t lane);
  // Opens `lane`'s pipelined connection (its slot is marked creating) and installs it.
  boost::asio::awaitable<std::shared_ptr<pipeline>> open_pipeline(std::size_t lane);
  // Waits until the pipelined connection another caller is opening is there or its opening
  // failed (true: look again), or `deadline` passes (false).
  boost::asio::awaitable<bool> await_pipeline(std::chrono::steady_clock::time_point deadline);
  // Wakes the callers waiting in await_pipeline (after the pipeline was set or its opening failed).
  void wake_pipe_waiters() noexcept;
  std::unique_ptr<impl> impl_;
};

}  // namespace tenantd::db

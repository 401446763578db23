// The pool's books, private to pool.cpp and pool_books.cpp: the idle list, the queue of
// waiters, the count of open and opening connections, the connect back-off, the shared
// pipelined connection, and the budget callbacks. Every change of the books happens under
// `mutex` and returns a follow_up (waiters to wake, connects to start) that is carried out
// after the mutex is released.
#pragma once

#include <algorithm>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "db/pool.hpp"

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

// One queued acquire. The pool decides its fate under the pool mutex (hand it a connection
// or fail it) and then signals the thread-safe channel, which wakes the waiter on its own
// executor. A waiter never opens a connection itself: the pool's background connects do.
struct waiter {
  explicit waiter(const net::any_io_executor& executor) : wake(executor, 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
  std::unique_ptr<connection> handed;  // guarded by the pool mutex, as are the fields below
  bool queued{true};
  bool failed{false};
  std::string failure;  // why, when failed
};

struct idle_connection {
  std::unique_ptr<connection> conn;
  clock_type::time_point last_used;
};

// How often a waiter past its deadline looks whether the connect under way for it is done.
inline constexpr std::chrono::milliseconds connect_recheck{20};

inline void signal(const std::shared_ptr<waiter>& w) noexcept { (void)w->wake.try_send(boost::system::error_code{}); }

// What a change of the pool's books asks for once the mutex is released.
struct follow_up {
  std::vector<std::shared_ptr<waiter>> woken;  // to signal
  std::size_t opens{0};                        // background connects to start (already counted in `open`)
};

struct pool::impl {
  impl(net::any_io_executor ex, pool_options opts)
      : executor(std::move(ex)), options(std::move(opts)), pipes(std::max<std::size_t>(1, options.lanes.size())) {}

  net::any_io_executor executor;
  pool_options options;
  std::weak_ptr<pool> self;  // for the background connects
  mutable std::mutex mutex;
  std::deque<idle_connection> idle;  // front = least recently used
  std::size_t open{0};               // idle + lent + being opened
  std::size_t opening{0};            // background connects in flight (counted in `open`)
  std::deque<std::shared_ptr<waiter>> waiters;
  clock_type::time_point last_used{clock_type::now()};
  bool shut_down{false};
  // The budget refused the last connect; no new one is tried until budget_freed() or the next
  // acquire that finds no one queued.
  bool awaiting_budget{false};
  // Connect back-off: no new connection is attempted before connect_retry_at.
  clock_type::time_point connect_retry_at{};
  std::chrono::milliseconds connect_backoff{0};
  std::string connect_error;
  bool probing{false};  // while connects fail, one connect at a time tests the database
  // The shared pipelined connections, one slot per lane (one slot without lanes): each counted
  // in `open`, never idle-listed; `creating` while a caller or a background task opens it.
  struct pipe_slot {
    std::shared_ptr<pipeline> pipe;
    bool creating{false};
  };
  std::vector<pipe_slot> pipes;
  // Callers of exec_prepared waiting for the pipelined connection another caller is opening
  // (woken when one is there or its opening failed), instead of each asking for a connection
  // of its own: a pool that is opening its pipeline wants one connection, not max_size.
  std::vector<std::shared_ptr<waiter>> pipe_waiters;

  // True while no new connection may be attempted: inside the back-off window, or while a
  // probe connect of a failing pool is in flight.
  bool backing_off_locked(clock_type::time_point now) const { return now < connect_retry_at || probing; }

  unavailable_error connect_refused_locked() const {
    return unavailable_error("database unavailable (reconnecting after: " + connect_error + ")");
  }

  // Counts the background connects the queue needs: one per waiter that no connect in flight
  // already covers, within max_size, outside the back-off (a failing pool sends one probe),
  // and not while the budget has just refused. A waiter takes whatever comes first, a
  // released connection or a new one; a connect that finishes late still feeds the pool.
  std::size_t plan_opens_locked();

  // Fails every queued waiter: the oldest with `why`, the others with the back-off message.
  void fail_waiters_locked(const std::string& why, follow_up& next);

  // After `open` dropped: new connects for the waiters, or, while connects are backing off
  // and nothing is left open to be released, an immediate failure for every waiter.
  follow_up grant_capacity_locked();

  bool is_shut_down() const;

  bool reserve_slot() const { return !options.reserve_slot || options.reserve_slot(); }

  void release_slot() const noexcept;

  bool should_yield() const noexcept;

  // An exclusive connection can be had without waiting for a release: one is idle, or the
  // pool is under max_size and the global budget (if any) has a slot left.
  bool can_lend_at_once() const;

  void notify_idle() const noexcept;

  // Closes connections already removed from the pool's books (`open` decremented).
  void close(std::vector<std::unique_ptr<connection>> closed) const noexcept;

  // Runs what a change of the books asked for, outside the mutex.
  void carry_out(const follow_up& next) noexcept;

  // Takes a lane's pipelined connection off the books (it counted as one open connection);
  // finish_retire closes those taken off and returns their budget slots outside the mutex, then
  // carries out the follow-up once.
  std::shared_ptr<pipeline> retire_pipeline_locked(std::size_t slot, follow_up& next);

  void finish_retire(const std::vector<std::shared_ptr<pipeline>>& retired, const follow_up& next) noexcept;

  // The slot of a pipelined connection with nothing in flight, last used before `cutoff`
  // (the one used longest ago), or pipes.size() when there is none.
  std::size_t idle_pipe_before_locked(clock_type::time_point cutoff) const;
  // True while no lane has a pipelined connection and one is being opened (callers wait for it).
  bool pipe_being_opened_locked() const {
    return std::none_of(pipes.begin(), pipes.end(), [](const pipe_slot& p) { return p.pipe != nullptr; }) &&
           std::any_of(pipes.begin(), pipes.end(), [](const pipe_slot& p) { return p.creating; });
  }
  // The executor a lane's pipelined connection is driven on.
  const net::any_io_executor& lane_executor(std::size_t slot) const {
    return options.lanes.empty() ? executor : options.lanes[slot];
  }

  void start_opens(std::size_t count) noexcept;
  net::awaitable<void> open_one(std::shared_ptr<pool> owner);

  // Closes a lent connection that will not come back and frees its capacity.
  void discard_lent(std::unique_ptr<connection> conn) noexcept;

  // A lent connection was closed: its capacity and budget slot are free.
  void lent_closed() noexcept;

  // A connection released with cleanup owed (connection::cleanup_pending: a transaction or
  // advisory lock left open) is cleaned here, then released again; if the cleanup fails the
  // connection is broken and the second release discards it.
  net::awaitable<void> clean_then_release(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn);

  // Returns `conn` if it is still usable; otherwise closes it, frees its capacity and returns null.
  std::unique_ptr<connection> keep_if_alive(std::unique_ptr<connection> conn) noexcept;

  // A background connect could not get a budget slot: the waiters wait for a released
  // connection or for budget_freed().
  void budget_refused() noexcept;

  // A background connect failed: back off; with nothing left open, the waiters fail now.
  void connect_failed(const std::string& why) noexcept;

  // A background connect succeeded: the back-off ends; the connection goes to the oldest
  // waiter, or idle when no one waits (then a global budget may take it for a starved pool).
  void connected(std::unique_ptr<connection> conn) noexcept;
};

}  // namespace tenantd::db

// Connection pool: idle list (most recently used reused first), FIFO waiters woken through
// thread-safe channels, connections opened in the background (HikariCP style), capacity
// shared with an optional global budget.
#include "db/pool.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "db/with_deadline.hpp"

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

// One queued acquire. The pool decides its fate under the pool mutex (hand it a connection
// or fail it) and then signals the thread-safe channel, which wakes the waiter on its own
// executor. A waiter never opens a connection itself: the pool's background connects do.
struct waiter {
  explicit waiter(net::any_io_executor executor) : wake(std::move(executor), 1) {}
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
constexpr std::chrono::milliseconds connect_recheck{20};

void signal(const std::shared_ptr<waiter>& w) noexcept { (void)w->wake.try_send(boost::system::error_code{}); }

// What a change of the pool's books asks for once the mutex is released.
struct follow_up {
  std::vector<std::shared_ptr<waiter>> woken;  // to signal
  std::size_t opens{0};                        // background connects to start (already counted in `open`)
};

}  // namespace

struct pool::impl {
  impl(net::any_io_executor ex, pool_options opts) : executor(std::move(ex)), options(std::move(opts)) {}

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
  // The shared pipelined connection (counted in `open`, never idle-listed), and whether a
  // caller is opening it.
  std::shared_ptr<pipeline> pipe;
  bool creating_pipe{false};

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
  std::size_t plan_opens_locked() {
    std::size_t planned = 0;
    const auto now = clock_type::now();
    while (!shut_down && !awaiting_budget && opening < waiters.size() && open < options.max_size &&
           !backing_off_locked(now)) {
      ++open;
      ++opening;
      if (connect_backoff.count() != 0) probing = true;
      ++planned;
    }
    return planned;
  }

  // Fails every queued waiter: the oldest with `why`, the others with the back-off message.
  void fail_waiters_locked(const std::string& why, follow_up& next) {
    bool first = true;
    for (auto& w : waiters) {
      w->queued = false;
      w->failed = true;
      w->failure = first ? why : connect_refused_locked().what();
      first = false;
      next.woken.push_back(std::move(w));
    }
    waiters.clear();
  }

  // After `open` dropped: new connects for the waiters, or, while connects are backing off
  // and nothing is left open to be released, an immediate failure for every waiter.
  follow_up grant_capacity_locked() {
    follow_up next;
    if (open == 0 && backing_off_locked(clock_type::now())) {
      fail_waiters_locked(connect_refused_locked().what(), next);
      return next;
    }
    next.opens = plan_opens_locked();
    return next;
  }

  bool is_shut_down() const {
    std::lock_guard lock(mutex);
    return shut_down;
  }

  bool reserve_slot() const { return !options.reserve_slot || options.reserve_slot(); }

  void release_slot() const noexcept {
    if (!options.release_slot) return;
    try {
      options.release_slot();
    } catch (...) {  // a budget callback must not turn a release into std::terminate
    }
  }

  bool should_yield() const noexcept {
    if (!options.yield_connection) return false;
    try {
      return options.yield_connection();
    } catch (...) {
      return false;
    }
  }

  void notify_idle() const noexcept {
    if (!options.on_idle) return;
    try {
      options.on_idle();
    } catch (...) {  // a budget callback must not turn a release into std::terminate
    }
  }

  // Closes connections already removed from the pool's books (`open` decremented).
  void close(std::vector<std::unique_ptr<connection>> closed) noexcept {
    for (auto& conn : closed) {
      conn.reset();
      release_slot();
    }
  }

  // Runs what a change of the books asked for, outside the mutex.
  void carry_out(const follow_up& next) noexcept {
    for (const auto& w : next.woken) signal(w);
    start_opens(next.opens);
  }

  // Takes the shared pipelined connection off the books (it counted as one open connection);
  // finish_retire closes it and returns its budget slot outside the mutex.
  std::shared_ptr<pipeline> retire_pipeline_locked(follow_up& next) {
    auto retired = std::move(pipe);
    pipe.reset();
    --open;
    auto more = grant_capacity_locked();
    next.opens += more.opens;
    for (auto& w : more.woken) next.woken.push_back(std::move(w));
    return retired;
  }

  void finish_retire(const std::shared_ptr<pipeline>& retired, follow_up next) noexcept {
    retired->close();  // fails what is in flight; the connection closes when its last user is done
    release_slot();
    carry_out(std::move(next));
  }

  // True when the pipelined connection has nothing in flight and was last used before `cutoff`.
  bool pipe_idle_before_locked(clock_type::time_point cutoff) const {
    return pipe && pipe->in_flight() == 0 && pipe->last_used() < cutoff;
  }

  void start_opens(std::size_t count) noexcept;
  net::awaitable<void> open_one(std::shared_ptr<pool> owner);

  // Closes a lent connection that will not come back and frees its capacity.
  void discard_lent(std::unique_ptr<connection> conn) noexcept {
    conn.reset();
    lent_closed();
  }

  // A lent connection was closed: its capacity and budget slot are free.
  void lent_closed() noexcept {
    follow_up next;
    {
      std::lock_guard lock(mutex);
      --open;
      next = grant_capacity_locked();
    }
    release_slot();
    carry_out(std::move(next));
  }

  // A connection released with cleanup owed (connection::cleanup_pending: a transaction or
  // advisory lock left open) is cleaned here, then released again; if the cleanup fails the
  // connection is broken and the second release discards it.
  net::awaitable<void> clean_then_release(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn);

  // Returns `conn` if it is still usable; otherwise closes it, frees its capacity and returns null.
  std::unique_ptr<connection> keep_if_alive(std::unique_ptr<connection> conn) noexcept {
    if (conn->consume_input() && conn->idle_in_no_transaction() && !conn->cleanup_pending()) return conn;
    discard_lent(std::move(conn));
    return nullptr;
  }

  // A background connect could not get a budget slot: the waiters wait for a released
  // connection or for budget_freed().
  void budget_refused() noexcept {
    std::lock_guard lock(mutex);
    --open;
    --opening;
    probing = false;
    awaiting_budget = true;
  }

  // A background connect failed: back off; with nothing left open, the waiters fail now.
  void connect_failed(const std::string& why) noexcept {
    follow_up next;
    {
      std::lock_guard lock(mutex);
      connect_backoff = connect_backoff.count() == 0 ? options.connect_backoff_initial
                                                     : std::min(connect_backoff * 2, options.connect_backoff_max);
      connect_retry_at = clock_type::now() + connect_backoff;
      probing = false;
      --open;
      --opening;
      try {
        connect_error = why;
        if (open == 0) fail_waiters_locked(why, next);
      } catch (...) {
      }
    }
    release_slot();
    carry_out(std::move(next));
  }

  // A background connect succeeded: the back-off ends; the connection goes to the oldest
  // waiter, or idle when no one waits (then a global budget may take it for a starved pool).
  void connected(std::unique_ptr<connection> conn) noexcept {
    follow_up next;
    std::vector<std::unique_ptr<connection>> closed;
    bool parked = false;
    {
      std::lock_guard lock(mutex);
      --opening;
      connect_backoff = std::chrono::milliseconds(0);
      connect_retry_at = {};
      probing = false;
      const auto now = clock_type::now();
      if (shut_down) {
        --open;
        closed.push_back(std::move(conn));
      } else if (!waiters.empty()) {
        auto w = std::move(waiters.front());
        waiters.pop_front();
        w->queued = false;
        w->handed = std::move(conn);
        next.woken.push_back(std::move(w));
      } else {
        idle.push_back({std::move(conn), now});
        parked = true;
      }
      next.opens = plan_opens_locked();  // after a probe succeeded, the rest of the queue
    }
    close(std::move(closed));
    carry_out(std::move(next));
    if (parked) notify_idle();
  }
};

void pool::impl::start_opens(std::size_t count) noexcept {
  if (count == 0) return;
  auto owner = self.lock();
  if (!owner) {  // only while the pool is being destroyed: give the counted capacity back
    std::lock_guard lock(mutex);
    open -= count;
    opening -= count;
    probing = false;
    return;
  }
  for (std::size_t i = 0; i < count; ++i) net::co_spawn(executor, open_one(owner), net::detached);
}

net::awaitable<void> pool::impl::clean_then_release(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn) {
  try {
    co_await conn->run_deferred_cleanup();
  } catch (...) {  // the connection is marked broken: the release below closes it
  }
  owner->release(std::move(conn));
}

// One background connect. Its outcome feeds the pool whatever became of the waiter that
// asked for it (served by a released connection, timed out, or still waiting).
net::awaitable<void> pool::impl::open_one(std::shared_ptr<pool> owner) {
  (void)owner;  // keeps the pool (and so this impl) alive until the connect is settled
  bool reserved = false;
  try {
    reserved = !is_shut_down() && reserve_slot();
  } catch (...) {
    reserved = false;
  }
  if (!reserved) {
    budget_refused();
    co_return;
  }
  std::unique_ptr<connection> opened;
  std::string failure;
  try {
    opened = co_await connection::connect(executor, options.connection);
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "cannot connect to the database";
  }
  if (opened)
    connected(std::move(opened));
  else
    connect_failed(failure);
}

pooled_connection::pooled_connection(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn)
    : owner_(std::move(owner)), conn_(std::move(conn)) {}

pooled_connection::pooled_connection(pooled_connection&& other) noexcept = default;

pooled_connection& pooled_connection::operator=(pooled_connection&& other) noexcept {
  if (this != &other) {
    if (conn_) owner_->release(std::move(conn_));
    owner_ = std::move(other.owner_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

std::unique_ptr<connection> pooled_connection::detach() noexcept {
  owner_.reset();
  return std::move(conn_);
}

pooled_connection::~pooled_connection() {
  if (conn_) owner_->release(std::move(conn_));
}

std::shared_ptr<pool> pool::create(net::any_io_executor executor, pool_options options) {
  auto created = std::shared_ptr<pool>(new pool(std::move(executor), std::move(options)));
  created->impl_->self = created;
  return created;
}

pool::pool(net::any_io_executor executor, pool_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(options))) {}

pool::~pool() {
  std::vector<std::unique_ptr<connection>> closed;
  for (auto& entry : impl_->idle) closed.push_back(std::move(entry.conn));
  impl_->idle.clear();
  impl_->close(std::move(closed));
  if (impl_->pipe) {
    impl_->pipe->close();
    impl_->release_slot();
  }
}

net::awaitable<result_set> pool::exec_prepared(const statement& stmt, std::span<const param> params) {
  if (impl_->options.pipeline_depth > 0) {
    if (auto shared = co_await shared_pipeline()) {
      auto result = co_await shared->try_exec_prepared(stmt, params);
      if (result) co_return std::move(*result);
    }
  }
  auto conn = co_await acquire();  // no pipeline, it is full, or it is being opened
  co_return co_await conn->exec_prepared(stmt, params);
}

net::awaitable<std::shared_ptr<pipeline>> pool::shared_pipeline() {
  auto& s = *impl_;
  std::shared_ptr<pipeline> current;
  std::shared_ptr<pipeline> retired;
  follow_up next;
  bool opener = false;
  {
    std::lock_guard lock(s.mutex);
    if (s.shut_down) throw unavailable_error("database pool is shut down");
    if (s.pipe && s.pipe->broken()) retired = s.retire_pipeline_locked(next);  // replaced below
    if (s.pipe) {
      current = s.pipe;
    } else if (!s.creating_pipe) {
      s.creating_pipe = true;
      opener = true;
    }
  }
  if (retired) s.finish_retire(retired, std::move(next));
  if (!opener) co_return current;

  std::unique_ptr<connection> raw;
  try {
    auto conn = co_await acquire();
    raw = conn.detach();
  } catch (...) {
    std::lock_guard lock(s.mutex);
    s.creating_pipe = false;
    throw;
  }
  std::shared_ptr<pipeline> made;
  try {
    made = pipeline::create(s.executor, std::move(raw), s.options.pipeline_depth);
  } catch (...) {
    follow_up after;
    {
      std::lock_guard lock(s.mutex);
      s.creating_pipe = false;
      --s.open;  // the connection was closed with the failed attempt
      after = s.grant_capacity_locked();
    }
    s.release_slot();
    s.carry_out(std::move(after));
    throw;
  }
  bool too_late = false;
  {
    std::lock_guard lock(s.mutex);
    s.creating_pipe = false;
    if (s.shut_down)
      too_late = true;
    else
      s.pipe = made;
  }
  if (too_late) {
    {
      std::lock_guard lock(s.mutex);
      --s.open;
    }
    made->close();
    s.release_slot();
    throw unavailable_error("database pool is shut down");
  }
  co_return made;
}

net::awaitable<pooled_connection> pool::acquire() {
  auto self = shared_from_this();
  auto& s = *impl_;
  const auto executor = co_await net::this_coro::executor;
  const auto deadline = clock_type::now() + s.options.acquire_timeout;
  for (;;) {
    std::unique_ptr<connection> conn;
    std::shared_ptr<waiter> w;
    std::size_t opens = 0;
    {
      std::lock_guard lock(s.mutex);
      if (s.shut_down) throw unavailable_error("database pool is shut down");
      const auto now = clock_type::now();
      s.last_used = now;
      if (s.waiters.empty() && !s.idle.empty()) {
        conn = std::move(s.idle.back().conn);
        s.idle.pop_back();
      } else if (s.open == 0 && s.backing_off_locked(now)) {
        throw s.connect_refused_locked();  // nothing to wait for: fail fast
      } else {
        if (s.waiters.empty()) s.awaiting_budget = false;  // the first of a burst asks the budget again
        w = std::make_shared<waiter>(executor);
        s.waiters.push_back(w);
        opens = s.plan_opens_locked();
      }
    }
    if (conn) {
      conn = s.keep_if_alive(std::move(conn));
      if (conn) co_return pooled_connection(self, std::move(conn));
      continue;
    }
    s.start_opens(opens);

    // The deadline covers the wait, whichever connection ends it, not one connect attempt;
    // only a waiter at the head of the queue, for which a connect is still under way, waits
    // on for that connect (bounded by its connect timeout), since it is the likeliest way out.
    auto wait_until = deadline;
    for (;;) {
      (void)co_await detail::with_deadline([&](auto handler) { w->wake.async_receive(std::move(handler)); },
                                           wait_until);
      std::lock_guard lock(s.mutex);
      if (w->handed) {
        conn = std::move(w->handed);
        break;
      }
      if (w->failed) throw unavailable_error(w->failure);
      const auto position =
          static_cast<std::size_t>(std::find(s.waiters.begin(), s.waiters.end(), w) - s.waiters.begin());
      if (w->queued && position < s.opening) {
        wait_until = clock_type::now() + connect_recheck;
        continue;
      }
      if (w->queued) std::erase(s.waiters, w);
      throw unavailable_error("database pool exhausted: no connection within " +
                              std::to_string(s.options.acquire_timeout.count()) + " ms");
    }
    co_return pooled_connection(self, std::move(conn));
  }
}

void pool::release(std::unique_ptr<connection> conn) noexcept {
  auto& s = *impl_;
  if (conn->cleanup_pending() && conn->consume_input() && !s.is_shut_down()) {
    if (auto owner = s.self.lock()) {
      // Stays lent (counted as open) until the cleanup is done and it is released again.
      auto* raw = conn.release();
      try {
        net::co_spawn(s.executor, s.clean_then_release(std::move(owner), std::unique_ptr<connection>(raw)),
                      net::detached);
      } catch (...) {  // could not start it: the connection was closed with the coroutine that never ran
        s.lent_closed();
      }
      return;
    }
  }
  const bool reusable = conn->consume_input() && conn->idle_in_no_transaction() && !conn->cleanup_pending();
  const bool yield = reusable && s.should_yield();
  follow_up next;
  std::vector<std::unique_ptr<connection>> closed;
  bool parked = false;
  {
    std::lock_guard lock(s.mutex);
    const auto now = clock_type::now();
    s.last_used = now;
    if (s.shut_down || !reusable) {
      --s.open;
      closed.push_back(std::move(conn));
      next = s.grant_capacity_locked();
    } else if (yield) {
      // Its budget slot goes to a starved pool: this pool's waiters keep the connections it
      // still has and do not open one in its place.
      --s.open;
      closed.push_back(std::move(conn));
      s.awaiting_budget = true;
    } else if (!s.waiters.empty()) {
      auto w = std::move(s.waiters.front());
      s.waiters.pop_front();
      w->queued = false;
      w->handed = std::move(conn);
      next.woken.push_back(std::move(w));
    } else {
      s.idle.push_back({std::move(conn), now});
      parked = true;
    }
  }
  s.close(std::move(closed));
  s.carry_out(std::move(next));
  if (parked) s.notify_idle();
}

pool_stats pool::stats() const {
  const auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  const bool pipe_idle = s.pipe && s.pipe->in_flight() == 0;
  return {s.open - s.opening, s.idle.size() + (pipe_idle ? 1 : 0),    s.opening, s.pipe != nullptr,
          s.waiters.size(),   s.backing_off_locked(clock_type::now())};
}

bool pool::budget_freed() {
  auto& s = *impl_;
  std::size_t opens = 0;
  {
    std::lock_guard lock(s.mutex);
    if (s.shut_down || s.open >= s.options.max_size || s.backing_off_locked(clock_type::now())) return false;
    s.awaiting_budget = false;  // with no one queued, the next acquire asks the budget at once
    opens = s.plan_opens_locked();
  }
  s.start_opens(opens);
  return opens > 0;
}

std::size_t pool::close_idle_older_than(std::chrono::steady_clock::duration age) {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  std::shared_ptr<pipeline> retired;
  follow_up next;
  {
    std::lock_guard lock(s.mutex);
    const auto cutoff = clock_type::now() - age;
    while (!s.idle.empty() && s.idle.front().last_used < cutoff) {
      closed.push_back(std::move(s.idle.front().conn));
      s.idle.pop_front();
    }
    // Entries are ordered by release time, so the scan above stops at the first fresh one.
    s.open -= closed.size();
    next = s.grant_capacity_locked();
    if (s.pipe_idle_before_locked(cutoff)) retired = s.retire_pipeline_locked(next);
  }
  const auto count = closed.size() + (retired ? 1 : 0);
  s.close(std::move(closed));
  if (retired)
    s.finish_retire(retired, std::move(next));
  else
    s.carry_out(std::move(next));
  return count;
}

bool pool::close_one_idle(std::chrono::steady_clock::time_point idle_before) {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  follow_up next;
  std::shared_ptr<pipeline> retired;
  {
    std::lock_guard lock(s.mutex);
    if (!s.idle.empty() && s.idle.front().last_used < idle_before) {
      closed.push_back(std::move(s.idle.front().conn));
      s.idle.pop_front();
      --s.open;
      next = s.grant_capacity_locked();
    } else if (s.pipe_idle_before_locked(idle_before)) {
      retired = s.retire_pipeline_locked(next);
    } else {
      return false;
    }
  }
  s.close(std::move(closed));
  if (retired)
    s.finish_retire(retired, std::move(next));
  else
    s.carry_out(std::move(next));
  return true;
}

std::chrono::steady_clock::time_point pool::last_used() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_used;
}

void pool::shutdown() {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  std::shared_ptr<pipeline> retired;
  std::deque<std::shared_ptr<waiter>> failed;
  {
    std::lock_guard lock(s.mutex);
    s.shut_down = true;
    for (auto& entry : s.idle) closed.push_back(std::move(entry.conn));
    s.idle.clear();
    s.open -= closed.size();
    failed.swap(s.waiters);
    for (const auto& w : failed) {
      w->queued = false;
      w->failed = true;
      w->failure = "database pool is shut down";
    }
    if (s.pipe) {
      retired = std::move(s.pipe);
      s.pipe.reset();
      --s.open;
    }
  }
  s.close(std::move(closed));
  if (retired) {
    retired->close();
    s.release_slot();
  }
  for (const auto& w : failed) signal(w);
}

}  // namespace tenantd::db

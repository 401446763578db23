// Connection pool, the public side: acquire (an idle connection, else a FIFO wait woken
// through a thread-safe channel), release, the shared pipelined connection, idle eviction
// and shutdown. The books it keeps and the background connects (HikariCP style) are in
// pool_books.cpp; capacity is shared with an optional global budget.
#include "db/pool.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>

#include "db/pool_books.hpp"
#include "db/server_watch.hpp"
#include "db/with_deadline.hpp"
#include "domain/lane.hpp"

namespace tenantd::db {

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
  for (auto& slot : impl_->pipes) {
    if (!slot.pipe) continue;
    slot.pipe->close();
    impl_->release_slot();
  }
}

namespace {
// Which pool, for the log (a request's 503 body never shows it).
std::string exhausted_message(const pool_options& options) {
  return "database pool exhausted: no connection within " + std::to_string(options.acquire_timeout.count()) + " ms" +
         (options.connection.label.empty() ? "" : " (" + options.connection.label + ")");
}

// The caller's pipelined-connection slot: its lane's (lane 0's from a thread that runs none).
std::size_t lane_slot(std::size_t slots) noexcept {
  const auto lane = this_threads_lane();
  return lane < slots ? lane : 0;
}

// A server its watch says is down fails a request at once, instead of after a wait.
void fail_if_server_down(const pool_options& options) {
  if (const auto& watch = options.connection.watch; watch && watch->down())
    throw unavailable_error(watch->down_message());
}
}  // namespace

net::awaitable<result_set> pool::exec_prepared(const statement& stmt, std::span<const param> params) {
  fail_if_server_down(impl_->options);
  if (impl_->options.pipeline_depth > 0) {
    const auto deadline = clock_type::now() + impl_->options.acquire_timeout;
    const auto lane = lane_slot(impl_->pipes.size());
    for (;;) {
      auto shared = co_await shared_pipeline(lane);
      if (shared) {
        auto result = co_await shared->try_exec_prepared(stmt, params);
        if (result) co_return std::move(*result);
        if (shared->broken() || impl_->can_lend_at_once())
          break;  // it broke before sending, or a connection is at hand
        // Full, and an exclusive connection would mean waiting for another's release: under a
        // full budget a busy tenant holding its fair share waits for its own, which its
        // pipelined connection never gives back (bench (b3): 503s after the acquire timeout
        // while the pipelined connection was answering). It queues there instead.
        result = co_await shared->try_exec_prepared(stmt, params, true);
        if (result) co_return std::move(*result);
        break;  // it broke before the statement was sent
      }
      // Another caller is opening it. Waiting for it, rather than queueing for a connection of
      // one's own, keeps a tenant that starts (or restarts) its pipeline at one connection: a
      // burst of first requests of many tenants would otherwise ask for max_size each, and
      // under a full budget the pools would close each other's connections in turn.
      const bool opened = co_await await_pipeline(deadline);  // not in the condition: GCC 12
      if (!opened) throw unavailable_error(exhausted_message(impl_->options));
    }
  }
  auto conn = co_await acquire();  // no pipeline, or it is full
  co_return co_await conn->exec_prepared(stmt, params);
}

net::awaitable<bool> pool::await_pipeline(clock_type::time_point deadline) {
  auto& s = *impl_;
  auto w = std::make_shared<waiter>(co_await net::this_coro::executor);
  {
    std::lock_guard lock(s.mutex);
    if (s.shut_down) throw unavailable_error("database pool is shut down");
    if (!s.pipe_being_opened_locked()) co_return true;  // opened (or given up) meanwhile: look again
    s.pipe_waiters.push_back(w);
  }
  const auto outcome =
      co_await detail::with_deadline([&](auto handler) { w->wake.async_receive(std::move(handler)); }, deadline);
  std::lock_guard lock(s.mutex);
  if (!outcome.timed_out) co_return true;
  std::erase(s.pipe_waiters, w);
  co_return !s.pipe_being_opened_locked();  // it may have been done just as the deadline passed
}

void pool::wake_pipe_waiters() noexcept {
  std::vector<std::shared_ptr<waiter>> woken;
  {
    std::lock_guard lock(impl_->mutex);
    woken.swap(impl_->pipe_waiters);
  }
  for (const auto& w : woken) signal(w);
}

net::awaitable<std::shared_ptr<pipeline>> pool::shared_pipeline(std::size_t lane) {
  auto& s = *impl_;
  std::shared_ptr<pipeline> current;
  std::vector<std::shared_ptr<pipeline>> retired;
  follow_up next;
  bool opener = false;
  bool open_in_background = false;
  {
    std::lock_guard lock(s.mutex);
    if (s.shut_down) throw unavailable_error("database pool is shut down");
    for (std::size_t i = 0; i < s.pipes.size(); ++i)  // broken ones are replaced below
      if (s.pipes[i].pipe && s.pipes[i].pipe->broken()) retired.push_back(s.retire_pipeline_locked(i, next));
    auto& own = s.pipes[lane];
    if (own.pipe) {
      current = own.pipe;
    } else {
      // Another lane's, the least busy, while this lane has none: a quiet tenant keeps one
      // connection. Once it is busy, this lane opens its own in the background meanwhile.
      bool any_creating = false;
      for (std::size_t i = 0; i < s.pipes.size(); ++i) {
        any_creating = any_creating || s.pipes[i].creating;
        const auto& other = s.pipes[i].pipe;
        if (i != lane && other && (!current || other->in_flight() < current->in_flight())) current = other;
      }
      if (current) {
        if (!own.creating && current->in_flight() >= s.options.lane_share_below && s.open < s.options.max_size) {
          own.creating = true;
          open_in_background = true;
        }
      } else if (!any_creating) {
        own.creating = true;
        opener = true;
      }
    }
  }
  s.finish_retire(retired, next);
  if (open_in_background) {
    net::co_spawn(
        s.executor,
        [](std::shared_ptr<pool> self, std::size_t slot) -> net::awaitable<void> {
          try {
            co_await self->open_pipeline(slot);
          } catch (const std::exception& e) {
            // The callers go on with the other lane's pipeline; the next busy moment tries again.
            spdlog::debug("db pool: second lane's pipelined connection not opened: {}", e.what());
          }
        }(shared_from_this(), lane),
        net::detached);
  }
  if (!opener) co_return current;
  co_return co_await open_pipeline(lane);
}

net::awaitable<std::shared_ptr<pipeline>> pool::open_pipeline(std::size_t lane) {
  auto& s = *impl_;
  std::unique_ptr<connection> raw;
  try {
    auto conn = co_await acquire();
    raw = conn.detach();
  } catch (...) {
    {
      std::lock_guard lock(s.mutex);
      s.pipes[lane].creating = false;
    }
    wake_pipe_waiters();  // they try to open it themselves, or fail the same way
    throw;
  }
  std::shared_ptr<pipeline> made;
  try {
    made = pipeline::create(s.lane_executor(lane), std::move(raw), s.options.pipeline_depth,
                            s.options.lanes.empty() ? no_lane : lane);
  } catch (...) {
    follow_up after;
    {
      std::lock_guard lock(s.mutex);
      s.pipes[lane].creating = false;
      --s.open;  // the connection was closed with the failed attempt
      after = s.grant_capacity_locked();
    }
    s.release_slot();
    s.carry_out(after);
    wake_pipe_waiters();
    throw;
  }
  bool too_late = false;
  {
    std::lock_guard lock(s.mutex);
    s.pipes[lane].creating = false;
    if (s.shut_down)
      too_late = true;
    else
      s.pipes[lane].pipe = made;
  }
  wake_pipe_waiters();
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
  fail_if_server_down(s.options);
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
      throw unavailable_error(exhausted_message(s.options));
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
  s.carry_out(next);
  if (parked) s.notify_idle();
}

pool_stats pool::stats() const {
  const auto& s = *impl_;
  std::lock_guard lock(s.mutex);
  std::size_t pipelines = 0;
  std::size_t idle_pipes = 0;
  for (const auto& slot : s.pipes) {
    if (!slot.pipe) continue;
    ++pipelines;
    if (slot.pipe->in_flight() == 0) ++idle_pipes;
  }
  pool_stats stats;
  stats.open = s.open - s.opening;
  stats.idle = s.idle.size() + idle_pipes;
  stats.opening = s.opening;
  stats.pipelined = pipelines > 0;
  stats.pipelines = pipelines;
  stats.waiters = s.waiters.size();
  stats.connect_failing = s.backing_off_locked(clock_type::now());
  return stats;
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
  std::vector<std::shared_ptr<pipeline>> retired;
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
    for (auto slot = s.idle_pipe_before_locked(cutoff); slot < s.pipes.size(); slot = s.idle_pipe_before_locked(cutoff))
      retired.push_back(s.retire_pipeline_locked(slot, next));
  }
  const auto count = closed.size() + retired.size();
  s.close(std::move(closed));
  s.finish_retire(retired, next);
  return count;
}

bool pool::close_one_idle(std::chrono::steady_clock::time_point idle_before) {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  follow_up next;
  std::vector<std::shared_ptr<pipeline>> retired;
  {
    std::lock_guard lock(s.mutex);
    if (!s.idle.empty() && s.idle.front().last_used < idle_before) {
      closed.push_back(std::move(s.idle.front().conn));
      s.idle.pop_front();
      --s.open;
      next = s.grant_capacity_locked();
    } else if (const auto slot = s.idle_pipe_before_locked(idle_before); slot < s.pipes.size()) {
      retired.push_back(s.retire_pipeline_locked(slot, next));
    } else {
      return false;
    }
  }
  s.close(std::move(closed));
  s.finish_retire(retired, next);
  return true;
}

std::chrono::steady_clock::time_point pool::last_used() const {
  std::lock_guard lock(impl_->mutex);
  // A pipelined connection's statements never pass acquire or release: without its own last
  // use, a tenant served only through it looked unused since it was opened, and was the first
  // a global budget took a connection from (bench (b3): the busy tenants' pipelines were
  // closed for a connect storm's tenants, then reopened, under a saturated PostgreSQL).
  auto latest = impl_->last_used;
  for (const auto& slot : impl_->pipes)
    if (slot.pipe) latest = std::max(latest, slot.pipe->last_used());
  return latest;
}

void pool::shutdown() {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  std::vector<std::shared_ptr<pipeline>> retired;
  std::deque<std::shared_ptr<waiter>> failed;
  {
    std::lock_guard lock(s.mutex);
    s.shut_down = true;
    for (auto& entry : s.idle) closed.push_back(std::move(entry.conn));
    s.idle.clear();
    s.open -= closed.size();
    failed.swap(s.waiters);
    for (auto& w : s.pipe_waiters) failed.push_back(std::move(w));
    s.pipe_waiters.clear();
    for (const auto& w : failed) {
      w->queued = false;
      w->failed = true;
      w->failure = "database pool is shut down";
    }
    for (auto& slot : s.pipes) {
      if (!slot.pipe) continue;
      retired.push_back(std::move(slot.pipe));
      slot.pipe.reset();
      --s.open;
    }
  }
  s.close(std::move(closed));
  s.finish_retire(retired, follow_up{});
  for (const auto& w : failed) signal(w);
}

}  // namespace tenantd::db

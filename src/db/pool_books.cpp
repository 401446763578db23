// The pool's books (pool_books.hpp): waking waiters, planning and running background
// connects, back-off, and settling connections that come back or fail.
#include "db/pool_books.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace tenantd::db {
namespace {

// Runs an optional budget callback: it must not turn a release into std::terminate.
void call_budget_callback(const std::function<void()>& callback) noexcept {
  if (!callback) return;
  try {
    callback();
  } catch (...) {
  }
}

// Asks an optional budget callback a yes/no question: `if_absent` when there is none,
// `if_failed` when it throws (it must not turn a release into std::terminate either).
bool ask_budget(const std::function<bool()>& question, bool if_absent, bool if_failed) noexcept {
  if (!question) return if_absent;
  try {
    return question();
  } catch (...) {
    return if_failed;
  }
}

}  // namespace

std::size_t pool::impl::plan_opens_locked() {
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

void pool::impl::fail_waiters_locked(const std::string& why, follow_up& next) {
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

follow_up pool::impl::grant_capacity_locked() {
  follow_up next;
  if (open == 0 && backing_off_locked(clock_type::now())) {
    fail_waiters_locked(connect_refused_locked().what(), next);
    return next;
  }
  next.opens = plan_opens_locked();
  return next;
}

bool pool::impl::is_shut_down() const {
  std::lock_guard lock(mutex);
  return shut_down;
}

void pool::impl::release_slot() const noexcept { call_budget_callback(options.release_slot); }

bool pool::impl::should_yield() const noexcept { return ask_budget(options.yield_connection, false, false); }

bool pool::impl::can_lend_at_once() const {
  {
    std::lock_guard lock(mutex);
    if (!idle.empty()) return true;
    if (open >= options.max_size || !waiters.empty()) return false;
  }
  return !ask_budget(options.budget_full, false, true);  // a budget that cannot answer counts as full
}

void pool::impl::notify_idle() const noexcept { call_budget_callback(options.on_idle); }

void pool::impl::close(std::vector<std::unique_ptr<connection>> closed) const noexcept {
  for (auto& conn : closed) {
    conn.reset();
    release_slot();
  }
}

void pool::impl::carry_out(const follow_up& next) noexcept {
  for (const auto& w : next.woken) signal(w);
  start_opens(next.opens);
}

std::shared_ptr<pipeline> pool::impl::retire_pipeline_locked(std::size_t slot, follow_up& next) {
  auto retired = std::move(pipes[slot].pipe);
  pipes[slot].pipe.reset();
  --open;
  auto more = grant_capacity_locked();
  next.opens += more.opens;
  for (auto& w : more.woken) next.woken.push_back(std::move(w));
  return retired;
}

std::size_t pool::impl::idle_pipe_before_locked(clock_type::time_point cutoff) const {
  std::size_t found = pipes.size();
  auto oldest = cutoff;
  for (std::size_t i = 0; i < pipes.size(); ++i) {
    const auto& pipe = pipes[i].pipe;
    if (!pipe || pipe->in_flight() != 0) continue;
    const auto used = pipe->last_used();
    if (used < oldest) {
      oldest = used;
      found = i;
    }
  }
  return found;
}

void pool::impl::finish_retire(const std::vector<std::shared_ptr<pipeline>>& retired, const follow_up& next) noexcept {
  for (const auto& pipe : retired) {
    pipe->close();  // fails what is in flight; the connection closes when its last user is done
    release_slot();
  }
  carry_out(next);
}

void pool::impl::discard_lent(std::unique_ptr<connection> conn) noexcept {
  conn.reset();
  lent_closed();
}

void pool::impl::lent_closed() noexcept {
  follow_up next;
  {
    std::lock_guard lock(mutex);
    --open;
    next = grant_capacity_locked();
  }
  release_slot();
  carry_out(next);
}

std::unique_ptr<connection> pool::impl::keep_if_alive(std::unique_ptr<connection> conn) noexcept {
  if (conn->consume_input() && conn->idle_in_no_transaction() && !conn->cleanup_pending()) return conn;
  discard_lent(std::move(conn));
  return nullptr;
}

void pool::impl::budget_refused() noexcept {
  std::lock_guard lock(mutex);
  --open;
  --opening;
  probing = false;
  awaiting_budget = true;
}

void pool::impl::connect_failed(const std::string& why) noexcept {
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
  carry_out(next);
}

void pool::impl::connected(std::unique_ptr<connection> conn) noexcept {
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
  carry_out(next);
  if (parked) notify_idle();
}

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

}  // namespace tenantd::db

// Connection pool: idle list (most recently used reused first), FIFO waiters woken through
// thread-safe channels, capacity shared with an optional global budget.
#include "db/pool.hpp"

#include <algorithm>
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

// One queued acquire. The pool decides its fate under the pool mutex (hand it a connection,
// let it open one, or fail it) and then signals the thread-safe channel, which wakes the
// waiter on its own executor.
struct waiter {
  explicit waiter(net::any_io_executor executor) : wake(std::move(executor), 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
  std::unique_ptr<connection> handed;  // guarded by the pool mutex, as are the flags below
  bool queued{true};
  bool may_open{false};  // one unit of capacity was counted in `open` for this waiter
  bool failed{false};
  std::string failure;  // why, when failed
};

struct idle_connection {
  std::unique_ptr<connection> conn;
  clock_type::time_point last_used;
};

void signal(const std::shared_ptr<waiter>& w) noexcept { (void)w->wake.try_send(boost::system::error_code{}); }

}  // namespace

struct pool::impl {
  impl(net::any_io_executor ex, pool_options opts) : executor(std::move(ex)), options(std::move(opts)) {}

  net::any_io_executor executor;
  pool_options options;
  mutable std::mutex mutex;
  std::deque<idle_connection> idle;  // front = least recently used
  std::size_t open{0};               // idle + lent + being opened
  std::deque<std::shared_ptr<waiter>> waiters;
  clock_type::time_point last_used{clock_type::now()};
  bool shut_down{false};
  bool budget_retry_pending{false};  // a budget slot was offered while no waiter was queued
  // Connect back-off: no new connection is attempted before connect_retry_at.
  clock_type::time_point connect_retry_at{};
  std::chrono::milliseconds connect_backoff{0};
  std::string connect_error;
  bool probing{false};  // while connects fail, one connect at a time tests the database

  // True while no new connection may be attempted: inside the back-off window, or while a
  // probe connect of a failing pool is in flight.
  bool backing_off_locked(clock_type::time_point now) const { return now < connect_retry_at || probing; }

  // Counts one connection about to be opened; in a failing pool it is the probe.
  void start_opening_locked() {
    ++open;
    if (connect_backoff.count() != 0) probing = true;
  }

  unavailable_error connect_refused_locked() const {
    return unavailable_error("database unavailable (reconnecting after: " + connect_error + ")");
  }

  // Fails every queued waiter with `why`; they are signalled by the caller.
  void fail_waiters_locked(const std::string& why, std::vector<std::shared_ptr<waiter>>& woken) {
    for (auto& w : waiters) {
      w->queued = false;
      w->failed = true;
      w->failure = why;
      woken.push_back(std::move(w));
    }
    waiters.clear();
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

  // After `open` dropped: gives freed capacity to the oldest waiters, who then open connections.
  // Returns the waiters to signal once the mutex is released.
  // While connects are backing off, nothing is granted: waiters keep waiting for a released
  // connection, or fail at once when the pool has none left to release.
  std::vector<std::shared_ptr<waiter>> grant_capacity_locked() {
    std::vector<std::shared_ptr<waiter>> woken;
    if (backing_off_locked(clock_type::now())) {
      if (open == 0) fail_waiters_locked(connect_refused_locked().what(), woken);
      return woken;
    }
    while (!shut_down && !waiters.empty() && open < options.max_size && !backing_off_locked(clock_type::now())) {
      auto w = std::move(waiters.front());
      waiters.pop_front();
      w->queued = false;
      w->may_open = true;
      start_opening_locked();
      woken.push_back(std::move(w));
    }
    return woken;
  }

  // Closes connections already removed from the pool's books (`open` decremented).
  void close(std::vector<std::unique_ptr<connection>> closed) noexcept {
    for (auto& conn : closed) {
      conn.reset();
      release_slot();
    }
  }

  // Returns `conn` if it is still usable; otherwise closes it, frees its capacity and returns null.
  std::unique_ptr<connection> keep_if_alive(std::unique_ptr<connection> conn) noexcept {
    if (conn->consume_input() && conn->idle_in_no_transaction()) return conn;
    std::vector<std::shared_ptr<waiter>> woken;
    {
      std::lock_guard lock(mutex);
      --open;
      woken = grant_capacity_locked();
    }
    std::vector<std::unique_ptr<connection>> closed;
    closed.push_back(std::move(conn));
    close(std::move(closed));
    for (const auto& w : woken) signal(w);
    return nullptr;
  }

  void connect_failed(const std::string& why) noexcept {
    std::lock_guard lock(mutex);
    connect_backoff = connect_backoff.count() == 0 ? options.connect_backoff_initial
                                                   : std::min(connect_backoff * 2, options.connect_backoff_max);
    connect_retry_at = clock_type::now() + connect_backoff;
    probing = false;
    try {
      connect_error = why;
    } catch (...) {
    }
  }

  // The back-off ends; waiters queued meanwhile may open connections again.
  void connect_succeeded() noexcept {
    std::vector<std::shared_ptr<waiter>> woken;
    {
      std::lock_guard lock(mutex);
      if (connect_backoff.count() == 0) return;
      connect_backoff = std::chrono::milliseconds(0);
      probing = false;
      connect_retry_at = {};
      woken = grant_capacity_locked();
    }
    for (const auto& w : woken) signal(w);
  }

  void notify_idle() const noexcept {
    if (!options.on_idle) return;
    try {
      options.on_idle();
    } catch (...) {  // a budget callback must not turn a release into std::terminate
    }
  }

  // Gives back one unit of capacity held for a connection that was never opened.
  void return_capacity(bool slot_reserved) noexcept {
    std::vector<std::shared_ptr<waiter>> woken;
    {
      std::lock_guard lock(mutex);
      --open;
      probing = false;  // only the opener holding this capacity can be the probe
      woken = grant_capacity_locked();
    }
    if (slot_reserved) release_slot();
    for (const auto& w : woken) signal(w);
  }
};

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

pooled_connection::~pooled_connection() {
  if (conn_) owner_->release(std::move(conn_));
}

std::shared_ptr<pool> pool::create(net::any_io_executor executor, pool_options options) {
  return std::shared_ptr<pool>(new pool(std::move(executor), std::move(options)));
}

pool::pool(net::any_io_executor executor, pool_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(options))) {}

pool::~pool() {
  std::vector<std::unique_ptr<connection>> closed;
  for (auto& entry : impl_->idle) closed.push_back(std::move(entry.conn));
  impl_->idle.clear();
  impl_->close(std::move(closed));
}

net::awaitable<pooled_connection> pool::acquire() {
  auto self = shared_from_this();
  auto& s = *impl_;
  const auto executor = co_await net::this_coro::executor;
  const auto deadline = clock_type::now() + s.options.acquire_timeout;
  bool oldest = false;          // woken from the queue: goes before every waiter still queued
  bool holds_capacity = false;  // one unit of `open` is counted for us
  for (;;) {
    std::unique_ptr<connection> conn;
    std::shared_ptr<waiter> w;
    if (!holds_capacity) {
      std::lock_guard lock(s.mutex);
      if (s.shut_down) throw unavailable_error("database pool is shut down");
      const auto now = clock_type::now();
      s.last_used = now;
      const bool my_turn = oldest || s.waiters.empty();
      if (my_turn && !s.idle.empty()) {
        conn = std::move(s.idle.back().conn);
        s.idle.pop_back();
      } else if (my_turn && s.open < s.options.max_size) {
        if (!s.backing_off_locked(now)) {
          s.start_opening_locked();
          holds_capacity = true;
        } else if (s.open == 0) {
          throw s.connect_refused_locked();  // nothing to wait for: fail fast
        }                                    // else: wait below for a connection in use to be released
      }
    }
    if (conn) {
      conn = s.keep_if_alive(std::move(conn));
      if (conn) co_return pooled_connection(self, std::move(conn));
      continue;
    }

    if (holds_capacity) {
      bool reserved = false;
      try {
        if (s.is_shut_down()) throw unavailable_error("database pool is shut down");
        reserved = s.reserve_slot();
      } catch (...) {
        s.return_capacity(false);
        throw;
      }
      if (reserved) {
        holds_capacity = false;
        std::unique_ptr<connection> opened;
        try {
          opened = co_await connection::connect(s.executor, s.options.connection);
        } catch (const std::exception& e) {
          s.connect_failed(e.what());
          s.return_capacity(true);
          throw;
        } catch (...) {
          s.return_capacity(true);
          throw;
        }
        s.connect_succeeded();
        co_return pooled_connection(self, std::move(opened));
      }
      std::lock_guard lock(s.mutex);
      --s.open;
      s.probing = false;
      holds_capacity = false;
    }

    {
      std::lock_guard lock(s.mutex);
      if (s.shut_down) throw unavailable_error("database pool is shut down");
      const auto now = clock_type::now();
      if ((oldest || s.waiters.empty()) && !s.idle.empty()) {
        conn = std::move(s.idle.back().conn);
        s.idle.pop_back();
      } else if (s.backing_off_locked(now) && s.open == 0) {
        throw s.connect_refused_locked();
      } else if (s.budget_retry_pending && s.open < s.options.max_size && !s.backing_off_locked(now)) {
        // A budget slot was offered before we queued: try to take it instead of waiting.
        s.budget_retry_pending = false;
        s.start_opening_locked();
        holds_capacity = true;
        continue;
      } else if (now < deadline) {
        w = std::make_shared<waiter>(executor);
        if (oldest)
          s.waiters.push_front(w);
        else
          s.waiters.push_back(w);
      }
    }
    if (conn) {
      conn = s.keep_if_alive(std::move(conn));
      if (conn) co_return pooled_connection(self, std::move(conn));
      continue;
    }
    if (!w)
      throw unavailable_error("database pool exhausted: no connection within " +
                              std::to_string(s.options.acquire_timeout.count()) + " ms");

    (void)co_await detail::with_deadline([&](auto handler) { w->wake.async_receive(std::move(handler)); }, deadline);

    {
      std::lock_guard lock(s.mutex);
      if (w->handed) {
        conn = std::move(w->handed);
      } else if (w->failed) {
        throw unavailable_error(w->failure);
      } else if (w->queued) {
        std::erase(s.waiters, w);
        throw unavailable_error("database pool exhausted: no connection within " +
                                std::to_string(s.options.acquire_timeout.count()) + " ms");
      } else {
        holds_capacity = w->may_open;
        oldest = true;
      }
    }
    if (conn) co_return pooled_connection(self, std::move(conn));
  }
}

void pool::release(std::unique_ptr<connection> conn) noexcept {
  auto& s = *impl_;
  const bool reusable = conn->consume_input() && conn->idle_in_no_transaction();
  std::vector<std::shared_ptr<waiter>> woken;
  std::vector<std::unique_ptr<connection>> closed;
  bool parked = false;
  {
    std::lock_guard lock(s.mutex);
    const auto now = clock_type::now();
    s.last_used = now;
    if (s.shut_down || !reusable) {
      --s.open;
      closed.push_back(std::move(conn));
      woken = s.grant_capacity_locked();
    } else if (!s.waiters.empty()) {
      auto w = std::move(s.waiters.front());
      s.waiters.pop_front();
      w->queued = false;
      w->handed = std::move(conn);
      woken.push_back(std::move(w));
    } else {
      s.idle.push_back({std::move(conn), now});
      parked = true;
    }
  }
  s.close(std::move(closed));
  for (const auto& w : woken) signal(w);
  if (parked) s.notify_idle();
}

pool_stats pool::stats() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->open, impl_->idle.size(), impl_->waiters.size(), impl_->backing_off_locked(clock_type::now())};
}

bool pool::budget_freed() {
  auto& s = *impl_;
  std::shared_ptr<waiter> w;
  {
    std::lock_guard lock(s.mutex);
    if (s.shut_down || s.open >= s.options.max_size || s.backing_off_locked(clock_type::now())) return false;
    if (s.waiters.empty()) {
      s.budget_retry_pending = true;
      return false;
    }
    w = std::move(s.waiters.front());
    s.waiters.pop_front();
    w->queued = false;
    w->may_open = true;
    s.start_opening_locked();
  }
  signal(w);
  return true;
}

std::size_t pool::close_idle_older_than(std::chrono::steady_clock::duration age) {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  std::vector<std::shared_ptr<waiter>> woken;
  {
    std::lock_guard lock(s.mutex);
    const auto cutoff = clock_type::now() - age;
    while (!s.idle.empty() && s.idle.front().last_used < cutoff) {
      closed.push_back(std::move(s.idle.front().conn));
      s.idle.pop_front();
    }
    // Entries are ordered by release time, so the scan above stops at the first fresh one.
    s.open -= closed.size();
    woken = s.grant_capacity_locked();
  }
  const auto count = closed.size();
  s.close(std::move(closed));
  for (const auto& w : woken) signal(w);
  return count;
}

bool pool::close_one_idle(std::chrono::steady_clock::time_point idle_before) {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
  std::vector<std::shared_ptr<waiter>> woken;
  {
    std::lock_guard lock(s.mutex);
    if (s.idle.empty() || !(s.idle.front().last_used < idle_before)) return false;
    closed.push_back(std::move(s.idle.front().conn));
    s.idle.pop_front();
    --s.open;
    woken = s.grant_capacity_locked();
  }
  s.close(std::move(closed));
  for (const auto& w : woken) signal(w);
  return true;
}

std::chrono::steady_clock::time_point pool::last_used() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_used;
}

void pool::shutdown() {
  auto& s = *impl_;
  std::vector<std::unique_ptr<connection>> closed;
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
  }
  s.close(std::move(closed));
  for (const auto& w : failed) signal(w);
}

}  // namespace tenantd::db

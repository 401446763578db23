// The write gate: held tenants and until when; held writes look again every millisecond.
#include "tenancy/write_gate.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace tenantd::tenancy {

using steady = std::chrono::steady_clock;

void write_gate::hold(const std::string& tenant_id, std::chrono::milliseconds at_most) {
  std::lock_guard lock(mutex_);
  auto& until = holds_[tenant_id];
  until = std::max(until, steady::now() + at_most);
  count_.store(holds_.size());
}

void write_gate::release(const std::string& tenant_id) {
  std::lock_guard lock(mutex_);
  holds_.erase(tenant_id);
  count_.store(holds_.size());
}

std::optional<steady::time_point> write_gate::held_until(const std::string& tenant_id) {
  std::lock_guard lock(mutex_);
  auto it = holds_.find(tenant_id);
  if (it == holds_.end()) return std::nullopt;
  if (it->second <= steady::now()) {  // ran out without a release (its mover died or was slow)
    holds_.erase(it);
    count_.store(holds_.size());
    return std::nullopt;
  }
  return it->second;
}

bool write_gate::holding(const std::string& tenant_id) const {
  std::lock_guard lock(mutex_);
  auto it = holds_.find(tenant_id);
  return it != holds_.end() && it->second > steady::now();
}

// Written without an early co_return (a GCC 12 hazard in coroutines, docs/architecture.md).
boost::asio::awaitable<std::chrono::microseconds> write_gate::pass(const std::string& tenant_id) {
  const auto started = steady::now();
  std::optional<steady::time_point> until;
  if (count_.load(std::memory_order_relaxed) != 0) until = held_until(tenant_id);
  std::chrono::microseconds waited{0};
  if (until) {
    writes_held_.fetch_add(1, std::memory_order_relaxed);
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    while (until) {
      timer.expires_after(std::min<steady::duration>(std::chrono::milliseconds(1), *until - steady::now()));
      co_await timer.async_wait(boost::asio::use_awaitable);
      until = held_until(tenant_id);
    }
    waited = std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started);
  }
  co_return waited;
}

}  // namespace tenantd::tenancy

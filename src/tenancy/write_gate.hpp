// Holds a tenant's writes while a move cuts it over to another database server (issue 13):
// the mover announces a hold on the invalidation channel, every process's gate then makes new
// writes to that tenant wait (not fail) until the release, or until the hold's own deadline
// passes, so a mover that dies never holds writes for longer than it asked. Reads are never
// held. A held write looks again every millisecond (a timer woken from another thread would
// need the waiter's executor to be a strand; a hold lasts a fraction of a second). The gate is what keeps writes from
// failing; what keeps them correct is the source's table locks and its fence (tenancy/mover.hpp): a write that slips
// past a gate (a process that missed the hold) waits on the source's lock and is refused there after the cut-over.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace tenantd::tenancy {

class write_gate {
 public:
  // Holds the tenant's writes for at most `at_most` from now (a second hold extends it).
  void hold(const std::string& tenant_id, std::chrono::milliseconds at_most);
  // Lets the held writes go.
  void release(const std::string& tenant_id);
  // Waits while the tenant's writes are held; how long it waited (zero when not held).
  boost::asio::awaitable<std::chrono::microseconds> pass(const std::string& tenant_id);

  bool holding(const std::string& tenant_id) const;
  // Writes that waited at the gate, since start.
  std::uint64_t writes_held() const noexcept { return writes_held_.load(std::memory_order_relaxed); }

 private:
  // Until when the tenant is held, or nullopt when it is not (an expired hold is forgotten).
  std::optional<std::chrono::steady_clock::time_point> held_until(const std::string& tenant_id);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> holds_;
  std::atomic<std::size_t> count_{0};  // holds_.size(), read without the lock on every write
  std::atomic<std::uint64_t> writes_held_{0};
};

}  // namespace tenantd::tenancy

// Keeps a dedicated master connection LISTENing on the invalidation channel and hands each
// payload to the caches, so a change made by any server process reaches all of them within
// a second. After a reconnect everything is cleared (notifications may have been missed).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "db/connection.hpp"
#include "domain/invalidation.hpp"

namespace tenantd::tenancy {

class invalidation_listener {
 public:
  // on_change receives each invalidation, parsed (a payload that does not parse becomes
  // `everything`), and `everything` after each (re)connect.
  invalidation_listener(db::connection_options master, std::function<void(const invalidation&)> on_change);

  // Runs until stop(); reconnects with a back-off when the connection fails.
  boost::asio::awaitable<void> run();
  void stop() noexcept { stopped_ = true; }
  // Called with true once LISTEN is in place (after the `everything`), false when the
  // connection is lost. Set before run().
  void on_connection(std::function<void(bool)> callback) { on_connection_ = std::move(callback); }
  bool connected() const noexcept { return connected_; }
  // Test-only (TENANTD_FAULT_POINT, builds with TENANTD_FAULT_INJECTION): with
  // "listener_reconnect_late", a lost connection is re-made only after 20 s, so a test can
  // cut this process's LISTEN connection and have it miss notifications meanwhile. Set before
  // run().
  void set_fault_point(std::string point) { fault_point_ = std::move(point); }

 private:
  // How long to wait before reconnecting: the back-off, or the fault point's delay.
  std::chrono::milliseconds reconnect_delay(std::chrono::milliseconds backoff) const;

  db::connection_options master_;
  std::function<void(const invalidation&)> on_change_;
  std::function<void(bool)> on_connection_;
  std::string fault_point_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> connected_{false};
};

}  // namespace tenantd::tenancy

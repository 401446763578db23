// LISTEN loop with reconnect and back-off.
#include "tenancy/invalidation_listener.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "db/master_repository.hpp"

namespace tenantd::tenancy {

invalidation_listener::invalidation_listener(db::connection_options master,
                                             std::function<void(const invalidation&)> on_change)
    : master_(std::move(master)), on_change_(std::move(on_change)) {}

std::chrono::milliseconds invalidation_listener::reconnect_delay(std::chrono::milliseconds backoff) const {
#ifdef TENANTD_FAULT_INJECTION
  if (fault_point_ == "listener_reconnect_late") {
    spdlog::warn("fault injection: the invalidation listener reconnects in 20 s");
    return std::chrono::seconds(20);
  }
#endif
  return backoff;
}

boost::asio::awaitable<void> invalidation_listener::run() {
  auto executor = co_await boost::asio::this_coro::executor;
  auto backoff = std::chrono::milliseconds(200);
  while (!stopped_) {
    bool failed = false;
    try {
      auto conn = co_await db::connection::connect(executor, master_);
      co_await conn->exec(std::string("LISTEN ") + db::master::invalidation_channel);
      connected_ = true;
      backoff = std::chrono::milliseconds(200);
      on_change_(invalidation::everything());
      if (on_connection_) on_connection_(true);
      while (!stopped_) {
        for (const auto& n : co_await conn->wait_notifications(std::chrono::milliseconds(500))) {
          auto change = parse_invalidation(n.payload);
          if (!change) spdlog::warn("invalidation listener: unreadable payload, clearing every cache");
          on_change_(change.value_or(invalidation::everything()));
        }
      }
    } catch (const std::exception& e) {
      failed = true;
      if (connected_) spdlog::warn("invalidation listener lost its connection: {}", e.what());
    }
    connected_ = false;
    if (on_connection_) on_connection_(false);
    if (failed && !stopped_) {
      boost::asio::steady_timer timer(executor, reconnect_delay(backoff));
      co_await timer.async_wait(boost::asio::use_awaitable);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace tenantd::tenancy

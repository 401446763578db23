// LISTEN loop with reconnect and back-off.
#include "tenancy/invalidation_listener.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include "db/master_repository.hpp"

namespace tenantd::tenancy {

invalidation_listener::invalidation_listener(db::connection_options master,
                                             std::function<void(std::string_view)> on_payload)
    : master_(std::move(master)), on_payload_(std::move(on_payload)) {}

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
      on_payload_("*");
      if (on_connection_) on_connection_(true);
      while (!stopped_) {
        for (const auto& n : co_await conn->wait_notifications(std::chrono::milliseconds(500))) on_payload_(n.payload);
      }
    } catch (const std::exception& e) {
      failed = true;
      if (connected_) spdlog::warn("invalidation listener lost its connection: {}", e.what());
    }
    connected_ = false;
    if (on_connection_) on_connection_(false);
    if (failed && !stopped_) {
      boost::asio::steady_timer timer(executor, backoff);
      co_await timer.async_wait(boost::asio::use_awaitable);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace tenantd::tenancy

// The serve command: builds the components, starts the server and the background tasks,
// runs the I/O threads until a signal has drained the server.
#include "app/application.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "app/background_tasks.hpp"
#include "app/components.hpp"

namespace tenantd::app {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// Sessions end after their current reply (sent with Connection: close); keep-alive
// connections get the server's drain window for a last request. Then everything closes and
// the io_context stops.
net::awaitable<void> drain_and_stop(components& c) {
  auto executor = co_await net::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + c.cfg.shutdown_timeout;
  while ((c.server.open_connections() > 0 || c.server.requests_in_flight() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    net::steady_timer timer(executor, 20ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  if (c.server.open_connections() > 0)
    spdlog::warn("shutdown timeout: closing {} connections still open", c.server.open_connections());
  c.stopping = true;
  c.listener.stop();
  c.server.close_all();
  if (c.metrics_server) {
    c.metrics_server->stop_accepting();
    c.metrics_server->close_all();
  }
  // This process's usage counts since the last periodic flush; the master pool is still open.
  co_await flush_usage(c);
  c.pools.shutdown();
  c.master->shutdown();
  c.ddl->shutdown();
  c.io.stop();
}

// SIGINT/SIGTERM: drain (up to SHUTDOWN_TIMEOUT_MS); a second signal exits at once.
void stop_on_signals(components& c, net::signal_set& signals) {
  signals.async_wait([&c, &signals](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    if (c.draining.exchange(true)) {
      spdlog::warn("second signal {}: exiting now", signal_number);
      std::_Exit(1);
    }
    spdlog::info("signal {}: draining (up to {} s)", signal_number, c.cfg.shutdown_timeout.count());
    spdlog::default_logger()->flush();
    c.server.stop_accepting();
    stop_on_signals(c, signals);
    net::co_spawn(c.io, drain_and_stop(c), net::detached);
  });
}

}  // namespace

int serve(const config& cfg) {
  const unsigned threads = cfg.threads != 0 ? cfg.threads : std::max(1U, std::thread::hardware_concurrency());
  net::io_context io(static_cast<int>(threads));
  components c(cfg, io);
  if (!c.listen()) return 1;
  spdlog::info("tenantd {} listening on {}:{} with {} threads", TENANTD_VERSION, cfg.host, c.server.port(), threads);
  start_background_tasks(c);
  net::signal_set signals(io, SIGINT, SIGTERM);
  stop_on_signals(c, signals);

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : workers) t.join();
  spdlog::info("tenantd stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace tenantd::app

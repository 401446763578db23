// The serve command: builds the components, starts the server and the background tasks,
// runs the I/O threads until a signal has drained the server.
#include "app/application.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
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
#include <memory>
#include <thread>
#include <vector>

#include "app/background_tasks.hpp"
#include "app/components.hpp"
#include "domain/lane.hpp"

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

// An I/O lane's io_context, whose services can be shut down before it is destroyed. An
// operation of one lane may hold an object of another (the acceptor's pending accept holds
// the socket it will hand to the next lane): every lane is shut down, its pending operations
// destroyed while every lane still exists, before any lane is destroyed.
class lane_context : public net::io_context {
 public:
  lane_context() : net::io_context(1) {}
  using net::execution_context::shutdown;
};

// Builds the components, runs the lanes' threads until the drain is done, then destroys the
// components (joining their own threads). False when a port could not be bound.
bool serve_on(const config& cfg, lane_context& io, const std::vector<net::io_context*>& lanes) {
  components c(cfg, io, lanes);
  if (!c.listen()) return false;
  spdlog::info("tenantd {} listening on {}:{} with {} threads", TENANTD_VERSION, cfg.host, c.server.port(),
               lanes.size());
  start_background_tasks(c);
  net::signal_set signals(io, SIGINT, SIGTERM);
  stop_on_signals(c, signals);

  using work_guard = net::executor_work_guard<net::io_context::executor_type>;
  std::vector<work_guard> keep_running;
  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < lanes.size(); ++i) {
    keep_running.emplace_back(lanes[i]->get_executor());
    workers.emplace_back([lane = lanes[i], i] {
      set_this_threads_lane(i);
      lane->run();
    });
  }
  set_this_threads_lane(0);
  io.run();  // until drain_and_stop has closed the sessions and the pools
  for (auto& guard : keep_running) guard.reset();
  for (std::size_t i = 1; i < lanes.size(); ++i) lanes[i]->stop();
  for (auto& t : workers) t.join();
  return true;
}

}  // namespace

int serve(const config& cfg) {
  const unsigned threads = cfg.threads != 0 ? cfg.threads : std::max(1U, std::thread::hardware_concurrency());
  // One io_context per I/O thread (a lane). Lane 0, `io`, also runs the signals, the
  // background tasks and the pools' connects; the others only what sessions put on them.
  lane_context io;
  std::vector<std::unique_ptr<lane_context>> other_lanes;
  std::vector<net::io_context*> lanes{&io};
  for (unsigned i = 1; i < threads; ++i) {
    other_lanes.push_back(std::make_unique<lane_context>());
    lanes.push_back(other_lanes.back().get());
  }
  if (!serve_on(cfg, io, lanes)) return 1;
  // Every thread that posts to the lanes is gone (the lanes' own, and the handshake and
  // hashing threads, joined with the components): shut every lane down before any is
  // destroyed.
  io.shutdown();
  for (auto& lane : other_lanes) lane->shutdown();
  spdlog::info("tenantd stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace tenantd::app

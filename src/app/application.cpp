// The serve command: builds the components, starts the server and the background tasks,
// runs the I/O threads (one io_context each) until a signal has drained the server.
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
#include "domain/io_thread.hpp"

namespace tenantd::app {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// Sessions end after their current reply (sent with Connection: close); keep-alive
// connections get the server's drain window for a last request. Then everything closes and
// every I/O thread's io_context stops.
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
  for (auto* context : c.io_threads) context->stop();
}

// The I/O threads' contexts, destroyed first to last: the first runs the acceptor, whose
// pending accept (abandoned at shutdown) holds a socket of another context, so it must go
// before the others.
struct io_contexts {
  std::vector<std::unique_ptr<net::io_context>> all;
  io_contexts() = default;
  io_contexts(const io_contexts&) = delete;
  io_contexts& operator=(const io_contexts&) = delete;
  ~io_contexts() {
    for (auto& context : all) context.reset();
  }
};

// SIGINT/SIGTERM (waited for once, on the first I/O thread): drain (up to
// SHUTDOWN_TIMEOUT_MS); a second signal exits at once.
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
  // IO_MODEL=per_thread: one io_context per thread, each told it has exactly one (concurrency
  // hint 1), so a connection and the tenant connections its requests use stay on one thread.
  // shared: one io_context that every I/O thread runs. Work guards keep a context without
  // connections yet running; drain_and_stop stops them.
  const unsigned contexts_wanted = cfg.io_per_thread ? threads : 1U;
  io_contexts contexts;
  std::vector<net::io_context*> io_threads;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  for (unsigned i = 0; i < contexts_wanted; ++i) {
    contexts.all.push_back(std::make_unique<net::io_context>(cfg.io_per_thread ? 1 : static_cast<int>(threads)));
    io_threads.push_back(contexts.all.back().get());
    keep_running.push_back(net::make_work_guard(*contexts.all.back()));
  }
  components c(cfg, io_threads);
  if (!c.listen()) return 1;
  spdlog::info("tenantd {} listening on {}:{} with {} threads ({} I/O model)", TENANTD_VERSION, cfg.host,
               c.server.port(), threads, cfg.io_per_thread ? "per_thread" : "shared");
  start_background_tasks(c);
  net::signal_set signals(c.io, SIGINT, SIGTERM);
  stop_on_signals(c, signals);

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i)
    workers.emplace_back([&io_threads, i] {
      // Per thread: thread i runs context i and is numbered i (its shards). Shared: every
      // thread runs the one context and is numbered 0 (one shard of everything).
      if (io_threads.size() > 1) io_thread::set_index(i);
      io_threads[i % io_threads.size()]->run();
    });
  io_thread::set_index(0);
  c.io.run();
  for (auto& t : workers) t.join();
  spdlog::info("tenantd stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace tenantd::app

// Server liveness for waiting calls: probes on demand, the down flag, recovery.
#include "db/server_watch.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "db/connection.hpp"

#include <spdlog/spdlog.h>

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {
std::int64_t ticks(clock_type::time_point t) noexcept { return t.time_since_epoch().count(); }
// heard() stores the time at most this often: it runs on every answer of every call.
constexpr auto heard_resolution = std::chrono::milliseconds(20);
}  // namespace

std::shared_ptr<server_watch> server_watch::create(net::any_io_executor executor, server_watch_settings settings) {
  return std::shared_ptr<server_watch>(new server_watch(std::move(executor), std::move(settings)));
}

server_watch::server_watch(net::any_io_executor executor, server_watch_settings settings)
    : executor_(std::move(executor)), settings_(std::move(settings)) {
  last_heard_.store(ticks(clock_type::now()));
}

void server_watch::heard() noexcept {
  const auto now = ticks(clock_type::now());
  const auto resolution = std::chrono::duration_cast<clock_type::duration>(heard_resolution).count();
  if (now - last_heard_.load(std::memory_order_relaxed) >= resolution)
    last_heard_.store(now, std::memory_order_relaxed);
}

std::string server_watch::down_message() const {
  return "database server " + settings_.server + " is not answering (no reply to a probe within " +
         std::to_string(settings_.probe_timeout.count()) + " ms)";
}

void server_watch::waiting(clock_type::duration waited, const std::string& conninfo) {
  if (waited < settings_.suspect_after || stopped_.load()) return;
  {
    std::lock_guard lock(mutex_);
    if (probing_) return;
    const auto now = clock_type::now();
    if (!down_.load() && now - last_probe_ < settings_.probe_every_up) return;
    probing_ = true;
    conninfo_ = conninfo;
  }
  try {
    net::co_spawn(executor_, probe_loop(shared_from_this()), net::detached);
  } catch (...) {  // could not start it: the next waiting call asks again
    std::lock_guard lock(mutex_);
    probing_ = false;
  }
}

net::awaitable<void> server_watch::probe_loop(std::shared_ptr<server_watch> self) {
  (void)self;  // keeps the watch alive while it probes
  net::steady_timer pause(executor_);
  for (;;) {
    std::string conninfo;
    {
      std::lock_guard lock(mutex_);
      conninfo = conninfo_;
    }
    const auto started = clock_type::now();
    ping_result result = ping_result::answered;
    try {
      result = co_await connection::ping(executor_, conninfo, settings_.probe_timeout);
    } catch (const std::exception& e) {
      spdlog::debug("probe of database server {} failed: {}", settings_.server, e.what());
    }
    const auto finished = clock_type::now();
    // A probe may be slow because this machine is busy; anything heard from the server while
    // it ran says the server answers.
    const bool silent = result == ping_result::timed_out && last_heard_.load() < ticks(started);
    {
      std::lock_guard lock(mutex_);
      last_probe_ = finished;
      if (stopped_.load()) {
        down_.store(false);
        probing_ = false;
        co_return;
      }
      if (silent && !down_.load()) {
        down_since_ = finished;
        down_.store(true);
        outages_.fetch_add(1);
        spdlog::warn("database server {} is not answering: its calls fail with 503 until it answers again",
                     settings_.server);
      } else if (!silent && down_.load()) {
        down_.store(false);
        spdlog::warn("database server {} answers again after {} ms", settings_.server,
                     std::chrono::duration_cast<std::chrono::milliseconds>(finished - down_since_).count());
      }
      if (!down_.load()) {
        probing_ = false;
        co_return;
      }
    }
    pause.expires_after(settings_.probe_every);
    boost::system::error_code ec;
    co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
  }
}

void server_watch::stop() noexcept {
  stopped_.store(true);
  down_.store(false);
}

}  // namespace tenantd::db

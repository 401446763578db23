// What the pool's pg tests share (pool_pgtest.cpp, pool_connect_pgtest.cpp): pool options for
// a test database, backend counting and killing, and a TCP proxy that delays connects.
#pragma once
#include <signal.h>

#include "db/pool.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db::pool_testing {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

inline pool_options options_for(const test::test_database& db, std::size_t max_size) {
  pool_options options;
  options.connection.conninfo = db.conninfo() + " application_name=tenantd";
  options.max_size = max_size;
  options.acquire_timeout = 3000ms;
  return options;
}

inline std::int64_t backends_of(const test::test_database& db) {
  const auto rows = test::admin_query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db.name() +
                                      "' AND application_name = 'tenantd'");
  return std::stoll(rows.at(0).at(0));
}

inline net::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  net::steady_timer timer(co_await net::this_coro::executor, duration);
  co_await timer.async_wait(net::use_awaitable);
}

// Terminates a backend and waits (with a deadline) until the server has let it go.
inline net::awaitable<void> terminate_backend(int pid) {
  test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline &&
         !test::admin_query("SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(pid)).empty())
    co_await sleep_for(5ms);
  // The backend leaves pg_stat_activity before its process exits and the kernel closes its
  // socket: wait for the process too (as root; otherwise kill() says EPERM and this is skipped),
  // so the client side can see the closed connection.
  while (std::chrono::steady_clock::now() < deadline && ::kill(pid, 0) == 0) co_await sleep_for(5ms);
}

// A TCP proxy in front of the test cluster that can hold new connections back, as a
// postmaster does when the machine is saturated: a connection accepted while a delay is set
// is forwarded to PostgreSQL only after that delay. Runs on its own thread.
class slow_proxy {
 public:
  slow_proxy() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~slow_proxy() {
    io_.stop();
    thread_.join();
  }
  slow_proxy(const slow_proxy&) = delete;
  slow_proxy& operator=(const slow_proxy&) = delete;

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void delay_new_connections(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }
  int accepted() const { return accepted_.load(); }
  // While on, a connection the server closed is left open towards the client (everything the
  // server sent before its close is forwarded): the moment between a backend's last message
  // and its socket's close, held open.
  void hold_server_closes(bool on) { hold_closes_ = on; }
  // How many server sides have closed (held or not).
  int server_closes() const { return server_closes_.load(); }

 private:
  using tcp = net::ip::tcp;

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++accepted_;
      net::co_spawn(io_, forward(std::move(client)), net::detached);
    }
  }

  net::awaitable<void> forward(tcp::socket accepted) {
    const std::chrono::milliseconds delay(delay_ms_.load());
    if (delay.count() > 0) {
      net::steady_timer timer(io_, delay);
      (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    auto client = std::make_shared<tcp::socket>(std::move(accepted));
    auto server = std::make_shared<tcp::socket>(io_);
    const tcp::endpoint upstream(net::ip::make_address(test::pg_cluster().host),
                                 static_cast<unsigned short>(test::pg_cluster().port));
    auto [ec] = co_await server->async_connect(upstream, net::as_tuple(net::use_awaitable));
    if (ec) co_return;
    // As PostgreSQL does: a message is forwarded at once, not held back by Nagle's algorithm.
    boost::system::error_code ignored;
    client->set_option(tcp::no_delay(true), ignored);
    server->set_option(tcp::no_delay(true), ignored);
    net::co_spawn(io_, pump(client, server, false), net::detached);
    net::co_spawn(io_, pump(server, client, true), net::detached);
  }

  net::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to, bool from_server) {
    std::array<char, 8192> buffer{};
    for (;;) {
      auto [read_ec, n] = co_await from->async_read_some(net::buffer(buffer), net::as_tuple(net::use_awaitable));
      if (read_ec) break;
      auto [write_ec, written] =
          co_await net::async_write(*to, net::buffer(buffer.data(), n), net::as_tuple(net::use_awaitable));
      if (write_ec) break;
    }
    if (from_server) {
      ++server_closes_;
      net::steady_timer held(io_);
      while (hold_closes_.load() && to->is_open()) {
        held.expires_after(5ms);
        (void)co_await held.async_wait(net::as_tuple(net::use_awaitable));
      }
    }
    boost::system::error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<long> delay_ms_{0};
  std::atomic<int> accepted_{0};
  std::atomic<bool> hold_closes_{false};
  std::atomic<int> server_closes_{0};
  std::thread thread_;
};

}  // namespace tenantd::db::pool_testing

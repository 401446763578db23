// connection::ping and db::server_watch: a live cluster answers a ping, a closed port refuses
// it, a listener that accepts and never speaks (a server that stopped answering) times out; a
// watch declares such a server down, but not while its other connections still hear from it,
// and up again once it answers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "db/connection.hpp"
#include "db/server_watch.hpp"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

// A TCP listener on 127.0.0.1 that completes handshakes (the kernel's backlog) but sends
// nothing: what a paused server looks like from outside. answer() makes it accept and send
// one byte to every connection from then on, as a server that came back.
class silent_listener {
 public:
  silent_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    port_ = ntohs(address.sin_port);
  }
  ~silent_listener() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    if (answering_.joinable()) answering_.join();
    ::close(fd_);
  }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;

  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=x user=x sslmode=disable";
  }
  void answer() {
    answering_ = std::thread([this] {
      while (!stop_) {
        const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;
        (void)::send(client, "N", 1, MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }

 private:
  int fd_{-1};
  int port_{0};
  std::atomic<bool> stop_{false};
  std::thread answering_;
};

// A port nothing listens on (bound, then closed).
std::string refusing_conninfo() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&address), length);
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return "host=127.0.0.1 port=" + std::to_string(ntohs(address.sin_port)) + " dbname=x user=x";
}

TEST(ping, answered_refused_and_timed_out) {
  test::test_database db;
  silent_listener silent;
  run_coro([&](auto ex) -> net::awaitable<void> {
    EXPECT_EQ(co_await connection::ping(ex, db.conninfo(), 2000ms), ping_result::answered);
    EXPECT_EQ(co_await connection::ping(ex, refusing_conninfo(), 2000ms), ping_result::refused);
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(co_await connection::ping(ex, silent.conninfo(), 300ms), ping_result::timed_out);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s) << "the ping's own deadline bounds it";
  });
}

// Waits on the io_context's thread until `done` or `limit`.
net::awaitable<bool> eventually(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  net::steady_timer timer(co_await net::this_coro::executor);
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) co_return false;
    timer.expires_after(20ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  co_return true;
}

server_watch_settings quick(std::string name) {
  return {.server = std::move(name),
          .suspect_after = 100ms,
          .probe_timeout = 300ms,
          .probe_every = 100ms,
          .probe_every_up = 100ms};
}

TEST(server_watch, a_silent_server_is_down_until_it_answers_again) {
  silent_listener silent;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto watch = server_watch::create(ex, quick("s1"));
    watch->waiting(50ms, silent.conninfo());  // not long enough to suspect anything
    EXPECT_FALSE(co_await eventually([&] { return watch->down(); }, 600ms));
    watch->waiting(150ms, silent.conninfo());
    EXPECT_TRUE(co_await eventually([&] { return watch->down(); }, 3000ms));
    EXPECT_EQ(watch->outages(), 1u);
    EXPECT_NE(watch->down_message().find("database server s1 is not answering"), std::string::npos);
    silent.answer();
    EXPECT_TRUE(co_await eventually([&] { return !watch->down(); }, 3000ms)) << "a probe every 100 ms";
    EXPECT_EQ(watch->outages(), 1u);
    watch->stop();
  });
}

// A probe that times out while the server's other connections receive answers (a machine too
// busy to fork a backend quickly) does not make the server down.
TEST(server_watch, answers_on_other_connections_keep_it_up) {
  silent_listener silent;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto watch = server_watch::create(ex, quick("s2"));
    net::steady_timer timer(ex);
    watch->waiting(150ms, silent.conninfo());
    for (int i = 0; i < 60; ++i) {  // 1.2 s: several probes' worth
      watch->heard();
      timer.expires_after(20ms);
      co_await timer.async_wait(net::use_awaitable);
      watch->waiting(150ms, silent.conninfo());
      EXPECT_FALSE(watch->down());
    }
    EXPECT_EQ(watch->outages(), 0u);
    watch->stop();
  });
}

// A stopped watch (registry shut down) says up and probes no more.
TEST(server_watch, stop_ends_probing) {
  silent_listener silent;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto watch = server_watch::create(ex, quick("s3"));
    watch->waiting(150ms, silent.conninfo());
    EXPECT_TRUE(co_await eventually([&] { return watch->down(); }, 3000ms));
    watch->stop();
    EXPECT_FALSE(watch->down());
    watch->waiting(150ms, silent.conninfo());
    EXPECT_FALSE(co_await eventually([&] { return watch->down(); }, 800ms));
  });
}

}  // namespace
}  // namespace tenantd::db

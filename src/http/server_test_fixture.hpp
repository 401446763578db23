// The fixture of the HTTP server tests (server_test.cpp, server_connections_test.cpp): a
// server on 127.0.0.1 (port 0) run by two threads, a raw-socket client that speaks bytes, and
// a handler that echoes what it was given.
#pragma once
#include "http/server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tenantd::http::server_testing {

namespace net = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds timeout = 2000ms) {
  const auto deadline = steady::now() + timeout;
  while (!done()) {
    if (steady::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

inline std::string to_lower(std::string s) {
  for (auto& c : s) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  return s;
}

struct raw_response {
  unsigned status{0};
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (n == name) return v;
    return std::nullopt;
  }
};

inline int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A blocking client that writes raw bytes and reads responses with deadlines.
class client {
 public:
  explicit client(std::uint16_t port) : fd_(connect_to(port)) {
    if (fd_ < 0) throw std::runtime_error("connect failed");
  }
  ~client() { ::close(fd_); }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  bool send(std::string_view data) const {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::optional<raw_response> read_response(std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = steady::now() + timeout;
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos)
      if (!fill(deadline)) return std::nullopt;
    raw_response response;
    const std::string head = buffer_.substr(0, header_end);
    const auto line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12) return std::nullopt;
    response.status = static_cast<unsigned>(std::stoul(status_line.substr(9, 3)));
    for (std::size_t at = line_end; at != std::string::npos && at < head.size();) {
      const auto next = head.find("\r\n", at + 2);
      const std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        response.headers.emplace_back(to_lower(line.substr(0, colon)), value);
      }
      at = next;
    }
    buffer_.erase(0, header_end + 4);
    const auto length = response.header("content-length");
    const std::size_t body_size = length && !is_head_ ? std::stoul(*length) : 0;
    while (buffer_.size() < body_size)
      if (!fill(deadline)) return std::nullopt;
    response.body = buffer_.substr(0, body_size);
    buffer_.erase(0, body_size);
    return response;
  }

  // True once the server has closed the connection (EOF or reset) within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout = 2000ms) {
    const auto deadline = steady::now() + timeout;
    while (fill(deadline)) {
    }
    return eof_;
  }

  void expect_head_responses(bool on) { is_head_ = on; }
  const std::string& unread() const { return buffer_; }

 private:
  bool fill(steady::time_point deadline) {
    if (eof_) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char chunk[4096];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
  bool eof_{false};
  bool is_head_{false};
};

inline net::awaitable<api::response> handle(std::atomic<int>& calls, api::request& req) {
  ++calls;
  if (req.path == "/throw") throw std::runtime_error("handler failure");
  if (req.path == "/sleep") {
    net::steady_timer timer(co_await net::this_coro::executor);
    timer.expires_after(std::chrono::milliseconds(std::stoi(req.query)));
    co_await timer.async_wait(net::use_awaitable);
  }
  api::response response;
  response.content_type = "text/plain";
  response.body = req.method + " " + req.path + " " + req.query + " " + req.body;
  response.headers.emplace_back("X-Remote", req.remote_address);
  response.headers.emplace_back("X-Header-Count", std::to_string(req.headers.size()));
  if (req.path == "/server") response.headers.emplace_back("Server", "leaky/1.0");
  if (req.path == "/close") response.close = true;
  co_return response;
}

inline api::response reject(unsigned status, errc code, std::string_view, const api::request&) {
  api::response response;
  response.status = status;
  response.content_type = "application/problem+json";
  response.body = "{\"status\":" + std::to_string(status) + ",\"code\":\"" + std::string(to_string(code)) + "\"}";
  return response;
}

inline server_options fast_options() {
  server_options options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.body_limit = 1024;
  options.header_timeout = 2000ms;
  options.body_timeout = 2000ms;
  options.idle_timeout = 2000ms;
  options.write_timeout = 2000ms;
  options.max_connections = 100;
  return options;
}

class server_test : public ::testing::Test {
 protected:
  void start(server_options options = fast_options()) {
    server_ = std::make_unique<server>(
        io_, std::move(options), [this](api::request& req) { return handle(calls_, req); }, reject);
    server_->start();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->close_all();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }
  std::uint16_t port() const { return server_->port(); }

  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
  std::atomic<int> calls_{0};
  std::unique_ptr<server> server_;
  std::vector<std::thread> threads_;
};

constexpr std::string_view get_root = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
}  // namespace tenantd::http::server_testing

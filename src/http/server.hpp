// The HTTP/1.1 server: accept loop and sessions (Beast), with header/body limits, framing
// checks, timeouts and keep-alive. Hands each well-framed request to the dispatcher.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "api/message.hpp"
#include "domain/error.hpp"

namespace boost::asio {
class io_context;
}

namespace tenantd::http {

struct server_options {
  std::string host{"0.0.0.0"};
  std::uint16_t port{8000};  // 0 picks a free port; see server::port()
  std::size_t header_limit{8192};
  std::size_t body_limit{65536};
  std::chrono::milliseconds header_timeout{10000};  // whole header must arrive within this
  std::chrono::milliseconds body_timeout{30000};    // whole body must arrive within this
  std::chrono::milliseconds idle_timeout{60000};    // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30000};
  // After stop_accepting(), how long a keep-alive connection still waits for a request that
  // may already be on its way; one that comes is answered (with "Connection: close").
  std::chrono::milliseconds drain_window{1000};
  std::size_t max_connections{20000};  // beyond this, new connections are closed at once
  // The I/O lanes (io_contexts run by one thread each): accepted connections are handed to
  // them in turn, and a session runs wholly on its lane's thread. Empty: each session gets a
  // strand of the server's io_context (which any number of threads may run).
  std::vector<boost::asio::io_context*> lanes;
};

// Produces the response for a request the server itself rejects (framing, limits,
// timeouts), so its body has the same problem+json shape as the dispatcher's errors.
// `partial` holds whatever of the request was parsed (possibly nothing).
using error_responder =
    std::function<api::response(unsigned status, errc code, std::string_view detail, const api::request& partial)>;
using request_handler = std::function<boost::asio::awaitable<api::response>(api::request&)>;

class server {
 public:
  server(boost::asio::io_context& io, server_options options, request_handler handler, error_responder on_error);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens (throws std::system_error on failure), then starts accepting.
  void start();
  // The bound port (after start()).
  std::uint16_t port() const noexcept;
  // Stops accepting new connections. Every request that reaches the server is still
  // answered, with "Connection: close", and each connection closes only after a response:
  // sessions finish their current request; keep-alive connections wait up to drain_window
  // for one more request (one the client may have sent as the signal came) and then close.
  void stop_accepting();
  // Closes all connections at once.
  void close_all();
  std::size_t open_connections() const noexcept;
  // Requests being handled right now.
  std::size_t requests_in_flight() const noexcept;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace tenantd::http

// libFuzzer target for raw client bytes: one real HTTP session (Beast parser, obs-fold and
// framing checks, limits, keep-alive, linger) over a socket pair, with a stub handler.
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "http/framing.hpp"
#include "http/session.hpp"

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http_fuzz: %s\n", what);
  std::abort();
}

// What one connection saw, reset for every input.
struct observed {
  unsigned handled{0};
  bool rejected{false};
};
observed seen;

tenantd::http::server_options fuzz_options() {
  tenantd::http::server_options options;  // production header limit and framing
  options.body_limit = 4096;              // small, so inputs reach the limit checks
  // Nothing should wait on the peer: it has sent everything and shut down. A session that
  // waits anyway hits these deadlines, far beyond libFuzzer's -timeout (scripts/fuzz), so it
  // is reported as a hang instead of passing after a delay.
  options.header_timeout = 60s;
  options.body_timeout = 60s;
  options.idle_timeout = 60s;
  options.write_timeout = 60s;
  return options;
}

net::awaitable<tenantd::api::response> handle(tenantd::api::request& req) {
  if (seen.rejected) fail("a request was handled after a rejection on the same connection");
  if (req.version != 10 && req.version != 11) fail("handler got a version other than 1.0/1.1");
  if (tenantd::http::check_framing(req.version, req.headers)) fail("handler got a badly framed request");
  if (req.body.size() > fuzz_options().body_limit) fail("handler got a body over the limit");
  if (req.method.empty() || !req.target.starts_with(req.path)) fail("handler got an inconsistent request line");
  for (const auto& [name, value] : req.headers)
    for (const char c : name)
      if (c >= 'A' && c <= 'Z') fail("header name not lower-cased");
  tenantd::api::response res;
  res.status = 200;
  res.content_type.clear();
  res.set_header("X-Fuzz-Seq", std::to_string(++seen.handled));
  co_return res;
}

tenantd::api::response reject(unsigned status, tenantd::errc, std::string_view, const tenantd::api::request&) {
  seen.rejected = true;
  tenantd::api::response res;
  res.status = status;
  res.content_type.clear();
  res.set_header("X-Fuzz-Rejected", std::to_string(status));
  return res;
}

net::awaitable<void> client(tcp::socket peer, std::string_view input, std::string& replies) {
  constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
  auto [write_ec, written] = co_await net::async_write(peer, net::buffer(input), use_tuple);
  (void)written;
  boost::system::error_code ec;
  if (!write_ec) peer.shutdown(tcp::socket::shutdown_send, ec);
  auto [read_ec, n] = co_await net::async_read(peer, net::dynamic_buffer(replies), use_tuple);
  (void)read_ec;
  (void)n;
}

struct harness {
  harness() : state(std::make_shared<tenantd::http::server_state>(fuzz_options(), handle, reject)) {
    spdlog::set_level(spdlog::level::off);
  }
  net::io_context io{1};
  std::shared_ptr<tenantd::http::server_state> state;
};

}  // namespace

// The client half writes the input, shuts down its sending side and reads until the session
// closes. Properties: the session always ends (a wait would exceed libFuzzer's -timeout);
// every request the handler sees is well framed and within the body limit; every handled
// request gets its reply, in order; nothing is handled after a rejection on the connection.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static harness h;
  seen = {};
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) fail("socketpair failed");
  // The session only needs a stream socket; Asio does not look at the address family here.
  tcp::socket server_end(h.io);
  server_end.assign(tcp::v4(), fds[0]);
  tcp::socket client_end(h.io);
  client_end.assign(tcp::v4(), fds[1]);

  ++h.state->open_connections;  // as the acceptor does before start_session
  tenantd::http::start_session(h.state, std::move(server_end));
  std::string replies;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  net::co_spawn(h.io, client(std::move(client_end), input, replies), net::detached);

  h.io.restart();
  h.io.run();
  if (h.state->open_connections != 0) fail("the session did not release its connection slot");

  // Every handled request got its reply, in order.
  std::size_t at = 0;
  for (unsigned i = 1; i <= seen.handled; ++i) {
    const std::string marker = "X-Fuzz-Seq: " + std::to_string(i) + "\r\n";
    at = replies.find(marker, at);
    if (at == std::string::npos) fail("a handled request got no reply");
  }
  if (!replies.empty() && !replies.starts_with("HTTP/1.")) fail("reply does not start with a status line");
  return 0;
}

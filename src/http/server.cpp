// The listener: binds, accepts connections (each onto the next I/O lane, or a strand of its
// own) and starts a session for each; enforces max_connections and backs off on descriptor
// exhaustion instead of spinning.
#include "http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <exception>
#include <string>
#include <system_error>
#include <utility>

#include "http/session.hpp"

namespace tenantd::http {
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::chrono::milliseconds accept_backoff{100};

void throw_if(const boost::system::error_code& ec, const std::string& what) {
  if (ec) throw std::system_error(std::error_code(ec), what);
}

tcp::endpoint resolve_endpoint(net::io_context& io, const server_options& options) {
  boost::system::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (!ec) return {address, options.port};
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive, ec);
  throw_if(ec, "cannot resolve listen host " + options.host);
  if (results.empty())
    throw std::system_error(std::make_error_code(std::errc::address_not_available),
                            "cannot resolve listen host " + options.host);
  return results.begin()->endpoint();
}

}  // namespace

struct server::impl {
  impl(net::io_context& context, server_options options, request_handler handler, error_responder on_error)
      : io(context),
        state(std::make_shared<server_state>(std::move(options), std::move(handler), std::move(on_error))),
        acceptor(net::make_strand(context)) {}

  static net::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    const auto& state = self->state;
    net::steady_timer backoff(self->acceptor.get_executor());
    bool backing_off = false;
    const auto& lanes = state->options.lanes;
    std::size_t next_lane = 0;
    for (;;) {
      // A lane's io_context has one thread, which serialises the session as a strand would.
      net::any_io_executor connection_executor =
          lanes.empty() ? net::any_io_executor(net::make_strand(self->io)) : lanes[next_lane]->get_executor();
      auto [ec, socket] = co_await self->acceptor.async_accept(connection_executor, use_tuple);
      if (!self->acceptor.is_open() || ec == net::error::operation_aborted) co_return;
      if (ec == net::error::connection_aborted) continue;
      if (ec) {
        // EMFILE, ENFILE, ENOBUFS and the like persist until connections close: wait, don't spin.
        if (!backing_off) spdlog::warn("http: accept failed ({}); retrying every 100 ms", ec.message());
        backing_off = true;
        backoff.expires_after(accept_backoff);
        co_await backoff.async_wait(use_tuple);
        continue;
      }
      if (backing_off) spdlog::info("http: accepting connections again");
      backing_off = false;
      if (state->open_connections.load() >= state->options.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++state->open_connections;
      const std::size_t lane = lanes.empty() ? no_lane : next_lane;
      if (!lanes.empty()) next_lane = (next_lane + 1) % lanes.size();
      start_session(state, std::move(socket), lane);
    }
  }

  net::io_context& io;
  std::shared_ptr<server_state> state;
  tcp::acceptor acceptor;
  std::atomic<std::uint16_t> port{0};
};

server::server(net::io_context& io, server_options options, request_handler handler, error_responder on_error)
    : impl_(std::make_shared<impl>(io, std::move(options), std::move(handler), std::move(on_error))) {}

server::~server() {
  stop_accepting();
  close_all();
}

void server::start() {
  auto& acceptor = impl_->acceptor;
  const auto endpoint = resolve_endpoint(impl_->io, impl_->state->options);
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  throw_if(ec, "cannot open listen socket");
  acceptor.set_option(net::socket_base::reuse_address(true), ec);
  throw_if(ec, "cannot set SO_REUSEADDR");
  acceptor.bind(endpoint, ec);
  throw_if(ec, "cannot bind " + endpoint.address().to_string() + ":" + std::to_string(endpoint.port()));
  acceptor.listen(net::socket_base::max_listen_connections, ec);
  throw_if(ec, "cannot listen");
  const auto bound = acceptor.local_endpoint(ec);
  throw_if(ec, "cannot read the bound port");
  impl_->port = bound.port();
  net::co_spawn(acceptor.get_executor(), impl::accept_loop(impl_), [](const std::exception_ptr& failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("http: accept loop ended by exception: {}", e.what());
    } catch (...) {
      spdlog::error("http: accept loop ended by an unknown exception");
    }
  });
}

std::uint16_t server::port() const noexcept { return impl_->port; }

void server::stop_accepting() {
  if (impl_->state->stopping.exchange(true)) return;
  net::post(impl_->acceptor.get_executor(), [self = impl_] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    // Connections that went idle before the drain wait with their long idle timeout: after
    // the drain window, those still idle are closed (new idle waits use the window itself).
    auto window = std::make_shared<net::steady_timer>(self->acceptor.get_executor(), self->state->options.drain_window);
    window->async_wait([self, window](const boost::system::error_code&) { self->state->close_idle_sessions(); });
  });
}

void server::close_all() { impl_->state->close_all_sessions(); }

std::size_t server::open_connections() const noexcept { return impl_->state->open_connections; }

std::size_t server::requests_in_flight() const noexcept { return impl_->state->in_flight; }

}  // namespace tenantd::http

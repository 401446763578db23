// One connection on its lane (or its own strand): reads each request under a deadline and the size limits,
// checks its framing, awaits the handler and writes the reply, in order, with keep-alive.
#include "http/session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/framing.hpp"

namespace tenantd::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace beast_http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
// After a reply that closes the connection, unread input is drained for a moment so the
// client's kernel does not receive a reset that discards the reply.
constexpr std::size_t linger_byte_limit = 256 * 1024;
constexpr std::chrono::milliseconds linger_timeout{1000};
constexpr std::size_t idle_read_size = 4096;
constexpr std::size_t header_read_size = 4096;

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

bool is_parse_error(const beast::error_code& ec) {
  static const auto& category = beast_http::make_error_code(beast_http::error::bad_method).category();
  return ec.category() == category && ec != beast_http::error::end_of_stream &&
         ec != beast_http::error::partial_message;
}

class in_flight_guard {
 public:
  explicit in_flight_guard(std::atomic<std::size_t>& counter) : counter_(counter) { ++counter_; }
  ~in_flight_guard() { --counter_; }
  in_flight_guard(const in_flight_guard&) = delete;
  in_flight_guard& operator=(const in_flight_guard&) = delete;

 private:
  std::atomic<std::size_t>& counter_;
};

}  // namespace

class session {
 public:
  session(std::shared_ptr<server_state> state, tcp::socket socket, std::uint64_t id, std::size_t lane)
      : state_(std::move(state)), stream_(std::move(socket)), id_(id), lane_(lane) {
    beast::error_code ec;
    const auto peer = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = peer.address().to_string();
  }
  ~session() {
    {
      std::lock_guard lock(state_->registry_mutex);
      state_->registry.erase(id_);
    }
    release_slot();
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  net::any_io_executor executor() { return stream_.get_executor(); }
  std::uint64_t id() const noexcept { return id_; }

  static net::awaitable<void> run(std::shared_ptr<session> self) { co_await self->serve(); }

  static void close(const std::shared_ptr<session>& self) {
    net::post(self->stream_.get_executor(), [self] { self->stream_.close(); });
  }
  // Closes the connection if it waits for a next request and none has arrived, not even
  // bytes still unread in the socket (their read completion may be queued behind this).
  static void close_if_idle(const std::shared_ptr<session>& self) {
    net::post(self->stream_.get_executor(), [self] {
      if (!self->idle_) return;
      beast::error_code ec;
      const auto pending = self->stream_.socket().available(ec);
      if (ec || pending == 0) self->stream_.close();
    });
  }

 private:
  enum class outcome { keep_alive, linger_close, close };

  net::awaitable<void> serve() {
    for (bool first = true;; first = false) {
      if (!first && !co_await await_next_request()) break;
      const outcome done = co_await serve_one();
      if (done == outcome::keep_alive) continue;
      if (done == outcome::linger_close) co_await linger();
      break;
    }
    stream_.close();
    release_slot();
  }

  // Waits up to idle_timeout for the first byte of the next request on a kept-alive
  // connection; while the server drains, only up to drain_window: a request the client sent
  // as the drain began still gets its answer (with "Connection: close").
  net::awaitable<bool> await_next_request() {
    if (buffer_.size() > 0) co_return true;
    const auto& options = state_->options;
    idle_ = true;
    stream_.expires_after(state_->stopping ? std::min(options.idle_timeout, options.drain_window)
                                           : options.idle_timeout);
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(idle_read_size), use_tuple);
    idle_ = false;
    if (ec) co_return false;
    buffer_.commit(n);
    co_return true;
  }

  net::awaitable<outcome> serve_one() {
    const auto& options = state_->options;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(options.header_limit, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(static_cast<std::uint64_t>(options.body_limit));

    stream_.expires_after(options.header_timeout);
    if (const auto early = co_await buffer_header()) co_return *early;
    auto [header_ec, header_n] = co_await beast_http::async_read_header(stream_, buffer_, *parser_, use_tuple);
    if (header_ec) co_return co_await on_read_error(header_ec, "header");

    api::request req = parsed_request();
    if (const auto fault = check_framing(req.version, req.headers)) {
      co_await reject(fault->status, errc::invalid_input, fault->detail, req);
      co_return outcome::linger_close;
    }

    if (!parser_->is_done()) {
      const auto expect = req.header("expect");
      if (req.version == 11 && expect && beast::iequals(*expect, "100-continue")) {
        beast_http::response<beast_http::empty_body> go_on{beast_http::status::continue_, 11};
        stream_.expires_after(options.write_timeout);
        auto [continue_ec, continue_n] = co_await beast_http::async_write(stream_, go_on, use_tuple);
        if (continue_ec) co_return outcome::close;
      }
      stream_.expires_after(options.body_timeout);
      auto [body_ec, body_n] = co_await beast_http::async_read(stream_, buffer_, *parser_, use_tuple);
      if (body_ec) co_return co_await on_read_error(body_ec, "body");
    }
    req.body = std::move(parser_->get().body());
    const bool wants_keep_alive = parser_->get().keep_alive();
    const bool is_head = parser_->get().method() == beast_http::verb::head;
    parser_.reset();

    std::optional<api::response> reply;
    {
      in_flight_guard guard(state_->in_flight);
      assert(lane_ == no_lane || this_threads_lane() == lane_);
      try {
        reply = co_await state_->handler(req);
      } catch (const std::exception& e) {
        spdlog::error("http: handler threw for {} {}: {}", req.method, req.path, e.what());
      } catch (...) {
        spdlog::error("http: handler threw a non-exception for {} {}", req.method, req.path);
      }
    }
    if (reply && (reply->status < 200 || reply->status > 599)) {
      spdlog::error("http: handler returned status {} for {} {}", reply->status, req.method, req.path);
      reply.reset();
    }
    if (!reply) reply = error_response(500, errc::internal, "internal error", req);

    const bool keep_alive = wants_keep_alive && !reply->close && !state_->stopping;
    if (!co_await write(std::move(*reply), req.version, keep_alive, is_head)) co_return outcome::close;
    co_return keep_alive ? outcome::keep_alive : outcome::linger_close;
  }

  // Reads until the whole header is buffered so its raw bytes can be checked for obs-fold
  // before Beast parses (and unfolds) it. Returns an outcome only when the request ends here.
  net::awaitable<std::optional<outcome>> buffer_header() {
    std::size_t searched = 0;
    for (;;) {
      const std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
      const auto end = data.find("\r\n\r\n", searched);
      if (end != std::string_view::npos) {
        if (!has_obs_fold(data.substr(0, end + 2))) co_return std::nullopt;
        co_await reject(400, errc::invalid_input, "obsolete line folding", parsed_request());
        co_return outcome::linger_close;
      }
      if (data.size() > state_->options.header_limit)
        co_return co_await on_read_error(beast_http::error::header_limit, "header");
      searched = data.size() < 3 ? 0 : data.size() - 3;
      auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(header_read_size), use_tuple);
      if (ec) co_return co_await on_read_error(ec, "header");
      buffer_.commit(n);
    }
  }

  net::awaitable<outcome> on_read_error(const beast::error_code& ec, std::string_view phase) {
    const api::request partial = parsed_request();
    if (ec == beast_http::error::header_limit) {
      co_await reject(431, errc::invalid_input, "request header too large", partial);
      co_return outcome::linger_close;
    }
    if (ec == beast_http::error::body_limit) {
      co_await reject(413, errc::payload_too_large, "request body too large", partial);
      co_return outcome::linger_close;
    }
    if (is_parse_error(ec)) {
      spdlog::debug("http: malformed request {} from {}: {}", phase, remote_address_, ec.message());
      co_await reject(400, errc::invalid_input, "malformed request", partial);
      co_return outcome::linger_close;
    }
    if (ec == beast::error::timeout) spdlog::debug("http: {} timeout from {}", phase, remote_address_);
    co_return outcome::close;
  }

  // The request as far as the parser got (header fields, method, target, version).
  api::request parsed_request() const {
    api::request req;
    req.remote_address = remote_address_;
    if (!parser_) return req;
    const auto& message = parser_->get();
    req.method = std::string(message.method_string());
    req.target = std::string(message.target());
    const auto query_at = req.target.find('?');
    req.path = req.target.substr(0, query_at);
    if (query_at != std::string::npos) req.query = req.target.substr(query_at + 1);
    req.version = message.version();
    for (const auto& field : message)
      req.headers.emplace_back(to_lower(field.name_string()), std::string(field.value()));
    return req;
  }

  api::response error_response(unsigned status, errc code, std::string_view detail, const api::request& partial) {
    api::response reply;
    try {
      reply = state_->on_error(status, code, detail, partial);
    } catch (const std::exception& e) {
      spdlog::error("http: error responder threw: {}", e.what());
      reply = api::response{};
      reply.content_type.clear();
    } catch (...) {
      reply = api::response{};
      reply.content_type.clear();
    }
    reply.status = status;
    return reply;
  }

  net::awaitable<void> reject(unsigned status, errc code, std::string_view detail, const api::request& partial) {
    api::response reply = error_response(status, code, detail, partial);
    const unsigned version = partial.version == 10 ? 10U : 11U;
    co_await write(std::move(reply), version, false, false);
  }

  net::awaitable<bool> write(api::response reply, unsigned version, bool keep_alive, bool is_head) {
    beast_http::response<beast_http::string_body> message;
    message.version(version == 10 ? 10 : 11);
    message.result(reply.status);
    const bool typed = !reply.content_type.empty() && is_settable_response_header("Content-Type", reply.content_type);
    if (typed) message.set(beast_http::field::content_type, reply.content_type);
    for (const auto& [name, value] : reply.headers) {
      if (typed && beast::iequals(name, "content-type")) continue;
      if (is_settable_response_header(name, value)) message.insert(name, value);
    }
    message.set("X-Content-Type-Options", "nosniff");
    message.keep_alive(keep_alive);
    if (reply.status != 204 && reply.status != 304) {
      message.content_length(reply.body.size());
      if (!is_head) message.body() = std::move(reply.body);
    }
    stream_.expires_after(state_->options.write_timeout);
    auto [ec, n] = co_await beast_http::async_write(stream_, message, use_tuple);
    if (ec) spdlog::debug("http: write to {} failed: {}", remote_address_, ec.message());
    co_return !ec;
  }

  net::awaitable<void> linger() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    stream_.expires_after(linger_timeout);
    std::array<char, 4096> sink{};
    for (std::size_t drained = 0; drained < linger_byte_limit;) {
      auto [read_ec, n] = co_await stream_.async_read_some(net::buffer(sink), use_tuple);
      if (read_ec) break;
      drained += n;
    }
  }

  void release_slot() {
    if (counted_) {
      counted_ = false;
      --state_->open_connections;
    }
  }

  std::shared_ptr<server_state> state_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<beast_http::request_parser<beast_http::string_body>> parser_;
  std::string remote_address_;
  std::uint64_t id_;
  [[maybe_unused]] std::size_t lane_;  // its I/O lane (no_lane: a strand), asserted in debug builds
  bool idle_{false};
  bool counted_{true};
};

void server_state::close_all_sessions() {
  std::vector<std::shared_ptr<session>> live;
  {
    std::lock_guard lock(registry_mutex);
    for (const auto& entry : registry)
      if (auto s = entry.second.lock()) live.push_back(std::move(s));
  }
  for (const auto& s : live) session::close(s);
}

void server_state::close_idle_sessions() {
  std::vector<std::shared_ptr<session>> live;
  {
    std::lock_guard lock(registry_mutex);
    for (const auto& entry : registry)
      if (auto s = entry.second.lock()) live.push_back(std::move(s));
  }
  for (const auto& s : live) session::close_if_idle(s);
}

void start_session(const std::shared_ptr<server_state>& state, tcp::socket socket, std::size_t lane) {
  std::shared_ptr<session> s;
  try {
    s = std::make_shared<session>(state, std::move(socket), state->next_session_id++, lane);
  } catch (const std::exception& e) {
    --state->open_connections;
    spdlog::error("http: cannot start a session: {}", e.what());
    return;
  }
  {
    std::lock_guard lock(state->registry_mutex);
    state->registry.emplace(s->id(), s);
  }
  const auto executor = s->executor();
  net::co_spawn(executor, session::run(std::move(s)), [](const std::exception_ptr& failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      spdlog::error("http: session ended by exception: {}", e.what());
    } catch (...) {
      spdlog::error("http: session ended by an unknown exception");
    }
  });
}

}  // namespace tenantd::http

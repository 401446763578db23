// The state of a db::connection and its socket waits, private to connection.cpp (kept apart so
// that the public calls read on their own).
#pragma once
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "db/connection.hpp"
#include "db/server_watch.hpp"
#include "db/with_deadline.hpp"

#include <spdlog/spdlog.h>

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace connection_detail {

// Asio waits on an edge-triggered epoll without a speculative check, so readiness reported
// while no wait is queued can be missed; the socket is polled again at least this often.
inline constexpr std::chrono::milliseconds recheck_interval{250};
// How often a wait for an answer asks its server watch whether to go on waiting.
inline constexpr std::chrono::milliseconds watched_recheck_interval{100};

inline std::string trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// libpq's notice receiver for every connection (connection.cpp): logs the notice and sets the
// connection's flag (`arg`) on a FATAL or PANIC one.
void receive_notice(void* arg, const PGresult* notice);

}  // namespace connection_detail

struct connection::impl {
  impl(const net::any_io_executor& executor, connection_options opts, PGconn* conn)
      : pg(conn),
        owner(conn, [flag = fatal_notice](PGconn* finished) { PQfinish(finished); }),
        socket(executor),
        options(std::move(opts)) {
    PQsetNoticeReceiver(conn, connection_detail::receive_notice, fatal_notice.get());
  }
  ~impl() { release_socket(); }  // then `owner` finishes the PGconn, unless a handshake step still holds it
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  PGconn* pg;
  // Set by receive_notice when the server sent a FATAL error while nothing was asked of it.
  // Shared with `owner`'s deleter, so it lives as long as the PGconn that may report to it.
  std::shared_ptr<std::atomic<bool>> fatal_notice{std::make_shared<std::atomic<bool>>(false)};
  // Shared with a connect step running on the handshake executor, so that the PGconn outlives
  // this state if the connecting coroutine is destroyed meanwhile (its io_context shut down).
  std::shared_ptr<PGconn> owner;
  net::posix::stream_descriptor socket;
  connection_options options;
  std::unordered_set<std::string> prepared;
  bool broken{false};
  // Owed by a transaction or advisory lock that ended without being closed (see the header).
  bool rollback_owed{false};
  std::vector<std::int64_t> unlocks_owed;
  statement_observer* observer{nullptr};

  // Tells the observer, and logs the statement if it ran longer than the slow-query threshold.
  void note_duration(clock_type::time_point started, std::string_view what) const {
    if (options.slow_query_threshold.count() <= 0 && observer == nullptr) return;
    const auto elapsed = clock_type::now() - started;
    if (observer != nullptr) observer->on_statement(std::chrono::duration_cast<std::chrono::microseconds>(elapsed));
    if (options.slow_query_threshold.count() <= 0) return;
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
    if (took < options.slow_query_threshold) return;
    constexpr std::size_t shown = 80;
    std::string text(what.substr(0, shown));
    std::replace_if(
        text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
    spdlog::warn("slow query: {} ms {} statement=\"{}{}\"", took.count(), options.label.empty() ? "-" : options.label,
                 text, what.size() > shown ? "..." : "");
  }

  void release_socket() noexcept {
    boost::system::error_code ignored;
    if (socket.is_open()) socket.close(ignored);
  }

  // Registers a duplicate of libpq's current socket with the reactor. libpq closes its own
  // descriptor by itself (a lost connection, the next address while connecting); had Asio
  // kept that number, deregistering it later could remove whichever socket reused the number
  // from epoll (found by ThreadSanitizer). The duplicate stays ours until release_socket.
  void bind_socket() {
    const int fd = PQsocket(pg);
    if (fd < 0)
      throw unavailable_error("database connection has no socket: " + connection_detail::trimmed(PQerrorMessage(pg)));
    release_socket();
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) throw unavailable_error("cannot duplicate the database socket: " + std::string(std::strerror(errno)));
    boost::system::error_code ec;
    socket.assign(own, ec);
    if (ec) {
      ::close(own);
      throw unavailable_error("cannot watch the database socket: " + ec.message());
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    broken = true;
    const auto detail = connection_detail::trimmed(PQerrorMessage(pg));
    throw unavailable_error(detail.empty() ? what : what + ": " + detail);
  }

  void check_usable() {
    if (broken || PQstatus(pg) != CONNECTION_OK) {
      broken = true;
      throw unavailable_error("database connection is broken");
    }
  }

  // Waits until the socket is ready for `type`; false when `deadline` passes first. A wait
  // for the server's answer (`answer`, on a connection with a server watch) tells the watch
  // how long it has waited and what arrived, and gives up (unavailable_error, the connection
  // broken) as soon as the watch says the server is down.
  net::awaitable<bool> wait_socket(net::posix::descriptor_base::wait_type type, clock_type::time_point deadline,
                                   bool answer = false) {
    const bool reading = type == net::posix::descriptor_base::wait_read;
    const auto events = static_cast<short>(reading ? POLLIN : POLLOUT);
    server_watch* watch = answer ? options.watch.get() : nullptr;
    const auto since = clock_type::now();
    for (;;) {
      pollfd ready{socket.native_handle(), events, 0};
      if (::poll(&ready, 1, 0) > 0) {
        if (watch != nullptr && reading) watch->heard();
        co_return true;
      }
      const auto now = clock_type::now();
      if (now >= deadline) co_return false;
      if (watch != nullptr) {
        watch->waiting(now - since, options.conninfo);
        if (watch->down()) {
          broken = true;
          throw unavailable_error(watch->down_message());
        }
      }
      const auto outcome = co_await detail::with_deadline(
          [&](auto handler) { socket.async_wait(type, std::move(handler)); },
          std::min(deadline, now + (watch != nullptr ? connection_detail::watched_recheck_interval
                                                     : connection_detail::recheck_interval)));
      if (!outcome.timed_out && outcome.ec) throw boost::system::system_error(outcome.ec);
      if (!outcome.timed_out) {
        if (watch != nullptr && reading) watch->heard();
        co_return true;
      }
    }
  }

  net::awaitable<void> flush(clock_type::time_point deadline) {
    for (;;) {
      const int pending = PQflush(pg);
      if (pending == 0) co_return;
      if (pending < 0) fail("sending to the database failed");
      if (!co_await wait_socket(net::posix::descriptor_base::wait_write, deadline, true)) fail_timeout();
      if (PQconsumeInput(pg) == 0) fail("reading from the database failed");
    }
  }

  [[noreturn]] void fail_timeout() {
    broken = true;
    throw unavailable_error("database call timed out after " + std::to_string(options.query_timeout.count()) + " ms");
  }

  // Reads every result of the statement just sent; throws the first error, returns the last result.
  net::awaitable<result_set> collect(clock_type::time_point deadline) {
    result_set last;
    std::optional<pg_error> error;
    for (;;) {
      while (PQisBusy(pg) != 0) {
        if (!co_await wait_socket(net::posix::descriptor_base::wait_read, deadline, true)) fail_timeout();
        if (PQconsumeInput(pg) == 0) fail("connection to the database lost");
      }
      PGresult* raw = PQgetResult(pg);
      if (raw == nullptr) break;
      result_set result(raw);
      switch (PQresultStatus(raw)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY: last = std::move(result); break;
        case PGRES_FATAL_ERROR:
        case PGRES_NONFATAL_ERROR:
        case PGRES_BAD_RESPONSE:
          if (!error) {
            const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            error.emplace(state != nullptr ? state : "", connection_detail::trimmed(PQresultErrorMessage(raw)));
          }
          break;
        default:
          if (!error)
            error.emplace("0A000", "unsupported result status " + std::string(PQresStatus(PQresultStatus(raw))));
          break;
      }
    }
    if (PQstatus(pg) != CONNECTION_OK) {
      broken = true;
      throw unavailable_error("connection to the database lost" + (error ? ": " + std::string(error->what()) : ""));
    }
    if (error && means_unavailable(error->sqlstate())) {
      broken = true;  // unavailable_error promises a connection to discard; a fresh one is cheap
      throw unavailable_error("database unavailable [" + error->sqlstate() + "]: " + error->what());
    }
    if (error) throw *error;
    co_return last;
  }

  // Sends with `send` (a PQsend* call), flushes and collects under one deadline. Any exit
  // other than a complete exchange leaves the protocol state unknown, so it breaks the connection.
  template <class Send>
  net::awaitable<result_set> run(Send send) {
    check_usable();
    const auto deadline = clock_type::now() + options.query_timeout;
    bool complete = false;
    struct break_unless_complete {
      impl& owner;
      const bool& done;
      ~break_unless_complete() {
        if (!done) owner.broken = true;
      }
    } guard{*this, complete};
    if (send() == 0) fail("sending to the database failed");
    co_await flush(deadline);
    try {
      auto result = co_await collect(deadline);
      complete = true;
      co_return result;
    } catch (const pg_error&) {
      complete = true;
      throw;
    }
  }
};

}  // namespace tenantd::db

// Asynchronous libpq connection: non-blocking libpq with its socket waited on through Asio,
// every call bounded by a client-side deadline.
#include "db/connection.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "db/server_watch.hpp"
#include "db/with_deadline.hpp"
#include "domain/thread_priority.hpp"

#include <spdlog/spdlog.h>

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

// Asio waits on an edge-triggered epoll without a speculative check, so readiness reported
// while no wait is queued can be missed; the socket is polled again at least this often.
constexpr std::chrono::milliseconds recheck_interval{250};
// How often a wait for an answer asks its server watch whether to go on waiting.
constexpr std::chrono::milliseconds watched_recheck_interval{100};

std::string trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// NUL-terminated copies of text parameters, as libpq reads them with strlen.
struct param_buffer {
  std::vector<std::string> storage;
  std::vector<const char*> values;

  explicit param_buffer(std::span<const param> params) {
    if (params.size() > 65535) throw std::invalid_argument("too many query parameters");
    storage.reserve(params.size());
    values.reserve(params.size());
    for (const auto& p : params) {
      if (p) {
        storage.emplace_back(*p);
        values.push_back(storage.back().c_str());
      } else {
        values.push_back(nullptr);
      }
    }
  }
  int count() const noexcept { return static_cast<int>(values.size()); }
};

// Server notices, and errors that arrive while the connection is idle, go to the log, not to
// stderr. An idle connection's error is the backend saying why it is about to close (FATAL:
// "terminating connection due to administrator command", a shutdown): `arg` is the
// connection's flag, set so that it is discarded before anyone is handed it, even if the
// socket's close has not arrived yet (it follows the message).
void receive_notice(void* arg, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string_view level = severity != nullptr ? severity : "";
  if (level == "FATAL" || level == "PANIC") static_cast<std::atomic<bool>*>(arg)->store(true);
  spdlog::debug("postgres: {}", trimmed(PQresultErrorMessage(notice)));
}

// A connect step on a handshake thread. `pg` is held by value: the PGconn stays alive until
// the step is over even if the connecting coroutine is destroyed meanwhile.
net::awaitable<PostgresPollingStatusType> poll_on_handshake_thread(std::shared_ptr<PGconn> pg) {
  lower_this_threads_priority();
  co_return PQconnectPoll(pg.get());
}

// One step of the connect state machine: on the handshake executor when there is one (the
// coroutine resumes on its own executor afterwards), else right here. (A named function, not
// a capturing lambda, is spawned: GCC 12 destroyed a capturing lambda temporary inside a
// co_await one time too many, freeing the shared PGconn early: AddressSanitizer, use after free.)
net::awaitable<PostgresPollingStatusType> connect_step(const std::shared_ptr<PGconn>& pg,
                                                       const std::optional<net::any_io_executor>& handshake) {
  if (!handshake) co_return PQconnectPoll(pg.get());
  auto step = poll_on_handshake_thread(pg);
  co_return co_await net::co_spawn(*handshake, std::move(step), net::use_awaitable);
}

}  // namespace

// SQLSTATE classes that say the database cannot serve right now rather than that the
// statement is wrong: 08 connection exception, 53 insufficient resources (disk full, out of
// memory, too many connections), 57 operator intervention (statement timeout or cancel,
// shutdown, crash, starting up, database dropped), 58 system error (I/O). They become
// unavailable_error (503 with Retry-After), never a 500.
bool means_unavailable(std::string_view sqlstate) noexcept {
  const auto cls = sqlstate.substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58";
}

struct connection::impl {
  impl(net::any_io_executor executor, connection_options opts, PGconn* conn)
      : pg(conn),
        owner(conn, [flag = fatal_notice](PGconn* finished) { PQfinish(finished); }),
        socket(std::move(executor)),
        options(std::move(opts)) {
    PQsetNoticeReceiver(conn, receive_notice, fatal_notice.get());
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
    if (fd < 0) throw unavailable_error("database connection has no socket: " + trimmed(PQerrorMessage(pg)));
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
    const auto detail = trimmed(PQerrorMessage(pg));
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
          std::min(deadline, now + (watch != nullptr ? watched_recheck_interval : recheck_interval)));
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
            error.emplace(state != nullptr ? state : "", trimmed(PQresultErrorMessage(raw)));
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

connection::connection(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

connection::~connection() = default;

net::awaitable<std::unique_ptr<connection>> connection::connect(net::any_io_executor executor,
                                                                connection_options options) {
  PGconn* raw = PQconnectStart(options.conninfo.c_str());
  if (raw == nullptr) throw unavailable_error("cannot allocate a database connection");
  const auto deadline = clock_type::now() + options.connect_timeout;
  const auto connect_timeout = options.connect_timeout;
  auto state = std::make_unique<impl>(std::move(executor), std::move(options), raw);
  if (PQstatus(raw) == CONNECTION_BAD) state->fail("cannot connect to the database");

  auto polling = PGRES_POLLING_WRITING;
  while (polling != PGRES_POLLING_OK) {
    if (polling == PGRES_POLLING_FAILED) state->fail("cannot connect to the database");
    state->bind_socket();
    const auto type = polling == PGRES_POLLING_READING ? net::posix::descriptor_base::wait_read
                                                       : net::posix::descriptor_base::wait_write;
    if (!co_await state->wait_socket(type, deadline, true)) {
      state->broken = true;
      throw unavailable_error("connecting to the database timed out after " + std::to_string(connect_timeout.count()) +
                              " ms");
    }
    polling = co_await connect_step(state->owner, state->options.handshake_executor);
  }
  state->bind_socket();
  if (PQsetnonblocking(raw, 1) != 0) state->fail("cannot make the database connection non-blocking");
  co_return std::unique_ptr<connection>(new connection(std::move(state)));
}

net::awaitable<ping_result> connection::ping(net::any_io_executor executor, std::string conninfo,
                                             std::chrono::milliseconds timeout) {
  PGconn* raw = PQconnectStart(conninfo.c_str());
  if (raw == nullptr) throw unavailable_error("cannot allocate a database connection");
  const auto deadline = clock_type::now() + timeout;
  connection_options options;
  options.conninfo = std::move(conninfo);
  impl state(std::move(executor), std::move(options), raw);
  if (PQstatus(raw) == CONNECTION_BAD) co_return ping_result::refused;
  // libpq sends the startup packet (or the TLS request) as soon as TCP connects and then reads:
  // any byte readable from then on was sent by a server process, which is all a ping asks.
  auto polling = PGRES_POLLING_WRITING;
  for (;;) {
    if (polling == PGRES_POLLING_FAILED) co_return ping_result::refused;
    if (polling == PGRES_POLLING_OK) co_return ping_result::answered;
    state.bind_socket();
    const bool reading = polling == PGRES_POLLING_READING;
    if (!co_await state.wait_socket(
            reading ? net::posix::descriptor_base::wait_read : net::posix::descriptor_base::wait_write, deadline))
      co_return ping_result::timed_out;
    if (reading) co_return ping_result::answered;
    polling = PQconnectPoll(raw);
  }
}

net::awaitable<result_set> connection::exec_prepared(const statement& stmt, std::span<const param> params) {
  if (cleanup_pending()) co_await run_deferred_cleanup();
  auto& s = *impl_;
  const std::string name(stmt.name);
  param_buffer buffer(params);
  if (!s.prepared.contains(name)) {
    const std::string sql(stmt.sql);
    co_await s.run([&] { return PQsendPrepare(s.pg, name.c_str(), sql.c_str(), buffer.count(), nullptr); });
    s.prepared.insert(name);
  }
  const auto started = clock_type::now();
  const auto send = [&] {
    return PQsendQueryPrepared(s.pg, name.c_str(), buffer.count(), buffer.values.data(), nullptr, nullptr, 0);
  };
  auto result = co_await s.run(send);
  s.note_duration(started, name);
  co_return result;
}

net::awaitable<result_set> connection::exec_params(std::string_view sql, std::span<const param> params) {
  if (cleanup_pending()) co_await run_deferred_cleanup();
  auto& s = *impl_;
  const std::string text(sql);
  param_buffer buffer(params);
  const auto started = clock_type::now();
  const auto send = [&] {
    return PQsendQueryParams(s.pg, text.c_str(), buffer.count(), nullptr, buffer.values.data(), nullptr, nullptr, 0);
  };
  auto result = co_await s.run(send);
  s.note_duration(started, text);
  co_return result;
}

net::awaitable<result_set> connection::exec(std::string_view sql) {
  if (cleanup_pending()) co_await run_deferred_cleanup();
  auto& s = *impl_;
  const std::string text(sql);
  const auto started = clock_type::now();
  const auto send = [&] { return PQsendQuery(s.pg, text.c_str()); };
  auto result = co_await s.run(send);
  s.note_duration(started, text);
  co_return result;
}

net::awaitable<std::vector<notification>> connection::wait_notifications(std::chrono::milliseconds timeout) {
  if (cleanup_pending()) co_await run_deferred_cleanup();
  auto& s = *impl_;
  s.check_usable();
  const auto deadline = clock_type::now() + timeout;
  std::vector<notification> arrived;
  for (;;) {
    if (PQconsumeInput(s.pg) == 0) s.fail("connection to the database lost");
    while (PGnotify* raw = PQnotifies(s.pg)) {
      arrived.push_back({raw->relname, raw->extra});
      PQfreemem(raw);
    }
    if (!arrived.empty()) co_return arrived;
    bool ready = false;
    try {
      ready = co_await s.wait_socket(net::posix::descriptor_base::wait_read, deadline);
    } catch (...) {
      s.broken = true;
      throw;
    }
    if (!ready) co_return arrived;
  }
}

bool connection::consume_input() noexcept {
  auto& s = *impl_;
  if (s.broken || PQstatus(s.pg) != CONNECTION_OK) return !broken();
  for (int round = 0; round < 4; ++round) {
    pollfd ready{PQsocket(s.pg), POLLIN, 0};
    if (::poll(&ready, 1, 0) <= 0) break;
    if (PQconsumeInput(s.pg) == 0) {
      s.broken = true;
      break;
    }
  }
  // Parses what arrived: an idle connection's FATAL error reaches receive_notice here, before
  // the socket's close may have arrived.
  if (!s.broken) (void)PQisBusy(s.pg);
  if (s.fatal_notice->load()) s.broken = true;
  return !broken();
}

bool connection::broken() const noexcept { return impl_->broken || PQstatus(impl_->pg) != CONNECTION_OK; }

bool connection::idle_in_no_transaction() const noexcept { return PQtransactionStatus(impl_->pg) == PQTRANS_IDLE; }

void connection::defer_rollback() noexcept { impl_->rollback_owed = true; }

void connection::defer_unlock(std::int64_t key) noexcept {
  try {
    impl_->unlocks_owed.push_back(key);
  } catch (...) {  // no memory to remember it: never reuse a connection that may hold the lock
    impl_->broken = true;
  }
}

bool connection::cleanup_pending() const noexcept { return impl_->rollback_owed || !impl_->unlocks_owed.empty(); }

net::awaitable<void> connection::run_deferred_cleanup() {
  auto& s = *impl_;
  // Taken off first: the statements below run through exec, which would come back here.
  const bool rollback = std::exchange(s.rollback_owed, false);
  const auto unlocks = std::exchange(s.unlocks_owed, {});
  try {
    if (rollback && !idle_in_no_transaction()) co_await exec("ROLLBACK");
    for (const auto key : unlocks) {
      const auto text = std::to_string(key);
      const std::array<param, 1> p{param(text)};
      co_await exec_params("SELECT pg_advisory_unlock($1::bigint)", p);
    }
  } catch (...) {
    s.broken = true;
    throw;
  }
}

std::string connection::escape_identifier(std::string_view identifier) const {
  char* quoted = PQescapeIdentifier(impl_->pg, identifier.data(), identifier.size());
  if (quoted == nullptr) throw std::invalid_argument("cannot quote identifier: " + trimmed(PQerrorMessage(impl_->pg)));
  std::string result(quoted);
  PQfreemem(quoted);
  return result;
}

PGconn* connection::native_handle() const noexcept { return impl_->pg; }

net::awaitable<bool> connection::wait_socket(bool for_write, clock_type::time_point deadline) {
  co_return co_await impl_->wait_socket(
      for_write ? net::posix::descriptor_base::wait_write : net::posix::descriptor_base::wait_read, deadline, true);
}

bool connection::is_prepared(std::string_view name) const { return impl_->prepared.contains(std::string(name)); }

void connection::set_prepared(std::string_view name, bool prepared) {
  if (prepared)
    impl_->prepared.emplace(name);
  else
    impl_->prepared.erase(std::string(name));
}

void connection::mark_broken() noexcept { impl_->broken = true; }

void connection::rebind(net::any_io_executor executor) {
  impl_->release_socket();
  impl_->socket = net::posix::stream_descriptor(std::move(executor));
  impl_->bind_socket();
}

const connection_options& connection::options() const noexcept { return impl_->options; }

void connection::observe_statements(statement_observer* observer) noexcept { impl_->observer = observer; }

int connection::backend_pid() const noexcept { return PQbackendPID(impl_->pg); }

int connection::server_version() const noexcept { return PQserverVersion(impl_->pg); }

}  // namespace tenantd::db

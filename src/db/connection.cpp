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

#include "db/connection_impl.hpp"
#include "domain/thread_priority.hpp"

#include <spdlog/spdlog.h>

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

using connection_detail::trimmed;

namespace {

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

// Server notices, and errors that arrive while the connection is idle, go to the log, not to
// stderr. An idle connection's error is the backend saying why it is about to close (FATAL:
// "terminating connection due to administrator command", a shutdown): `arg` is the
// connection's flag, set so that it is discarded before anyone is handed it, even if the
// socket's close has not arrived yet (it follows the message).
void connection_detail::receive_notice(void* arg, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string_view level = severity != nullptr ? severity : "";
  if (level == "FATAL" || level == "PANIC") static_cast<std::atomic<bool>*>(arg)->store(true);
  spdlog::debug("postgres: {}", trimmed(PQresultErrorMessage(notice)));
}

// SQLSTATE classes that say the database cannot serve right now rather than that the
// statement is wrong: 08 connection exception, 53 insufficient resources (disk full, out of
// memory, too many connections), 57 operator intervention (statement timeout or cancel,
// shutdown, crash, starting up, database dropped), 58 system error (I/O). They become
// unavailable_error (503 with Retry-After), never a 500.
bool means_unavailable(std::string_view sqlstate) noexcept {
  const auto cls = sqlstate.substr(0, 2);
  return cls == "08" || cls == "53" || cls == "57" || cls == "58";
}

connection::connection(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

connection::~connection() = default;

net::awaitable<std::unique_ptr<connection>> connection::connect(net::any_io_executor executor,
                                                                connection_options options) {
  PGconn* raw = PQconnectStart(options.conninfo.c_str());
  if (raw == nullptr) throw unavailable_error("cannot allocate a database connection");
  const auto deadline = clock_type::now() + options.connect_timeout;
  const auto connect_timeout = options.connect_timeout;
  auto state = std::make_unique<impl>(executor, std::move(options), raw);
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
  impl state(executor, std::move(options), raw);
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

// One asynchronous libpq connection whose socket is driven by Asio: no call blocks an I/O
// thread. Used by one coroutine at a time (the pool hands it out exclusively).
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "db/result_set.hpp"

typedef struct pg_conn PGconn;

namespace tenantd::db {

class server_watch;

// The server rejected a statement (constraint violation, syntax, ...). The connection is
// still usable unless broken() says otherwise. what() holds the server's message: log it,
// never send it to a client.
class pg_error : public std::runtime_error {
 public:
  pg_error(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  bool is_unique_violation() const noexcept { return sqlstate_ == "23505"; }

 private:
  std::string sqlstate_;
};

// The database could not be reached, the connection broke, a deadline passed, or the server
// answered a statement with an SQLSTATE of class 08, 53, 57 or 58 (statement timeout,
// shutting down, starting up, too many connections, disk full, I/O error).
// Maps to 503. The connection that threw it is broken() and must be discarded.
class unavailable_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True for SQLSTATE classes that say the database cannot serve right now rather than that the
// statement is wrong (08, 53, 57, 58): such errors become unavailable_error.
bool means_unavailable(std::string_view sqlstate) noexcept;

// A statement with a stable name; prepared once per connection on first use.
// Declare them as `inline constexpr statement find_user{"find_user", "SELECT ..."};`
struct statement {
  std::string_view name;
  std::string_view sql;
};

// A text-format parameter: std::nullopt is SQL NULL.
using param = std::optional<std::string_view>;

struct notification {
  std::string channel;
  std::string payload;
};

struct connection_options {
  std::string conninfo;  // libpq keyword/value string or URI
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds query_timeout{10000};  // client-side deadline per call
  // Statements slower than this are logged (warn) with `label` and the statement name or
  // first characters of its SQL, never its parameters. 0 turns it off.
  std::chrono::milliseconds slow_query_threshold{0};
  std::string label{};  // e.g. "master" or "tenant=acme database=tenant_acme"
  // Where libpq's connect steps run (PQconnectPoll). Its client side of SCRAM is PBKDF2, ~10 ms
  // of CPU per connection: on threads of their own (at a lower priority), a storm of new
  // connections does not take the I/O threads' CPU from requests that already have one. The
  // socket waits stay on the connection's executor. Unset: on the connection's executor.
  // Whoever owns these threads must join them before the connection's io_context is destroyed.
  std::optional<boost::asio::any_io_executor> handshake_executor{};
  // The liveness of this connection's server, shared by its connections (db/server_watch.hpp):
  // waits for an answer report to it and give up when it says the server is down. Unset:
  // only the deadlines bound a wait.
  std::shared_ptr<server_watch> watch{};
};

class pipeline;

// What a probe of a server got: a first byte from it (it answers, whatever it said), a
// refusal without one (nothing listens there), or nothing before its deadline.
enum class ping_result { answered, refused, timed_out };

// Told how long each statement that got its answer took (exec, exec_params, exec_prepared;
// not the ones that threw): usage accounting per tenant (tenancy/tenant_databases.hpp).
class statement_observer {
 public:
  virtual ~statement_observer() = default;
  virtual void on_statement(std::chrono::microseconds took) noexcept = 0;
};

// Something that runs one named statement as its own unit of work: a connection held
// exclusively, or a pool (which may send it through its shared pipelined connection).
// Repositories whose statements need no transaction take this.
class statement_runner {
 public:
  virtual ~statement_runner() = default;
  // Throws pg_error for statement errors, unavailable_error for connection problems.
  virtual boost::asio::awaitable<result_set> exec_prepared(const statement& stmt, std::span<const param> params) = 0;
};

class connection : public statement_runner {
 public:
  // Connects without blocking (PQconnectStart/PQconnectPoll). Throws unavailable_error
  // on failure or when options.connect_timeout passes.
  static boost::asio::awaitable<std::unique_ptr<connection>> connect(boost::asio::any_io_executor executor,
                                                                     connection_options options);
  // Opens a connection with `conninfo` only until the server sends its first byte (no
  // authentication is attempted), then closes it: whether a server answers at all.
  static boost::asio::awaitable<ping_result> ping(boost::asio::any_io_executor executor, std::string conninfo,
                                                  std::chrono::milliseconds timeout);
  ~connection() override;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Runs a named statement, preparing it on this connection the first time it is used.
  // Throws pg_error for statement errors, unavailable_error for connection problems.
  boost::asio::awaitable<result_set> exec_prepared(const statement& stmt, std::span<const param> params) override;

  // Runs one statement with parameters, not prepared (PQsendQueryParams).
  boost::asio::awaitable<result_set> exec_params(std::string_view sql, std::span<const param> params);

  // Runs SQL without parameters; may hold several statements (PQsendQuery). Returns the last result.
  boost::asio::awaitable<result_set> exec(std::string_view sql);

  // Waits until at least one notification (LISTEN) arrives or `timeout` passes; returns
  // what arrived (possibly nothing). Throws unavailable_error if the connection breaks.
  boost::asio::awaitable<std::vector<notification>> wait_notifications(std::chrono::milliseconds timeout);

  // True once the connection failed in a way that makes it unusable.
  bool broken() const noexcept;
  // Between calls: reads whatever the server sent without blocking (PQconsumeInput), so a
  // backend that died while the connection sat idle is noticed. Returns !broken().
  bool consume_input() noexcept;
  // True when no transaction is open or failed (PQtransactionStatus == PQTRANS_IDLE).
  bool idle_in_no_transaction() const noexcept;

  // Cleanup owed by a db::transaction or db::advisory_lock destroyed before it was ended (a
  // destructor cannot await): a ROLLBACK, and pg_advisory_unlock for each key, in that order.
  // It runs before the next statement on this connection, and db::pool runs it before the
  // connection is reused, so a connection never serves anyone inside a stale transaction or
  // holding a stale lock.
  void defer_rollback() noexcept;
  void defer_unlock(std::int64_t key) noexcept;
  bool cleanup_pending() const noexcept;
  // Runs the owed cleanup now (nothing if none). On failure the connection is marked broken,
  // so a pool discards it, and the error is rethrown.
  boost::asio::awaitable<void> run_deferred_cleanup();
  // Identifier quoting with PQescapeIdentifier (second layer after allowlists).
  std::string escape_identifier(std::string_view identifier) const;
  // Reports every statement to `observer` until it is replaced or cleared (nullptr). Not
  // owned: the holder of the connection sets it and clears it before giving it back.
  void observe_statements(statement_observer* observer) noexcept;
  // Backend process id (for tests and logs).
  int backend_pid() const noexcept;
  // Server version as PQserverVersion reports it.
  int server_version() const noexcept;

 private:
  friend class pipeline;  // drives this connection in pipeline mode (db/pipeline.hpp)
  struct impl;
  explicit connection(std::unique_ptr<impl> state);
  // For pipeline: the libpq handle, the socket wait (false when `deadline` passed first;
  // throws on a socket error), prepared-statement bookkeeping, and marking the connection broken.
  PGconn* native_handle() const noexcept;
  boost::asio::awaitable<bool> wait_socket(bool for_write, std::chrono::steady_clock::time_point deadline);
  bool is_prepared(std::string_view name) const;
  void set_prepared(std::string_view name, bool prepared);
  void mark_broken() noexcept;
  const connection_options& options() const noexcept;
  // Moves the socket's waits to `executor`'s io_context (a pipeline driven on an I/O lane).
  // Nothing may be waiting on the socket.
  void rebind(boost::asio::any_io_executor executor);
  std::unique_ptr<impl> impl_;
};

}  // namespace tenantd::db

// libpq pipeline mode on one connection: callers queue statements under a mutex; the strand
// sends them (each followed by PQpipelineSync), reads results in order and completes each
// caller through a thread-safe channel.
#include "db/pipeline.hpp"

#include <algorithm>
#include <cassert>
#include <libpq-fe.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/container/small_vector.hpp>
#include <string>
#include <vector>

#include "db/with_deadline.hpp"

namespace tenantd::db {
namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

std::string trimmed_message(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// A caller waits a little longer than the connection's deadline: the strand fails it by then.
constexpr std::chrono::seconds caller_margin{2};

// A statement's own failure, as the server reported it.
struct statement_failure {
  statement_failure(std::string state, std::string text) : sqlstate(std::move(state)), message(std::move(text)) {}
  std::string sqlstate;
  std::string message;
};

}  // namespace

struct pipeline::entry {
  explicit entry(const net::any_io_executor& executor) : done(executor, 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> done;
  std::string name;
  std::string sql;
  // The parameters' copies, each NUL-terminated, in one buffer; `values` points into it (or is
  // null for SQL NULL). One allocation at most for the parameters of a statement.
  std::string param_text;
  boost::container::small_vector<const char*, 4> values;
  bool prepare_only{false};  // the pipeline's own PQsendPrepare, no caller
  bool unsent{false};        // failed before it was sent: safe to run elsewhere
  // The prepare this statement relies on, while it is in flight: if it fails (a lock held
  // against the table until the statement timeout), the statement fails the same way, not
  // with "prepared statement does not exist".
  std::shared_ptr<entry> prepared_by;
  clock_type::time_point deadline;
  // Filled on the strand; read by the caller once `done` is signalled. Failures are kept as
  // plain strings and the caller throws its own exception from them: an exception object (or
  // the reference-counted message inside std::runtime_error) shared between the strand and the
  // caller's thread would be released on either thread through libstdc++'s own atomics, which
  // ThreadSanitizer cannot see.
  result_set last;
  std::optional<statement_failure> failure;
  std::optional<std::string> unavailable;  // the message of the unavailable_error the caller throws
};

pipeline::pipeline(net::any_io_executor executor, std::unique_ptr<connection> conn, std::size_t max_depth,
                   std::size_t lane)
    : strand_(lane == no_lane ? net::any_io_executor(net::make_strand(std::move(executor))) : std::move(executor)),
      conn_(std::move(conn)),
      max_depth_(max_depth),
      lane_(lane),
      backend_pid_(conn_->backend_pid()),
      last_used_(clock_type::now()) {}

pipeline::~pipeline() = default;

void pipeline::assert_on_lane() const noexcept { assert(lane_ == no_lane || this_threads_lane() == lane_); }

std::shared_ptr<pipeline> pipeline::create(net::any_io_executor executor, std::unique_ptr<connection> conn,
                                           std::size_t max_depth, std::size_t lane) {
  if (conn->broken() || !conn->idle_in_no_transaction())
    throw unavailable_error("database connection cannot enter pipeline mode: it is broken or in a transaction");
  conn->rebind(executor);  // its socket waits run where the pipeline is driven
  if (PQenterPipelineMode(conn->native_handle()) != 1) {
    conn->mark_broken();
    throw unavailable_error("database connection cannot enter pipeline mode");
  }
  return std::shared_ptr<pipeline>(
      new pipeline(std::move(executor), std::move(conn), std::max<std::size_t>(1, max_depth), lane));
}

std::chrono::steady_clock::time_point pipeline::last_used() const {
  std::lock_guard lock(mutex_);
  return last_used_;
}

net::awaitable<std::optional<result_set>> pipeline::try_exec_prepared(const statement& stmt,
                                                                      std::span<const param> params,
                                                                      bool beyond_depth) {
  if (params.size() > 65535) throw std::invalid_argument("too many query parameters");
  auto current = in_flight_.load();
  do {
    if (broken_.load() || (current >= max_depth_ && !beyond_depth)) co_return std::nullopt;
  } while (!in_flight_.compare_exchange_weak(current, current + 1));

  auto e = std::make_shared<entry>(co_await net::this_coro::executor);
  e->name = stmt.name;
  e->sql = stmt.sql;
  std::size_t text_size = 0;
  for (const auto& p : params) text_size += p ? p->size() + 1 : 0;
  e->param_text.reserve(text_size);  // never grows below: the pointers taken stay valid
  e->values.reserve(params.size());
  for (const auto& p : params) {
    if (!p) {
      e->values.push_back(nullptr);
      continue;
    }
    const auto at = e->param_text.size();
    e->param_text.append(*p);
    e->param_text.push_back('\0');
    e->values.push_back(e->param_text.data() + at);
  }
  const auto wait_until = clock_type::now() + conn_->options().query_timeout + caller_margin;
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(e);
    if (!send_scheduled_) {
      send_scheduled_ = true;
      net::post(strand_, [self = shared_from_this()] { self->send_pending(); });
    }
  }
  const auto outcome =
      co_await detail::with_deadline([&](auto handler) { e->done.async_receive(std::move(handler)); }, wait_until);
  if (outcome.timed_out) {  // the strand did not answer in time: give the connection up
    net::post(strand_, [self = shared_from_this()] { self->break_connection("the pipeline stopped answering"); });
    throw unavailable_error("database call timed out after " + std::to_string(conn_->options().query_timeout.count()) +
                            " ms");
  }
  if (e->unsent) co_return std::nullopt;  // never reached the server: the pool runs it elsewhere
  if (e->unavailable) throw unavailable_error(*e->unavailable);
  if (e->failure) throw pg_error(e->failure->sqlstate, e->failure->message);
  co_return std::move(e->last);
}

void pipeline::send_pending() {
  // An entry never sent goes back to its caller, who runs the statement elsewhere.
  const auto give_back = [this](entry& e) {
    e.unsent = true;
    complete(e);
  };
  const auto give_back_from = [&](std::size_t first) {
    for (std::size_t i = first; i < sending_.size(); ++i) give_back(*sending_[i]);
    sending_.clear();
  };
  assert_on_lane();
  {  // swapped with the emptied batch of the last time: no allocation once both have grown
    std::lock_guard lock(mutex_);
    sending_.swap(pending_);
    send_scheduled_ = false;
  }
  PGconn* pg = conn_->native_handle();
  // An idle connection may have died meanwhile (backend terminated, server restarted): look
  // before sending, so that the batch can still go elsewhere rather than fail.
  if (sent_.empty() && !broken_.load() && !conn_->consume_input()) {
    give_back_from(0);
    break_connection("connection to the database lost while idle");
    return;
  }
  for (std::size_t i = 0; i < sending_.size(); ++i) {
    auto& e = sending_[i];
    if (broken_.load()) {
      give_back(*e);
      continue;
    }
    e->deadline = clock_type::now() + conn_->options().query_timeout;
    // The latest prepare of this statement still in flight, if any.
    const auto prepared = std::find_if(sent_.rbegin(), sent_.rend(), [&](const std::shared_ptr<entry>& sent) {
      return sent->prepare_only && sent->name == e->name;
    });
    if (prepared != sent_.rend()) e->prepared_by = *prepared;
    if (!conn_->is_prepared(e->name)) {
      auto prepare = std::make_shared<entry>(strand_);
      prepare->prepare_only = true;
      prepare->name = e->name;
      prepare->deadline = e->deadline;
      if (PQsendPrepare(pg, e->name.c_str(), e->sql.c_str(), static_cast<int>(e->values.size()), nullptr) != 1 ||
          PQpipelineSync(pg) != 1) {
        sent_.push_back(std::move(e));
        give_back_from(i + 1);  // the rest of the batch was never sent
        break_connection("sending to the database failed: " + trimmed_message(PQerrorMessage(pg)));
        return;
      }
      conn_->set_prepared(e->name, true);
      e->prepared_by = prepare;
      sent_.push_back(std::move(prepare));
    }
    if (PQsendQueryPrepared(pg, e->name.c_str(), static_cast<int>(e->values.size()), e->values.data(), nullptr, nullptr,
                            0) != 1 ||
        PQpipelineSync(pg) != 1) {
      sent_.push_back(std::move(e));
      give_back_from(i + 1);
      break_connection("sending to the database failed: " + trimmed_message(PQerrorMessage(pg)));
      return;
    }
    sent_.push_back(std::move(e));
  }
  sending_.clear();
  const int flushed = PQflush(pg);
  if (flushed < 0) {
    break_connection("sending to the database failed: " + trimmed_message(PQerrorMessage(pg)));
    return;
  }
  flush_pending_ = flushed == 1;
  if (!reading_ && !sent_.empty()) {
    reading_ = true;
    net::co_spawn(strand_, read_results(shared_from_this()), net::detached);
  }
}

// Reads until every statement sent has its result. Before each wait it asks libpq whether it
// can already proceed (PQflush, PQconsumeInput, PQisBusy): data that arrived before the wait
// was armed would otherwise be noticed only by the next recheck.
net::awaitable<void> pipeline::read_results(std::shared_ptr<pipeline> self) {
  (void)self;  // keeps the pipeline alive while it reads
  PGconn* pg = conn_->native_handle();
  for (;;) {
    assert_on_lane();
    if (sent_.empty() || broken_.load()) {
      reading_ = false;
      co_return;
    }
    if (flush_pending_) {
      const int flushed = PQflush(pg);
      if (flushed < 0) {
        break_connection("sending to the database failed: " + trimmed_message(PQerrorMessage(pg)));
        continue;
      }
      flush_pending_ = flushed == 1;
    }
    if (PQconsumeInput(pg) == 0) {
      break_connection("connection to the database lost: " + trimmed_message(PQerrorMessage(pg)));
      continue;
    }
    take_results();
    if (PQstatus(pg) != CONNECTION_OK) {
      break_connection("connection to the database lost: " + trimmed_message(PQerrorMessage(pg)));
      continue;
    }
    if (sent_.empty() || broken_.load()) continue;
    bool ready = false;
    try {
      ready = co_await conn_->wait_socket(flush_pending_, sent_.front()->deadline);
    } catch (const std::exception& e) {
      break_connection(std::string("waiting on the database socket failed: ") + e.what());
      continue;
    }
    if (!ready)
      break_connection("database call timed out after " + std::to_string(conn_->options().query_timeout.count()) +
                       " ms");
  }
}

// Takes every result libpq can give without blocking. In pipeline mode one statement's
// results end with a null result, and its sync point with PGRES_PIPELINE_SYNC, which
// completes the oldest entry.
void pipeline::take_results() {
  PGconn* pg = conn_->native_handle();
  int nulls = 0;
  while (!sent_.empty() && PQisBusy(pg) == 0) {
    PGresult* raw = PQgetResult(pg);
    if (raw == nullptr) {
      if (++nulls > 1) return;  // nothing more until more input arrives
      continue;
    }
    nulls = 0;
    auto& front = *sent_.front();
    result_set result(raw);
    switch (PQresultStatus(raw)) {
      case PGRES_PIPELINE_SYNC: {
        auto done = std::move(sent_.front());
        sent_.pop_front();
        complete(*done);
        break;
      }
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY: front.last = std::move(result); break;
      case PGRES_FATAL_ERROR:
      case PGRES_NONFATAL_ERROR:
      case PGRES_BAD_RESPONSE:
        if (!front.failure) {
          const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
          front.failure.emplace(state != nullptr ? state : "", trimmed_message(PQresultErrorMessage(raw)));
        }
        break;
      case PGRES_PIPELINE_ABORTED:
        if (!front.failure) front.failure.emplace("25P02", "statement skipped: an earlier one in its pipeline failed");
        break;
      default:
        if (!front.failure)
          front.failure.emplace("0A000", "unsupported result status " + std::string(PQresStatus(PQresultStatus(raw))));
        break;
    }
  }
}

// Hands an entry its outcome (on the strand) and wakes its caller.
void pipeline::complete(entry& e) {
  if (e.prepare_only) {
    if (e.failure) conn_->set_prepared(e.name, false);  // the statement after it fails; the next one prepares again
    return;
  }
  if (e.prepared_by && e.prepared_by->failure) e.failure = e.prepared_by->failure;
  e.prepared_by.reset();
  if (!e.unavailable && e.failure && means_unavailable(e.failure->sqlstate))
    e.unavailable = "database unavailable [" + e.failure->sqlstate + "]: " + e.failure->message;
  {
    std::lock_guard lock(mutex_);
    last_used_ = clock_type::now();
  }
  in_flight_.fetch_sub(1);
  (void)e.done.try_send(boost::system::error_code{});
}

// The connection is unusable: every statement sent fails with unavailable_error (it may or
// may not have run); those still queued were never sent and go back to their callers.
void pipeline::break_connection(const std::string& why) {
  broken_.store(true);
  conn_->mark_broken();
  std::deque<std::shared_ptr<entry>> failed;
  failed.swap(sent_);
  std::vector<std::shared_ptr<entry>> queued;
  {
    std::lock_guard lock(mutex_);
    queued.swap(pending_);
  }
  for (auto& e : failed) {
    if (e->prepare_only) continue;
    e->unavailable = why;
    complete(*e);
  }
  for (auto& e : queued) {  // never sent: their callers run them elsewhere
    e->unsent = true;
    complete(*e);
  }
}

void pipeline::close() {
  broken_.store(true);
  net::post(strand_, [self = shared_from_this()] { self->break_connection("database pipeline closed"); });
}

}  // namespace tenantd::db

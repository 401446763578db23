// Many callers' single statements on one connection in libpq pipeline mode. Each statement is
// sent with its own sync point, so it is its own implicit transaction and its failure touches
// no other caller; results come back in order and go to their callers in that order.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "db/connection.hpp"
#include "domain/lane.hpp"

namespace tenantd::db {

// Thread-safe: callers on any executor; the connection itself is only touched on the
// pipeline's strand. Nothing that needs a transaction or session state belongs here
// (BEGIN/COMMIT, advisory locks, LISTEN): those take an exclusive connection.
class pipeline : public std::enable_shared_from_this<pipeline> {
 public:
  // Puts `conn` (open, no transaction, nothing in flight) into pipeline mode, driven on
  // `executor` (its socket waits move there: an I/O lane runs it on its own thread); at most
  // `max_depth` statements are in flight at once. Throws unavailable_error if libpq refuses.
  // `lane`: the I/O lane `executor` belongs to (tenantd::this_threads_lane()), whose thread
  // alone then drives the connection (asserted in debug builds), or no_lane.
  static std::shared_ptr<pipeline> create(boost::asio::any_io_executor executor, std::unique_ptr<connection> conn,
                                          std::size_t max_depth, std::size_t lane = no_lane);
  ~pipeline();
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;

  // Runs one named statement (prepared on this connection on first use). Returns nullopt at
  // once, sending nothing, when max_depth statements are in flight or the connection is
  // broken: the caller then takes an exclusive connection. Throws pg_error for this
  // statement's own failure (the others go on), unavailable_error for an SQLSTATE that means
  // unavailable (this statement only), and unavailable_error for every statement in flight
  // when the connection breaks or the oldest statement outlives the connection's query_timeout
  // (the connection is then broken() and must be replaced).
  // `beyond_depth`: admitted although max_depth statements are in flight (the caller has no
  // other connection to turn to); a broken connection still refuses it.
  boost::asio::awaitable<std::optional<result_set>> try_exec_prepared(const statement& stmt,
                                                                      std::span<const param> params,
                                                                      bool beyond_depth = false);

  bool broken() const noexcept { return broken_.load(); }
  std::size_t in_flight() const noexcept { return in_flight_.load(); }
  // When the last statement completed (or the pipeline was created).
  std::chrono::steady_clock::time_point last_used() const;
  int backend_pid() const noexcept { return backend_pid_; }
  // Fails whatever is in flight and breaks the connection; it closes when the last user is done.
  void close();

 private:
  struct entry;
  pipeline(boost::asio::any_io_executor executor, std::unique_ptr<connection> conn, std::size_t max_depth,
           std::size_t lane);
  // Debug builds: the strand's work runs on the pipeline's lane's thread.
  void assert_on_lane() const noexcept;
  // Strand only:
  void send_pending();
  boost::asio::awaitable<void> read_results(std::shared_ptr<pipeline> self);
  void take_results();
  void complete(entry& e);
  void break_connection(const std::string& why);

  // Where the connection is driven, one handler at a time: a strand of the executor, or, on an
  // I/O lane, the lane's executor itself (its one thread already runs one handler at a time,
  // and a strand wrapped in any_io_executor costs an allocation per post).
  boost::asio::any_io_executor strand_;
  std::unique_ptr<connection> conn_;
  const std::size_t max_depth_;
  [[maybe_unused]] const std::size_t lane_;  // read only by assert_on_lane in debug builds
  const int backend_pid_;
  std::atomic<bool> broken_{false};
  std::atomic<std::size_t> in_flight_{0};
  mutable std::mutex mutex_;                     // guards pending_, send_scheduled_ and last_used_
  std::vector<std::shared_ptr<entry>> pending_;  // admitted, not yet sent
  bool send_scheduled_{false};
  std::chrono::steady_clock::time_point last_used_;
  // Strand only:
  std::deque<std::shared_ptr<entry>> sent_;      // sent, awaiting results, oldest first
  std::vector<std::shared_ptr<entry>> sending_;  // the batch send_pending is sending
  bool reading_{false};
  bool flush_pending_{false};
};

}  // namespace tenantd::db

// A session-level PostgreSQL advisory lock as an object: acquire() takes it, release() gives
// it back, and one destroyed while still held is released by its connection before that
// connection's next statement, or by db::pool before the connection is reused
// (connection::defer_unlock; a destructor cannot await). A lock dies with its session, so a
// broken connection owes nothing.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>

#include "db/connection.hpp"

namespace tenantd::db {

class advisory_lock {
 public:
  // pg_advisory_lock(key): waits for the lock (bounded by statement_timeout and the
  // connection's deadline). `conn` must outlive the lock. Throws as connection::exec does.
  static boost::asio::awaitable<advisory_lock> acquire(connection& conn, std::int64_t key);
  // pg_try_advisory_lock(key): nullopt when another session holds it.
  static boost::asio::awaitable<std::optional<advisory_lock>> try_acquire(connection& conn, std::int64_t key);

  advisory_lock(advisory_lock&& other) noexcept;
  advisory_lock& operator=(advisory_lock&&) = delete;
  advisory_lock(const advisory_lock&) = delete;
  advisory_lock& operator=(const advisory_lock&) = delete;
  // Still held: the unlock is owed by the connection (see above).
  ~advisory_lock();

  // pg_advisory_unlock(key) now; nothing if already released or the connection is broken.
  boost::asio::awaitable<void> release();
  bool held() const noexcept { return conn_ != nullptr; }
  std::int64_t key() const noexcept { return key_; }

 private:
  advisory_lock(connection& conn, std::int64_t key) noexcept : conn_(&conn), key_(key) {}
  connection* conn_;  // null once released
  std::int64_t key_;
};

}  // namespace tenantd::db

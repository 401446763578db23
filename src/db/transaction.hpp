// A transaction as an object (userver's Transaction): begin() sends BEGIN, commit() ends it,
// and one destroyed while still open rolls back. A destructor cannot await, so it leaves the
// ROLLBACK owed by its connection (connection::defer_rollback): the connection runs it before
// its next statement, and db::pool runs it before the connection is reused. Code that must
// know the transaction is over before it goes on (locks it took must be free at once) calls
// rollback() itself.
#pragma once
#include <boost/asio/awaitable.hpp>

#include "db/connection.hpp"

namespace tenantd::db {

class transaction {
 public:
  // Sends BEGIN on `conn`, which must outlive the transaction. Throws as connection::exec does.
  static boost::asio::awaitable<transaction> begin(connection& conn);

  transaction(transaction&& other) noexcept;
  transaction& operator=(transaction&&) = delete;
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  // Still open: the rollback is owed by the connection (see above).
  ~transaction();

  // COMMIT. The transaction is over afterwards, also when it throws (pg_error: the server
  // rolled back, e.g. a deferred constraint; unavailable_error: the connection is broken).
  boost::asio::awaitable<void> commit();
  // ROLLBACK now; nothing if already over.
  boost::asio::awaitable<void> rollback();
  bool open() const noexcept { return conn_ != nullptr; }

 private:
  explicit transaction(connection& conn) noexcept : conn_(&conn) {}
  connection* conn_;  // null once committed or rolled back
};

}  // namespace tenantd::db

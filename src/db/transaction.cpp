// BEGIN / COMMIT / ROLLBACK, the only place they are written.
#include "db/transaction.hpp"

#include <utility>

namespace tenantd::db {
namespace net = boost::asio;

net::awaitable<transaction> transaction::begin(connection& conn) {
  co_await conn.exec("BEGIN");
  co_return transaction(conn);
}

transaction::transaction(transaction&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}

transaction::~transaction() {
  if (conn_ != nullptr) conn_->defer_rollback();
}

net::awaitable<void> transaction::commit() {
  auto* conn = std::exchange(conn_, nullptr);
  if (conn == nullptr) co_return;
  try {
    co_await conn->exec("COMMIT");
  } catch (...) {
    conn->defer_rollback();  // harmless when the server already ended it; a ROLLBACK only runs inside one
    throw;
  }
}

net::awaitable<void> transaction::rollback() {
  auto* conn = std::exchange(conn_, nullptr);
  if (conn == nullptr || conn->broken()) co_return;  // a broken connection's transaction died with it
  try {
    co_await conn->exec("ROLLBACK");
  } catch (...) {
    conn->defer_rollback();
    throw;
  }
}

}  // namespace tenantd::db

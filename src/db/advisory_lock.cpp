// pg_advisory_lock / pg_try_advisory_lock / pg_advisory_unlock, the only place they are written
// (besides the owed unlock in connection.cpp).
#include "db/advisory_lock.hpp"

#include <array>
#include <string>
#include <utility>

namespace tenantd::db {
namespace net = boost::asio;

net::awaitable<advisory_lock> advisory_lock::acquire(connection& conn, std::int64_t key) {
  const auto text = std::to_string(key);
  const std::array<param, 1> p{param(text)};
  co_await conn.exec_params("SELECT pg_advisory_lock($1::bigint)", p);
  co_return advisory_lock(conn, key);
}

net::awaitable<std::optional<advisory_lock>> advisory_lock::try_acquire(connection& conn, std::int64_t key) {
  const auto text = std::to_string(key);
  const std::array<param, 1> p{param(text)};
  const auto taken = co_await conn.exec_params("SELECT pg_try_advisory_lock($1::bigint)", p);
  if (!taken.boolean(0, 0)) co_return std::nullopt;
  co_return advisory_lock(conn, key);
}

advisory_lock::advisory_lock(advisory_lock&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), key_(other.key_) {}

advisory_lock::~advisory_lock() {
  if (conn_ != nullptr && !conn_->broken()) conn_->defer_unlock(key_);
}

net::awaitable<void> advisory_lock::release() {
  auto* conn = std::exchange(conn_, nullptr);
  if (conn == nullptr || conn->broken()) co_return;
  const auto text = std::to_string(key_);
  const std::array<param, 1> p{param(text)};
  try {
    co_await conn->exec_params("SELECT pg_advisory_unlock($1::bigint)", p);
  } catch (...) {
    if (!conn->broken()) conn->defer_unlock(key_);
    throw;
  }
}

}  // namespace tenantd::db

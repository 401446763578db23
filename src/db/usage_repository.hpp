// Per-tenant usage by minute in master (table tenant_usage, V005): the flush that adds a
// process's counts, the range query behind GET /admin/usage, the retention delete, and the
// database-size sample. Throws pg_error / unavailable_error (see connection.hpp).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "domain/usage.hpp"

namespace tenantd::db::usage {

using boost::asio::awaitable;

// Adds `rows` to what master holds, in one transaction on `c` (which must not be inside
// one): counts add up, maxima and the last activity take the larger value. Rows must be
// sorted by (tenant, minute), as usage_recorder::take() returns them, so processes flushing
// the same minutes lock rows in one order and never deadlock.
awaitable<void> add(connection& c, const std::vector<usage_row>& rows);

struct range_query {
  std::int64_t from{0};  // Unix seconds, inclusive (minutes starting at or after it)
  std::int64_t to{0};    // Unix seconds, exclusive
  std::optional<std::string> tenant_id;
  std::int64_t max_rows{100000};
};

struct range_result {
  std::vector<usage_row> rows;  // by tenant, then minute
  bool truncated{false};        // more than max_rows matched; rows holds the first max_rows
};

awaitable<range_result> find(connection& c, const range_query& query);

// Deletes rows of minutes older than `retention_days` days; returns how many went.
awaitable<std::int64_t> purge(connection& c, std::int64_t retention_days);

// The size of the database `runner` runs statements on (pg_database_size(current_database())).
awaitable<std::int64_t> database_size(statement_runner& runner);

}  // namespace tenantd::db::usage

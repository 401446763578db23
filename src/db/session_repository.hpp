// Session storage bounds in the master database: how many refresh-token rows a session
// keeps, the purge of ended and expired sessions, and ending every session of a tenant.
// Each function runs on the connection it is given, so callers decide the transaction.
// Throws pg_error / unavailable_error (see connection.hpp).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <string>

#include "db/connection.hpp"

namespace tenantd::db::sessions {

using boost::asio::awaitable;

// Used refresh tokens a session keeps (besides its current one): presenting any of them
// again revokes the session; older ones are deleted and are then simply unknown (401).
inline constexpr std::int64_t used_refresh_tokens_kept = 8;

// Deletes the used refresh tokens of a session beyond the newest `keep`.
awaitable<std::int64_t> trim_refresh_tokens(connection& c, const std::string& session_id,
                                            std::int64_t keep = used_refresh_tokens_kept);

// Deletes up to `batch` sessions (their refresh tokens go with them) that ended or expired
// more than `retention_seconds` ago; returns how many.
awaitable<std::int64_t> purge(connection& c, std::int64_t retention_seconds, std::int64_t batch);

// Ends every live session of a tenant (deletion); returns how many.
awaitable<std::int64_t> end_tenant_sessions(connection& c, const std::string& tenant_id, const std::string& reason);
// Deletes every session of a tenant, ended or not (a restore starts with none).
awaitable<std::int64_t> delete_tenant_sessions(connection& c, const std::string& tenant_id);

}  // namespace tenantd::db::sessions

// The per-account login-failure limit, kept in the master database so that it holds across
// every server process. An attempt is reserved before its password is checked and counts
// against the limit while in flight; it then fails (counted) or is released (forgotten).
// Throws pg_error / unavailable_error (see connection.hpp).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "db/connection.hpp"

namespace tenantd::db::login_attempts {

using boost::asio::awaitable;

struct limits {
  std::int64_t per_15_minutes{10};  // failures + attempts in flight
  std::int64_t per_hour{100};
};

// An attempt in flight older than this no longer counts (its process died mid-check).
inline constexpr std::int64_t in_flight_lease_seconds = 60;

struct reservation {
  std::optional<std::int64_t> id;  // set: admitted; release or fail it
  std::int64_t retry_after{1};     // seconds, when refused
};

// Reserves one attempt for `account_key` (an opaque key, e.g. a digest of the email) unless
// recent failures plus attempts in flight reach a limit. Runs its own transaction on `c`,
// which must not be inside one; serialized per key by a row lock.
awaitable<reservation> reserve(connection& c, const std::string& account_key, const limits& limit);
// The password was wrong: the attempt becomes a counted failure.
awaitable<void> record_failure(connection& c, std::int64_t id);
// The attempt did not fail (right password, or abandoned): it stops counting.
awaitable<void> release(connection& c, std::int64_t id);
// Deletes up to `batch` attempts older than an hour and idle guard rows; returns how many
// rows went.
awaitable<std::int64_t> purge(connection& c, std::int64_t batch);

}  // namespace tenantd::db::login_attempts

// Applies versioned SQL migrations (V001__name.sql ...) in order, each in its own
// transaction, recording version, name and SHA-256 checksum in schema_migrations.
// An applied file whose checksum changed is an error; so is a gap or a duplicate version.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/embedded_migrations.hpp"

namespace tenantd::db {

struct migration {
  int version{0};
  std::string name;  // the part after "__", without ".sql"
  std::string sql;
  std::string checksum;  // hex SHA-256 of sql
};

// Migration files are malformed, out of order, or an applied one changed.
class migration_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses and validates a set of files (names must match V<digits>__<name>.sql).
std::vector<migration> parse_migrations(const std::vector<embedded_file>& files);
// Reads *.sql from a directory (for operators who ship migrations beside the binary).
std::vector<migration> load_migrations(const std::string& directory);

struct migrate_options {
  // If set, the whole run holds pg_advisory_lock(key) on this connection.
  std::optional<std::int64_t> advisory_lock_key;
  // Only apply migrations with version <= this (for tests and "one version behind").
  std::optional<int> target_version;
};

struct migrate_report {
  int version_before{0};
  int version_after{0};
  std::vector<int> applied;
};

// Creates schema_migrations if missing, verifies checksums of applied versions, applies the
// pending ones. Throws migration_error, pg_error or unavailable_error; a failed migration
// is rolled back and nothing after it runs.
boost::asio::awaitable<migrate_report> apply_migrations(connection& conn, const std::vector<migration>& migrations,
                                                        migrate_options options = {});

// The highest applied version (0 if none or no table).
boost::asio::awaitable<int> current_version(connection& conn);

// When migrations run as a separate DDL role (MIGRATION_DATABASE_URL), lets the runtime
// `role` use the data of the connected database: USAGE on schema public, SELECT, INSERT,
// UPDATE, DELETE on every table and USAGE, SELECT, UPDATE on every sequence there (now and,
// through default privileges, for tables the connected role creates later), but only
// SELECT on schema_migrations. The role owns nothing, so it cannot ALTER or DROP. Idempotent.
boost::asio::awaitable<void> grant_data_access(connection& conn, const std::string& role);

}  // namespace tenantd::db

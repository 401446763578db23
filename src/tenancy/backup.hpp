// Backup and restore of one tenant: a `pg_dump -Fc` of its database plus its master rows
// (tenant row, members with their accounts and password hashes, pending invitations) in one
// file. The parts: the file format (backup_file.hpp), the pg_dump/pg_restore runner
// (pg_tools.hpp), the master rows' SQL (db/backup_repository.hpp); the backup flow is in
// backup.cpp, the restore flow in restore.cpp.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/pool.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"
#include "tenancy/provisioner.hpp"

namespace tenantd::tenancy {

struct backup_summary {
  std::string tenant_id;
  std::string path;
  std::uintmax_t bytes{0};
  std::string created_at;  // RFC 3339 UTC
  std::size_t members{0};
  std::size_t invitations{0};
};

struct restore_report {
  tenant_record tenant;
  std::size_t members{0};                    // memberships restored
  std::vector<std::string> skipped_members;  // emails taken by another account: not restored
  std::size_t invitations{0};
};

// Creates the backup directory if needed and sets its mode to 0700 (backups hold password
// hashes). Throws std::filesystem::filesystem_error when it cannot.
void prepare_backup_directory(const std::string& dir);

// Writes the backup of an active or suspended tenant to `path` (via `path`.partial, renamed
// at the end), mode 0600 whatever the umask. errc::not_found when there is no such tenant (or it has no database).
// Throws on infrastructure failures (pg_dump's stderr in what()); never leaves `path` half-written.
boost::asio::awaitable<result<backup_summary>> backup_tenant(std::shared_ptr<db::pool> master,
                                                             provisioner& provisioning, const std::string& tenant_id,
                                                             const std::string& path);

// Restores a backup file into `as_id` (or the id recorded in the backup). The id must be
// free, or 'deleted' with no database left: else errc::tenant_exists. errc::invalid_input
// for a file that is not a tenantd backup, errc::not_found when it does not exist.
// The tenant is placed on `server` (or where placement picks, as for a new tenant: errc::
// invalid_input, errc::server_unavailable); its database is created there from template0 and
// filled by pg_restore; the master rows go in one transaction; the tenant ends 'active'. Any
// failure drops the new database and leaves no row (a 'deleted' row stays 'deleted'), then throws.
boost::asio::awaitable<result<restore_report>> restore_tenant(std::shared_ptr<db::pool> master,
                                                              provisioner& provisioning, const std::string& path,
                                                              const std::optional<std::string>& as_id,
                                                              const std::optional<std::string>& server = std::nullopt);

}  // namespace tenantd::tenancy

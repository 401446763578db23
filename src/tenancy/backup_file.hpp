// The tenant backup file, format version 1: 8 bytes magic "TNTDBK01", 8 bytes big-endian
// length N, N bytes of UTF-8 JSON (the tenant's master rows), then the pg_dump custom-format
// archive to the end of the file. The functions here block (file I/O): call them through
// offload() (tenancy/pg_tools.hpp).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/backup_repository.hpp"
#include "domain/error.hpp"

namespace tenantd::tenancy {

// What the JSON part holds.
struct backup_rows {
  std::string created_at;  // of the backup, RFC 3339 UTC
  struct tenant_row {
    std::string id;
    std::string name;
    std::string status;
    std::string registration;  // "invite" when a file does not say
    int schema_version{0};
    std::string created_at;
  } tenant;
  std::vector<db::backups::member_row> members;
  std::vector<db::backups::invitation_row> invitations;
};

// The JSON text of `rows` (with "format": 1).
std::string encode_backup_rows(const backup_rows& rows);
// nullopt for JSON this version cannot read: another format number, a missing or mistyped
// field, no tenant id or name.
std::optional<backup_rows> decode_backup_rows(std::string_view json_text);

// Creates (or truncates) `path` with mode 0600 exactly, whatever the umask (backups hold
// password hashes). Throws std::runtime_error.
void create_private_file(const std::string& path);

// Removes the file at `path` (if any) when it goes out of scope.
struct temporary_file {
  std::string path;
  temporary_file() = default;
  explicit temporary_file(std::string p) : path(std::move(p)) {}
  temporary_file(const temporary_file&) = delete;
  temporary_file& operator=(const temporary_file&) = delete;
  ~temporary_file();
};

// Writes header + `rows_json` + the archive at `archive_path` into `path`.partial (mode 0600),
// then renames it to `path`; returns the size of the file. Throws std::runtime_error (disk
// full, ...) and never leaves `path` half-written.
std::uintmax_t write_backup_file(const std::string& path, const std::string& rows_json,
                                 const std::string& archive_path);

struct loaded_backup {
  std::optional<error> refused;  // not_found (no such file) or invalid_input (not a backup, damaged)
  std::string rows_json;
  std::string archive_path;  // a temporary file holding the pg_dump archive; the caller removes it
};
// Reads the header and the JSON and copies the archive into a temporary file.
loaded_backup read_backup_file(const std::string& path);

}  // namespace tenantd::tenancy

// The backup flow: the tenant's master rows (db/backup_repository), pg_dump of its database
// (pg_tools), both in one file (backup_file).
#include "tenancy/backup.hpp"

#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>

#include "db/backup_repository.hpp"
#include "db/master_repository.hpp"
#include "tenancy/backup_file.hpp"
#include "tenancy/pg_tools.hpp"

namespace tenantd::tenancy {
namespace net = boost::asio;
namespace fs = std::filesystem;

namespace {

std::string now_rfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

void prepare_backup_directory(const std::string& dir) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
}

net::awaitable<result<backup_summary>> backup_tenant(std::shared_ptr<db::pool> master, provisioner& provisioning,
                                                     const std::string& tenant_id, const std::string& path) {
  backup_rows rows;
  rows.created_at = now_rfc3339();
  std::string database;
  std::optional<tenant_record> found;
  {
    auto conn = co_await master->acquire();
    auto tenant = co_await db::master::find_tenant(*conn, tenant_id);
    if (!tenant || !is_live(tenant->status))
      co_return make_error(errc::not_found, "no active or suspended tenant with this id");
    database = tenant->database_name;
    found = tenant;
    rows.tenant = {tenant->id,           tenant->name,           std::string(to_string(tenant->status)),
                   tenant->registration, tenant->schema_version, tenant->created_at};
    rows.members = co_await db::backups::members_of(*conn, tenant_id);
    rows.invitations = co_await db::backups::pending_invitations(*conn, tenant_id);
  }

  // The archive holds every member's password hash too: created 0600 before pg_dump writes it
  // (pg_dump reopens the file without changing its mode), whatever the umask.
  temporary_file archive{path + ".dump.partial"};
  create_private_file(archive.path);
  // On the tenant's server, as the role that owns every object there.
  const auto server = co_await provisioning.server_of(*found);
  co_await pg_dump(server.ddl, database, archive.path);
  const std::string rows_json = encode_backup_rows(rows);
  const std::string archive_path = archive.path;
  auto write = [path, rows_json, archive_path] { return write_backup_file(path, rows_json, archive_path); };

  backup_summary summary;
  summary.tenant_id = tenant_id;
  summary.path = path;
  summary.created_at = rows.created_at;
  summary.members = rows.members.size();
  summary.invitations = rows.invitations.size();
  summary.bytes = co_await offload(std::move(write));
  spdlog::info("tenant {}: backup written to {} ({} bytes, {} members)", tenant_id, path, summary.bytes,
               summary.members);
  co_return summary;
}

}  // namespace tenantd::tenancy

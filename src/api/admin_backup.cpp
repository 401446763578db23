// Platform-admin backup and restore of one tenant, into and out of BACKUP_DIR. The dispatcher
// has checked the admin token (access_kind::admin); names never leave BACKUP_DIR.
#include <boost/json/array.hpp>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <vector>

#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "domain/validation.hpp"
#include "tenancy/backup.hpp"

namespace tenantd::api::handlers {
namespace {

constexpr std::string_view backup_suffix = ".tenantd-backup";

// A backup file name: 1-200 of [A-Za-z0-9._-], not starting with '.', ending in the suffix.
bool valid_backup_name(std::string_view name) {
  if (name.size() <= backup_suffix.size() || name.size() > 200 || name.front() == '.') return false;
  if (name.substr(name.size() - backup_suffix.size()) != backup_suffix) return false;
  for (const char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return name.find("..") == std::string_view::npos;
}

// <tenant>-<UTC time>-<random>.tenantd-backup
std::string new_backup_name(const std::string& tenant_id) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix;
  for (int i = 0; i < 6; ++i) suffix += alphabet[randombytes_uniform(sizeof alphabet - 1)];
  return tenant_id + "-" + stamp + "-" + suffix + std::string(backup_suffix);
}

}  // namespace

boost::json::array backup_files_json(const std::string& backup_dir, const std::string& tenant_id) {
  struct found {
    std::string name;
    std::uintmax_t bytes;
    std::filesystem::file_time_type modified;
  };
  std::vector<found> files;
  std::error_code ec;
  // Tenant ids have no '-', so "<id>-" names this tenant's backups and no other tenant's.
  const auto prefix = tenant_id + "-";
  for (std::filesystem::directory_iterator it(backup_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!name.starts_with(prefix) || !valid_backup_name(name) || !it->is_regular_file(ec)) continue;
    const auto bytes = it->file_size(ec);
    const auto modified = it->last_write_time(ec);
    if (!ec) files.push_back({name, bytes, modified});
    ec.clear();
  }
  // Newest first: the name carries the creation time, then a random suffix.
  std::sort(files.begin(), files.end(), [](const found& a, const found& b) { return a.name > b.name; });
  boost::json::array out;
  for (const auto& f : files) {
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::file_clock::to_sys(f.modified).time_since_epoch());
    const std::time_t t = seconds.count();
    std::tm utc{};
    ::gmtime_r(&t, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &utc);
    out.push_back({{"backup", f.name}, {"bytes", f.bytes}, {"modified_at", stamp}});
  }
  return out;
}

// POST /admin/tenants/:id/backup
awaitable<response> admin_backup_tenant(context& ctx) {
  const auto& id = ctx.params.at(0);
  if (validation::check_tenant_id(id))
    co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  const std::filesystem::path dir(ctx.svc.settings.backup_dir);
  tenancy::prepare_backup_directory(dir.string());  // 0700; throws (-> 500, logged) when it cannot
  const auto name = new_backup_name(id);
  const auto path = (dir / name).string();
  auto made = co_await tenancy::backup_tenant(ctx.svc.master, *ctx.svc.provisioner, id, path);
  if (!made) {
    auto failure = made.err();
    if (failure.code == errc::not_found) failure.code = errc::tenant_not_found;
    co_return problem(failure, ctx.request_id);
  }
  boost::json::object out{{"backup", name},
                          {"tenant", id},
                          {"bytes", made->bytes},
                          {"members", made->members},
                          {"created_at", made->created_at}};
  co_return json_response(201, out);
}

// POST /admin/tenants/:id/restore   {"backup": "<name>", "as": "new_id"?, "server": "<name>"?}
awaitable<response> admin_restore_tenant(context& ctx) {
  body_reader body(ctx.body);
  auto name = body.string("backup", true);
  auto as = body.string("as", false);
  auto server = body.string("server", false);
  if (server && validation::check_server_name(*server)) body.add_error("server", "no database server of that name");
  if (name && !valid_backup_name(*name)) body.add_error("backup", "must name a file in the backup directory");
  if (as) {
    if (auto message = validation::check_tenant_id(*as)) body.add_error("as", *message);
  }
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  // The backup's own id is in the file; the path id names the tenant restored unless "as" is given.
  const auto& id = ctx.params.at(0);
  if (!as) {
    if (auto message = validation::check_tenant_id(id))
      co_return problem(make_error(errc::invalid_input, "tenant id: " + *message), ctx.request_id);
  }
  const auto target = as.value_or(id);
  const auto path = (std::filesystem::path(ctx.svc.settings.backup_dir) / *name).string();
  auto restored = co_await tenancy::restore_tenant(ctx.svc.master, *ctx.svc.provisioner, path, target, server);
  if (!restored) co_return problem(restored.err(), ctx.request_id);
  auto out = to_json(restored->tenant);
  out["database"] = restored->tenant.database_name;
  out["schema_version"] = restored->tenant.schema_version;
  out["members"] = restored->members;
  boost::json::array skipped;
  for (const auto& email : restored->skipped_members) skipped.push_back(boost::json::string(email));
  out["skipped_members"] = std::move(skipped);
  co_return json_response(201, out);
}

}  // namespace tenantd::api::handlers

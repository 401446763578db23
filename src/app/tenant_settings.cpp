// Tenant settings shared by serve, migrate and tenants.
#include "app/tenant_settings.hpp"

#include <unistd.h>

#include <array>

#include "domain/validation.hpp"

#include "domain/server.hpp"

namespace tenantd::app {

std::vector<db::migration> tenant_migrations(const config& cfg, const std::string& directory_override) {
  const std::string& directory = directory_override.empty() ? cfg.tenant_migrations_dir : directory_override;
  if (!directory.empty()) return db::load_migrations(directory);
  return db::parse_migrations(db::embedded_tenant_migrations());
}

tenancy::tenant_connection_settings tenant_connection(const config& cfg) {
  return {cfg.tenant.host,          cfg.tenant.port,       cfg.tenant.user,
          cfg.tenant.password,      cfg.tenant_pool_size,  cfg.tenant_pool_max_connections,
          cfg.pool_acquire_timeout, cfg.pool_idle_timeout, cfg.statement_timeout};
}

tenancy::provisioning_settings provisioning(const config& cfg) {
  tenancy::provisioning_settings s;
  s.database_prefix = cfg.tenant_db_prefix;
  s.master_user = cfg.master.user;
  s.tenant = tenant_connection(cfg);
  if (cfg.migration) {  // a separate DDL role creates, migrates and owns tenant databases
    s.master_user = cfg.migration->user;
    auto ddl = s.tenant;
    ddl.user = cfg.migration->user;
    ddl.password = cfg.migration->password;
    s.ddl = ddl;
  }
  s.use_template = cfg.tenant_provisioning_template;
  return s;
}

tenancy::server_connection main_server(const config& cfg) {
  const auto s = provisioning(cfg);
  const auto endpoint = [](const tenancy::tenant_connection_settings& t) {
    return db::server_endpoint{t.host, t.port, t.user, t.password, {}, {}};
  };
  return {std::string(main_server_name), endpoint(s.tenant), endpoint(s.ddl_connection()), {}};
}

tenancy::server_defaults server_defaults(const config& cfg) {
  tenancy::server_defaults d;
  d.user = cfg.tenant.user;
  d.password = cfg.tenant.password;
  if (cfg.migration) {
    d.ddl_user = cfg.migration->user;
    d.ddl_password = cfg.migration->password;
  }
  return d;
}

tenancy::move_settings move_settings(const config& cfg) {
  tenancy::move_settings settings;
  settings.user = cfg.move_database_username;
  settings.password = cfg.move_database_password;
  settings.freeze_max = cfg.move_freeze_max;
  settings.source_grace = cfg.move_source_grace;
  settings.lease_seconds = cfg.move_lease_seconds;
  settings.fault_point = cfg.fault_point;
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  settings.owner =
      std::string(host.data()) + ":" + std::to_string(::getpid()) + ":" + validation::new_uuid().substr(0, 8);
  return settings;
}

}  // namespace tenantd::app

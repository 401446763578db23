// Read-only operator queries (metrics, doctor). Statements are prepared like repositories'.
#include "db/inspection.hpp"

#include <array>

namespace tenantd::db::inspection {
using boost::asio::awaitable;

namespace {
constexpr statement tenants_by_status_sql{"i_tenants_by_status",
                                          "SELECT status, count(*) FROM tenants GROUP BY status"};
constexpr statement role_privileges_sql{
    "i_role_privileges", "SELECT rolname, rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user"};
constexpr statement databases_with_prefix_sql{
    "i_databases_with_prefix", "SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1 ORDER BY datname"};
}  // namespace

awaitable<std::map<std::string, std::int64_t>> count_tenants_by_status(connection& c) {
  auto r = co_await c.exec_prepared(tenants_by_status_sql, {});
  std::map<std::string, std::int64_t> counts;
  for (int i = 0; i < r.rows(); ++i) counts[r.string(i, 0)] = r.int64(i, 1);
  co_return counts;
}

awaitable<role_privileges> current_role_privileges(connection& c) {
  auto r = co_await c.exec_prepared(role_privileges_sql, {});
  role_privileges out;
  if (r.rows() == 1) out = {r.string(0, 0), r.boolean(0, 1), r.boolean(0, 2)};
  co_return out;
}

awaitable<std::vector<std::string>> databases_with_prefix(connection& c, const std::string& prefix) {
  const std::array<param, 1> params{param(prefix)};
  auto r = co_await c.exec_prepared(databases_with_prefix_sql, params);
  std::vector<std::string> names;
  for (int i = 0; i < r.rows(); ++i) names.push_back(r.string(i, 0));
  co_return names;
}

awaitable<std::vector<applied_migration>> applied_migrations(connection& c) {
  auto exists = co_await c.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  std::vector<applied_migration> out;
  if (exists.rows() != 1 || !exists.boolean(0, 0)) co_return out;
  auto r = co_await c.exec("SELECT version, checksum FROM schema_migrations ORDER BY version");
  for (int i = 0; i < r.rows(); ++i) out.push_back({static_cast<int>(r.int64(i, 0)), r.string(i, 1)});
  co_return out;
}

}  // namespace tenantd::db::inspection

// DDL on tenant databases and the template's recorded version.
#include "db/tenant_database_repository.hpp"

#include <array>

namespace tenantd::db::databases {
namespace {

constexpr statement template_version_sql{
    "td_template_version", "SELECT schema_version FROM template_state WHERE db_server = $1 AND database_name = $2"};
constexpr statement record_template_version_sql{
    "td_record_template_version",
    "INSERT INTO template_state (db_server, database_name, schema_version) VALUES ($1, $2, $3::int) "
    "ON CONFLICT (db_server, database_name) DO UPDATE SET schema_version = EXCLUDED.schema_version, migrated_at = "
    "now()"};

}  // namespace

awaitable<void> create(connection& c, const std::string& name, const std::string& source,
                       const std::optional<std::string>& owner) {
  const auto quoted = c.escape_identifier(name);
  std::string sql = "CREATE DATABASE " + quoted + " TEMPLATE " + c.escape_identifier(source) + " ENCODING 'UTF8'";
  if (owner) sql += " OWNER " + c.escape_identifier(*owner);
  co_await c.exec(sql);
}

awaitable<void> restrict_connect(connection& c, const std::string& name, const std::string& role, bool temporary) {
  const auto quoted = c.escape_identifier(name);
  const std::string revoke = "REVOKE CONNECT, TEMPORARY ON DATABASE " + quoted + " FROM PUBLIC";
  const std::string grant = std::string(temporary ? "GRANT CONNECT, TEMPORARY" : "GRANT CONNECT") + " ON DATABASE " +
                            quoted + " TO " + c.escape_identifier(role);
  co_await c.exec(revoke);
  co_await c.exec(grant);
}

awaitable<void> drop(connection& c, const std::string& name) {
  const auto quoted = c.escape_identifier(name);
  const std::string sql = "DROP DATABASE IF EXISTS " + quoted + " WITH (FORCE)";
  co_await c.exec(sql);
}

awaitable<void> open_template(connection& c, const std::string& name) {
  const auto quoted = c.escape_identifier(name);
  const std::string sql = "ALTER DATABASE " + quoted + " WITH ALLOW_CONNECTIONS true";
  co_await c.exec(sql);
}

awaitable<void> close_template(connection& c, const std::string& name) {
  const auto quoted = c.escape_identifier(name);
  const std::string sql = "ALTER DATABASE " + quoted + " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true";
  co_await c.exec(sql);
}

awaitable<std::optional<int>> template_version(connection& c, const std::string& server, const std::string& name) {
  const std::array<param, 2> p{param(server), param(name)};
  auto r = co_await c.exec_prepared(template_version_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return static_cast<int>(r.int64(0, 0));
}

awaitable<void> record_template_version(connection& c, const std::string& server, const std::string& name,
                                        int version) {
  const auto version_text = std::to_string(version);
  const std::array<param, 3> p{param(server), param(name), param(version_text)};
  co_await c.exec_prepared(record_template_version_sql, p);
}

}  // namespace tenantd::db::databases

// Database servers: list, add (checked by connecting, template prepared), change, remove.
#include "tenancy/server_catalog.hpp"

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "db/connection.hpp"
#include "domain/validation.hpp"

namespace tenantd::tenancy {
namespace {

error field_error(std::string field, std::string message) {
  auto e = make_error(errc::invalid_input, field + ": " + message);
  e.fields.push_back({std::move(field), std::move(message)});
  return e;
}

bool contains(const std::string& text, std::string_view needle) { return text.find(needle) != std::string::npos; }

}  // namespace

std::string connect_failure_reason(std::string_view libpq_message) {
  std::string m(libpq_message);
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (contains(m, "password authentication failed") || contains(m, "no password supplied") ||
      contains(m, "authentication failed") || contains(m, "pg_hba.conf") ||
      (contains(m, "role") && contains(m, "does not exist")))
    return "the server refused the login: wrong user or password, or its host-based authentication does not admit this "
           "client";
  if (contains(m, "database") && contains(m, "does not exist"))
    return "the database named in the URL does not exist on the server";
  if (contains(m, "timed out") || contains(m, "timeout")) return "the server did not answer in time";
  if (contains(m, "could not translate host name") || contains(m, "name or service not known"))
    return "the host name does not resolve";
  if (contains(m, "ssl") || contains(m, "certificate"))
    return "the TLS connection failed: check sslmode and sslrootcert";
  if (contains(m, "too many connections") || contains(m, "remaining connection slots"))
    return "the server has no connection slot free";
  if (contains(m, "connection refused") || contains(m, "could not connect") || contains(m, "no route") ||
      contains(m, "unreachable"))
    return "the server is unreachable: nothing accepts connections at that host and port";
  return "the server could not be reached or refused the connection";
}

boost::asio::awaitable<void> record_main_server(db::connection& master_conn, const server_connection& main) {
  int port = 5432;
  try {
    port = std::stoi(main.runtime.port);
  } catch (const std::exception&) {  // validated by the configuration; keep the default
  }
  co_await db::servers::record_main(master_conn, main.runtime.host, port);
}

server_catalog::server_catalog(std::shared_ptr<db::pool> master, provisioner& provisioning, server_directory& servers,
                               std::function<void(const invalidation&)> on_change)
    : master_(std::move(master)), provisioning_(provisioning), servers_(servers), on_change_(std::move(on_change)) {}

boost::asio::awaitable<std::vector<server_record>> server_catalog::list() {
  auto conn = co_await master_->acquire();
  auto rows = co_await db::servers::list(*conn);
  std::vector<server_record> out;
  out.reserve(rows.size());
  for (auto& row : rows) out.push_back(std::move(row.record));
  co_return out;
}

boost::asio::awaitable<std::optional<server_record>> server_catalog::find(const std::string& name) {
  auto conn = co_await master_->acquire();
  auto row = co_await db::servers::find(*conn, name);
  if (!row) co_return std::nullopt;
  co_return std::move(row->record);
}

boost::asio::awaitable<std::optional<std::string>> server_catalog::check_reachable(const server_connection& server) {
  const auto executor = co_await boost::asio::this_coro::executor;
  const auto try_connect = [&](const db::server_endpoint& as) -> boost::asio::awaitable<std::optional<std::string>> {
    db::connection_options options;
    options.conninfo = db::service_conninfo(as, server.maintenance_database, std::chrono::seconds(10));
    options.connect_timeout = std::chrono::seconds(5);
    options.query_timeout = std::chrono::seconds(10);
    options.label = "server=" + server.name + " check";
    try {
      auto conn = co_await db::connection::connect(executor, options);
      (void)conn;
    } catch (const db::unavailable_error& e) {
      co_return connect_failure_reason(e.what());
    }
    co_return std::nullopt;
  };
  if (auto refused = co_await try_connect(server.runtime)) co_return refused;
  if (server.ddl.user != server.runtime.user)
    if (auto refused = co_await try_connect(server.ddl)) co_return "as the DDL role: " + *refused;
  co_return std::nullopt;
}

void server_catalog::changed(const std::string& name) {
  if (on_change_) on_change_(invalidation::of_server(name));
}

boost::asio::awaitable<result<server_record>> server_catalog::add(const server_request& request) {
  if (auto problem = validation::check_server_name(request.name)) co_return field_error("name", *problem);
  if (request.weight && (*request.weight < 1 || *request.weight > max_weight))
    co_return field_error("weight", "must be an integer from 1 to 1000000");
  if (request.max_tenants && *request.max_tenants < 0) co_return field_error("max_tenants", "must be 0 or more");
  auto connection = server_connection_from(request.name, request.url, servers_.defaults());
  if (!connection) co_return std::move(connection).err();
  if (co_await find(request.name))
    co_return make_error(errc::server_exists, "a database server named " + request.name + " exists already");

  if (auto refused = co_await check_reachable(*connection)) {
    spdlog::info("database server {} not added: {}", request.name, *refused);
    co_return field_error("url", *refused);
  }
  // Its own template first: the first tenant placed there is then a file copy.
  try {
    const int version = co_await provisioning_.prepare_template(*connection);
    spdlog::info("database server {}: template ready at schema version {}", request.name, version);
  } catch (const db::pg_error& e) {
    spdlog::warn("database server {} not added: preparing its template failed [{}]", request.name, e.sqlstate());
    if (e.sqlstate() == "42501")
      co_return field_error("url", "the role may not create databases on that server (it needs CREATEDB)");
    co_return field_error("url", "the server's tenant template could not be prepared [SQLSTATE " + e.sqlstate() + "]");
  } catch (const db::unavailable_error& e) {
    co_return field_error("url", connect_failure_reason(e.what()));
  }

  db::servers::new_server row;
  row.name = request.name;
  row.host = connection->runtime.host;
  row.port = std::stoi(connection->runtime.port);
  row.url = request.url;
  row.weight = request.weight.value_or(1);
  row.max_tenants = request.max_tenants;
  {
    auto conn = co_await master_->acquire();
    if (!co_await db::servers::insert(*conn, row))
      co_return make_error(errc::server_exists, "a database server named " + request.name + " exists already");
  }
  changed(request.name);
  spdlog::info("database server {} added ({}:{})", request.name, row.host, row.port);
  auto added = co_await find(request.name);
  if (!added) throw std::runtime_error("database server " + request.name + " vanished after it was added");
  co_return std::move(*added);
}

boost::asio::awaitable<result<server_record>> server_catalog::update(const std::string& name,
                                                                     const db::servers::server_changes& changes) {
  if (changes.weight && (*changes.weight < 1 || *changes.weight > max_weight))
    co_return field_error("weight", "must be an integer from 1 to 1000000");
  if (changes.max_tenants && *changes.max_tenants && **changes.max_tenants < 0)
    co_return field_error("max_tenants", "must be 0 or more");
  std::optional<server_record> updated;
  {
    auto conn = co_await master_->acquire();
    updated = co_await db::servers::update(*conn, name, changes);
  }
  if (!updated) co_return make_error(errc::not_found, "no database server named " + name);
  changed(name);
  spdlog::info("database server {} changed: state {}, weight {}", name, to_string(updated->state), updated->weight);
  co_return std::move(*updated);
}

boost::asio::awaitable<status> server_catalog::remove(const std::string& name) {
  if (name == main_server_name)
    co_return make_error(errc::invalid_input, "main (DB_HOST/DB_PORT) cannot be removed; set its state instead");
  db::servers::removal outcome{};
  {
    auto conn = co_await master_->acquire();
    outcome = co_await db::servers::remove(*conn, name);
  }
  switch (outcome) {
    case db::servers::removal::not_found: co_return make_error(errc::not_found, "no database server named " + name);
    case db::servers::removal::not_empty:
      co_return make_error(errc::server_not_empty, "database server " + name + " still holds tenants");
    case db::servers::removal::removed: break;
  }
  changed(name);
  spdlog::info("database server {} removed", name);
  co_return ok();
}

}  // namespace tenantd::tenancy

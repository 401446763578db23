// Master SQL for database servers (db_servers) and for placing a new tenant on one. Each
// function runs on the master connection it is given. Throws pg_error / unavailable_error.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "domain/error.hpp"
#include "domain/server.hpp"

namespace tenantd::db::servers {

using boost::asio::awaitable;

// A server row with its connection URL (credentials included: for tenancy's servers
// directory only; never shown or logged). `url` is null for `main`.
struct stored_server {
  server_record record;
  std::optional<std::string> url;
};

// Every server with its count of tenants not deleted, by name.
awaitable<std::vector<stored_server>> list(connection& c);
awaitable<std::optional<stored_server>> find(connection& c, const std::string& name);

struct new_server {
  std::string name;
  std::string host;
  int port{5432};
  std::string url;
  std::int64_t weight{1};
  std::optional<std::int64_t> max_tenants;
};
// Inserts an active server and notifies the servers directories (on commit); false if the
// name is taken.
awaitable<bool> insert(connection& c, const new_server& server);

struct server_changes {
  std::optional<server_state> state;
  std::optional<std::int64_t> weight;
  std::optional<std::optional<std::int64_t>> max_tenants;  // set, or cleared (no limit)
};
// Applies the changes and notifies; nullopt if no such server.
awaitable<std::optional<server_record>> update(connection& c, const std::string& name, const server_changes& changes);

enum class removal { removed, not_found, not_empty };
// In one transaction: refuses while a tenant that is not deleted is placed on it; else clears
// the server of its deleted tenants' rows, deletes it and notifies.
awaitable<removal> remove(connection& c, const std::string& name);

// Records the host and port `main` is reached at (DB_HOST/DB_PORT of the configuration).
awaitable<void> record_main(connection& c, const std::string& host, int port);

// Inserts a 'provisioning' tenant row on a server, in one transaction that locks the
// servers' rows (FOR UPDATE), so concurrent creators never overfill one: on `requested`, or
// on the server choose_server() picks. The server's name, or errc::tenant_exists (the id is
// taken), errc::invalid_input (no server of that name), errc::server_unavailable (the named
// server is full or not active, or none can take a tenant).
awaitable<result<std::string>> insert_placed_tenant(connection& c, const std::string& id, const std::string& name,
                                                    const std::string& database_name,
                                                    const std::optional<std::string>& requested);

// The same choice for an existing tenant row (a deleted tenant taken back by a restore): sets
// its server in one transaction that locks the servers' rows. The server's name, or
// errc::invalid_input / errc::server_unavailable as above.
awaitable<result<std::string>> place_existing_tenant(connection& c, const std::string& id,
                                                     const std::optional<std::string>& requested);

}  // namespace tenantd::db::servers

// The database servers operators manage (GET/POST/PUT/DELETE /admin/servers and `tenantd
// servers …`): list them with their tenant counts, add one (its URL checked by connecting,
// its template database prepared, before it is recorded), change its state, weight or
// max_tenants, remove an empty one. Every change is published on the invalidation channel,
// so every process's servers directory reloads. Errors name what is wrong in tenantd's own
// words: never libpq's text, never the password.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/pool.hpp"
#include "db/server_repository.hpp"
#include "domain/error.hpp"
#include "domain/invalidation.hpp"
#include "domain/server.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::tenancy {

struct server_request {
  std::string name;
  std::string url;
  std::optional<std::int64_t> weight;
  std::optional<std::int64_t> max_tenants;
};

// Why a connection to a server failed, in tenantd's words, from libpq's message (which is
// never shown: it may name the user, the host's addresses or the pg_hba.conf line).
std::string connect_failure_reason(std::string_view libpq_message);

// Records in master the host and port `main` is reached at (this process's DB_HOST/DB_PORT),
// so GET /admin/servers shows them. Run after the master migrations.
boost::asio::awaitable<void> record_main_server(db::connection& master_conn, const server_connection& main);

class server_catalog {
 public:
  // on_change receives this process's own invalidations (published for the others as well).
  server_catalog(std::shared_ptr<db::pool> master, provisioner& provisioning, server_directory& servers,
                 std::function<void(const invalidation&)> on_change);

  boost::asio::awaitable<std::vector<server_record>> list();
  boost::asio::awaitable<std::optional<server_record>> find(const std::string& name);
  // errc::invalid_input (name, url, weight, max_tenants; an unreachable server or a refused
  // login: the reason in the detail and under "url"), errc::server_exists.
  boost::asio::awaitable<result<server_record>> add(const server_request& request);
  // errc::not_found, errc::invalid_input.
  boost::asio::awaitable<result<server_record>> update(const std::string& name,
                                                       const db::servers::server_changes& changes);
  // errc::not_found, errc::server_not_empty, errc::invalid_input (main cannot be removed).
  boost::asio::awaitable<status> remove(const std::string& name);

  static constexpr std::int64_t max_weight = 1000000;

 private:
  // Connects as the server's runtime role and as its DDL role; the reason when one fails.
  boost::asio::awaitable<std::optional<std::string>> check_reachable(const server_connection& server);
  void changed(const std::string& name);

  std::shared_ptr<db::pool> master_;
  provisioner& provisioning_;
  server_directory& servers_;
  std::function<void(const invalidation&)> on_change_;
};

}  // namespace tenantd::tenancy

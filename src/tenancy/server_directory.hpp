// The servers directory: database server name -> how to connect there, served from memory,
// loaded from master (db_servers) and reloaded when an invalidation names a server (the
// master LISTEN/NOTIFY channel: a server added, changed or removed on any process). `main`
// is the configuration's DB_HOST/DB_PORT and never comes from master. Credentials live here
// and in master only: nothing here is logged.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/conninfo.hpp"
#include "db/pool.hpp"
#include "domain/error.hpp"

namespace tenantd::tenancy {

// How tenantd reaches one database server.
struct server_connection {
  std::string name;
  db::server_endpoint runtime;  // the request path's role (DB_USERNAME unless the URL names one)
  db::server_endpoint ddl;      // the role that creates, migrates, dumps and restores databases there
  // Where CREATE/DROP DATABASE run, as `ddl`. Empty for main: there they run on the master
  // database through the DDL pool, as before servers existed.
  std::string maintenance_database;
};

// The roles a server's URL falls back to.
struct server_defaults {
  std::string user;      // DB_USERNAME
  std::string password;  // DB_PASSWORD
  // MIGRATION_DATABASE_URL's role, when set: it runs DDL on every server (it must exist there).
  std::optional<std::string> ddl_user;
  std::optional<std::string> ddl_password;
};

// The connection for server `name` from its URL; errc::invalid_input when the URL is unusable.
result<server_connection> server_connection_from(const std::string& name, const std::string& url,
                                                 const server_defaults& defaults);

class server_directory {
 public:
  server_directory(std::shared_ptr<db::pool> master, server_connection main, server_defaults defaults);

  const server_connection& main() const noexcept { return main_; }
  const server_defaults& defaults() const noexcept { return defaults_; }

  // From memory only (main always); nullopt when unknown or not loaded yet.
  std::optional<server_connection> find(const std::string& name) const;
  // From memory, reloading from master first when `name` is not there or an invalidation came
  // since the last load; nullopt when master has no such server. Throws db::unavailable_error.
  boost::asio::awaitable<std::optional<server_connection>> lookup(const std::string& name);
  // Every server (main first), reloaded from master.
  boost::asio::awaitable<std::vector<server_connection>> all();
  // A server changed somewhere: the next lookup reloads.
  void invalidate();

 private:
  boost::asio::awaitable<void> reload();

  std::shared_ptr<db::pool> master_;
  server_connection main_;
  server_defaults defaults_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, server_connection> servers_;  // without main
  std::vector<std::string> order_;                              // names as master lists them
  bool stale_{true};
  std::uint64_t generation_{0};
};

}  // namespace tenantd::tenancy

// Servers directory: server connections from master, cached until an invalidation.
#include "tenancy/server_directory.hpp"

#include <spdlog/spdlog.h>

#include "db/server_repository.hpp"
#include "domain/server.hpp"
#include "tenancy/server_url.hpp"

namespace tenantd::tenancy {

result<server_connection> server_connection_from(const std::string& name, const std::string& url,
                                                 const server_defaults& defaults) {
  auto parsed = parse_server_url(url, defaults.user, defaults.password);
  if (!parsed) return std::move(parsed).err();
  server_connection c;
  c.name = name;
  c.runtime = parsed->endpoint;
  c.ddl = parsed->endpoint;
  if (defaults.ddl_user) {
    c.ddl.user = *defaults.ddl_user;
    c.ddl.password = defaults.ddl_password.value_or("");
  }
  c.maintenance_database = parsed->maintenance_database;
  return c;
}

server_directory::server_directory(std::shared_ptr<db::pool> master, server_connection main, server_defaults defaults)
    : master_(std::move(master)), main_(std::move(main)), defaults_(std::move(defaults)) {
  main_.name = std::string(main_server_name);
}

std::optional<server_connection> server_directory::find(const std::string& name) const {
  if (name == main_server_name) return main_;
  std::lock_guard lock(mutex_);
  if (auto it = servers_.find(name); it != servers_.end()) return it->second;
  return std::nullopt;
}

boost::asio::awaitable<std::optional<server_connection>> server_directory::lookup(const std::string& name) {
  if (name == main_server_name) co_return main_;
  {
    std::lock_guard lock(mutex_);
    if (!stale_)
      if (auto it = servers_.find(name); it != servers_.end()) co_return it->second;
  }
  co_await reload();
  co_return find(name);
}

boost::asio::awaitable<std::vector<server_connection>> server_directory::all() {
  co_await reload();
  std::vector<server_connection> out{main_};
  std::lock_guard lock(mutex_);
  for (const auto& name : order_)
    if (auto it = servers_.find(name); it != servers_.end()) out.push_back(it->second);
  co_return out;
}

void server_directory::invalidate() {
  std::lock_guard lock(mutex_);
  stale_ = true;
  ++generation_;
}

boost::asio::awaitable<void> server_directory::reload() {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    generation = generation_;
  }
  std::vector<db::servers::stored_server> rows;
  {
    auto conn = co_await master_->acquire();
    rows = co_await db::servers::list(*conn);
  }
  std::unordered_map<std::string, server_connection> loaded;
  std::vector<std::string> order;
  for (const auto& row : rows) {
    if (row.record.name == main_server_name || !row.url) continue;
    auto c = server_connection_from(row.record.name, *row.url, defaults_);
    if (!c) {  // stored by an operator through the API, which checked it: a bug or a hand edit
      spdlog::error("database server {}: its stored URL is not usable; its tenants cannot be served", row.record.name);
      continue;
    }
    order.push_back(row.record.name);
    loaded.emplace(row.record.name, std::move(*c));
  }
  std::lock_guard lock(mutex_);
  servers_ = std::move(loaded);
  order_ = std::move(order);
  // An invalidation that came while loading may describe a change the load missed.
  if (generation == generation_) stale_ = false;
}

}  // namespace tenantd::tenancy

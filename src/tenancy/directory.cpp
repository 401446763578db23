// Tenant directory: cached tenant records with generation-checked fills.
#include "tenancy/directory.hpp"

#include "db/master_repository.hpp"

namespace tenantd::tenancy {

directory::directory(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl)
    : master_(std::move(master)), ttl_(ttl) {}

boost::asio::awaitable<std::shared_ptr<const tenant_record>> directory::find(const std::string& id) {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      if (std::chrono::steady_clock::now() - it->second.loaded < ttl_) co_return it->second.tenant;
      entries_.erase(it);
    }
    generation = generation_;
  }
  auto conn = co_await master_->acquire();
  auto loaded = co_await db::master::find_tenant(*conn, id);
  if (!loaded) co_return nullptr;
  auto tenant = std::make_shared<const tenant_record>(std::move(*loaded));
  {
    std::lock_guard lock(mutex_);
    note_placement(*tenant);
    if (generation == generation_ && entries_.size() < 100000)
      entries_[id] = entry{tenant, std::chrono::steady_clock::now()};
  }
  co_return tenant;
}

void directory::note_placement(const tenant_record& tenant) {
  auto it = placements_.find(tenant.id);
  if (it == placements_.end()) {
    if (placements_.size() >= 100000) placements_.clear();
    placements_.emplace(tenant.id, placement{tenant.db_server, tenant.database_name, std::nullopt});
    return;
  }
  auto& seen = it->second;
  if (seen.server != tenant.db_server || seen.database != tenant.database_name) {
    seen.server = tenant.db_server;
    seen.database = tenant.database_name;
    seen.moved_at = std::chrono::steady_clock::now();
  }
}

std::optional<std::chrono::steady_clock::time_point> directory::moved_at(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto it = placements_.find(id);
  if (it == placements_.end()) return std::nullopt;
  return it->second.moved_at;
}

void directory::invalidate(const std::string& id) {
  std::lock_guard lock(mutex_);
  ++generation_;
  entries_.erase(id);
}

void directory::clear() {
  std::lock_guard lock(mutex_);
  ++generation_;
  entries_.clear();
}

}  // namespace tenantd::tenancy

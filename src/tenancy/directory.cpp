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
    if (generation == generation_ && entries_.size() < 100000)
      entries_[id] = entry{tenant, std::chrono::steady_clock::now()};
  }
  co_return tenant;
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

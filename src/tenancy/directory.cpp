// Tenant directory: cached tenant records with generation-checked fills.
#include "tenancy/directory.hpp"

#include <algorithm>

#include "db/master_repository.hpp"
#include "domain/io_thread.hpp"

namespace tenantd::tenancy {

directory::directory(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl, std::size_t copies)
    : master_(std::move(master)), ttl_(ttl), copies_(std::max<std::size_t>(1, copies)) {}

boost::asio::awaitable<std::shared_ptr<const tenant_record>> directory::find(const std::string& id) {
  // Chosen once: the fill below goes to the copy whose generation it read.
  auto& mine = copies_[io_thread::shard(copies_.size())];
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mine.mutex);
    if (auto it = mine.entries.find(id); it != mine.entries.end()) {
      if (std::chrono::steady_clock::now() - it->second.loaded < ttl_) co_return it->second.tenant;
      mine.entries.erase(it);
    }
    generation = mine.generation;
  }
  auto conn = co_await master_->acquire();
  auto loaded = co_await db::master::find_tenant(*conn, id);
  if (!loaded) co_return nullptr;
  auto tenant = std::make_shared<const tenant_record>(std::move(*loaded));
  {
    std::lock_guard lock(mine.mutex);
    if (generation == mine.generation && mine.entries.size() < 100000)
      mine.entries[id] = entry{tenant, std::chrono::steady_clock::now()};
  }
  co_return tenant;
}

void directory::invalidate(const std::string& id) {
  for (auto& c : copies_) {
    std::lock_guard lock(c.mutex);
    ++c.generation;
    c.entries.erase(id);
  }
}

void directory::clear() {
  for (auto& c : copies_) {
    std::lock_guard lock(c.mutex);
    ++c.generation;
    c.entries.clear();
  }
}

}  // namespace tenantd::tenancy

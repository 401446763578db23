// Access cache: keyed by tenant, account and session; every key includes the tenant.
// A hit allocates nothing: the key is looked up as three string_views and the row is shared.
#include "tenancy/access_cache.hpp"

#include <algorithm>
#include <ctime>

namespace tenantd::tenancy {

std::size_t access_cache::key_hash::operator()(const key_view& k) const noexcept {
  const std::hash<std::string_view> h;
  std::size_t seed = h(k.session_id);
  seed ^= h(k.account_id) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  seed ^= h(k.tenant_id) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  return seed;
}

access_cache::access_cache(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl,
                           std::chrono::milliseconds ttl_unlistened, wall_clock_fn now)
    : master_(std::move(master)), ttl_(ttl), ttl_unlistened_(ttl_unlistened), now_(std::move(now)) {
  if (!now_) now_ = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
}

bool access_cache::fresh(const entry& e, std::chrono::steady_clock::time_point t) const {
  if (t - e.loaded >= (listening_ ? ttl_ : ttl_unlistened_)) return false;
  // A live session that has since expired must be looked at again (it is not live any more).
  return !(e.row && e.row->session_live && now_() >= e.row->session_expires_at);
}

boost::asio::awaitable<std::shared_ptr<const db::master::access_row>> access_cache::lookup(
    std::string_view tenant_id, std::string_view account_id, std::string_view session_id) {
  const key_view wanted{tenant_id, account_id, session_id};
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(wanted); it != entries_.end()) {
      if (fresh(it->second, std::chrono::steady_clock::now())) co_return it->second.row;
      entries_.erase(it);
    }
    generation = generation_;
  }
  const std::string t(tenant_id), a(account_id), s(session_id);
  auto conn = co_await master_->acquire();
  auto loaded = co_await db::master::load_access(*conn, t, a, s);
  std::shared_ptr<const db::master::access_row> row;
  if (loaded) row = std::make_shared<const db::master::access_row>(std::move(*loaded));
  {
    std::lock_guard lock(mutex_);
    if (generation == generation_) {
      if (entries_.size() >= 200000) entries_.clear();
      entries_.insert_or_assign(key{t, a, s}, entry{row, std::chrono::steady_clock::now()});
    }
  }
  co_return row;
}

void access_cache::invalidate(const invalidation& change) {
  std::lock_guard lock(mutex_);
  ++generation_;
  using scope = invalidation::scope;
  switch (change.what) {
    case scope::tenant:
      std::erase_if(entries_, [&](const auto& kv) { return kv.first.tenant_id == change.tenant_id; });
      break;
    case scope::account:
      std::erase_if(entries_, [&](const auto& kv) { return kv.first.account_id == change.account_id; });
      break;
    case scope::session:
      std::erase_if(entries_, [&](const auto& kv) { return kv.first.session_id == change.session_id; });
      break;
    case scope::member:
      std::erase_if(entries_, [&](const auto& kv) {
        return kv.first.tenant_id == change.tenant_id && kv.first.account_id == change.account_id;
      });
      break;
    case scope::everything: entries_.clear(); break;
    case scope::server:  // access does not depend on placement
    case scope::hold:
    case scope::release: break;
  }
}

void access_cache::clear() {
  std::lock_guard lock(mutex_);
  ++generation_;
  entries_.clear();
}

std::size_t access_cache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace tenantd::tenancy

// Access cache: keyed by tenant, account and session; every key includes the tenant.
#include "tenancy/access_cache.hpp"

#include <algorithm>

namespace tenantd::tenancy {
namespace {
std::string key_of(const std::string& t, const std::string& a, const std::string& s) {
  std::string key;
  key.reserve(t.size() + a.size() + s.size() + 2);
  key.append(t).append(1, '\n').append(a).append(1, '\n').append(s);
  return key;
}
}  // namespace

access_cache::access_cache(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl)
    : master_(std::move(master)), ttl_(ttl) {}

boost::asio::awaitable<std::optional<db::master::access_row>> access_cache::lookup(const std::string& tenant_id,
                                                                                   const std::string& account_id,
                                                                                   const std::string& session_id) {
  const auto key = key_of(tenant_id, account_id, session_id);
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (auto it = entries_.find(key); it != entries_.end()) {
      if (std::chrono::steady_clock::now() - it->second.loaded < ttl_) co_return it->second.row;
      entries_.erase(it);
    }
    generation = generation_;
  }
  auto conn = co_await master_->acquire();
  auto row = co_await db::master::load_access(*conn, tenant_id, account_id, session_id);
  {
    std::lock_guard lock(mutex_);
    if (generation == generation_) {
      if (entries_.size() >= 200000) entries_.clear();
      entries_[key] = entry{tenant_id, account_id, session_id, row, std::chrono::steady_clock::now()};
    }
  }
  co_return row;
}

void access_cache::invalidate(std::string_view payload) {
  std::lock_guard lock(mutex_);
  ++generation_;
  const auto colon = payload.find(':');
  const auto kind = payload.substr(0, colon);
  const auto arg = colon == std::string_view::npos ? std::string_view{} : payload.substr(colon + 1);
  if (kind == "tenant") {
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.tenant_id == arg; });
  } else if (kind == "account") {
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.account_id == arg; });
  } else if (kind == "session") {
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.session_id == arg; });
  } else if (kind == "member") {
    const auto sep = arg.find(':');
    const auto t = arg.substr(0, sep);
    const auto a = sep == std::string_view::npos ? std::string_view{} : arg.substr(sep + 1);
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.tenant_id == t && kv.second.account_id == a; });
  } else {
    entries_.clear();
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

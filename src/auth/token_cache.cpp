#include "auth/token_cache.hpp"

#include <algorithm>

namespace tenantd::auth {

token_cache::token_cache(std::size_t max_entries)
    : max_per_shard_(std::max<std::size_t>(1, max_entries / shard_count)) {}

token_cache::shard& token_cache::shard_for(std::string_view token) const noexcept {
  // The map hashes the whole token; the shard takes bits the bucket index does not use first.
  return shards_[(transparent_hash{}(token) >> 48) % shard_count];
}

std::shared_ptr<const claims> token_cache::find(std::string_view token, std::int64_t now) const {
  auto& s = shard_for(token);
  std::lock_guard lock(s.mutex);
  const auto it = s.entries.find(token);
  if (it == s.entries.end() || now > it->second.valid_until) return nullptr;
  return it->second.verified;
}

void token_cache::store(std::string_view token, std::shared_ptr<const claims> verified, std::int64_t valid_until,
                        std::int64_t now) {
  auto& s = shard_for(token);
  std::lock_guard lock(s.mutex);
  if (s.entries.size() >= max_per_shard_ && !s.entries.contains(token)) {
    std::erase_if(s.entries, [&](const auto& kv) { return kv.second.valid_until < now; });
    if (s.entries.size() >= max_per_shard_) s.entries.clear();
  }
  s.entries.insert_or_assign(std::string(token), entry{std::move(verified), valid_until});
}

void token_cache::clear() {
  for (auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    s.entries.clear();
  }
}

std::size_t token_cache::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.entries.size();
  }
  return n;
}

}  // namespace tenantd::auth

#include "auth/token_cache.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

namespace tenantd::auth {

token_cache::token_cache(std::size_t max_entries)
    : max_per_shard_(std::max<std::size_t>(1, max_entries / shard_count)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  randombytes_buf(key_, sizeof key_);
}

token_cache::digest token_cache::digest_of(std::string_view token) const noexcept {
  digest d{};
  crypto_generichash(d.data(), d.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(), key_,
                     sizeof key_);
  return d;
}

token_cache::shard& token_cache::shard_for(const digest& d) const noexcept {
  return shards_[d[31] % shard_count];  // the map's hash uses the first bytes
}

std::shared_ptr<const claims> token_cache::find(std::string_view token, std::int64_t now) const {
  const auto d = digest_of(token);
  auto& s = shard_for(d);
  std::lock_guard lock(s.mutex);
  const auto it = s.entries.find(d);
  if (it == s.entries.end() || now > it->second.valid_until) return nullptr;
  return it->second.verified;
}

void token_cache::store(std::string_view token, std::shared_ptr<const claims> verified, std::int64_t valid_until,
                        std::int64_t now) {
  const auto d = digest_of(token);
  auto& s = shard_for(d);
  std::lock_guard lock(s.mutex);
  if (s.entries.size() >= max_per_shard_ && !s.entries.contains(d)) {
    std::erase_if(s.entries, [&](const auto& kv) { return kv.second.valid_until < now; });
    if (s.entries.size() >= max_per_shard_) s.entries.clear();
  }
  s.entries.insert_or_assign(d, entry{std::move(verified), valid_until});
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

// Claims of access tokens that were verified before, keyed by the token's exact bytes, so a
// token presented again skips base64, JSON parsing and the MAC. A hit returns the same claims
// verify() returned, as long as the token has not expired (exp + leeway): the only check whose
// answer changes with time (nbf and iat can only become true). Bounded: a full shard first
// drops expired entries, then everything it holds. Thread-safe, sharded to keep I/O threads
// from queueing on one mutex.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/jwt.hpp"

namespace tenantd::auth {

class token_cache {
 public:
  static constexpr std::size_t default_max_entries = 65536;
  explicit token_cache(std::size_t max_entries = default_max_entries);

  // The claims of `token` if it was stored and `now` <= its `valid_until`; else null.
  std::shared_ptr<const claims> find(std::string_view token, std::int64_t now) const;
  // Stores a verified token's claims until `valid_until` (Unix seconds: exp + leeway); `now`
  // tells which entries a full shard may drop first.
  void store(std::string_view token, std::shared_ptr<const claims> verified, std::int64_t valid_until,
             std::int64_t now);
  void clear();
  std::size_t size() const;

 private:
  struct transparent_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct entry {
    std::shared_ptr<const claims> verified;
    std::int64_t valid_until{0};
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, entry, transparent_hash, std::equal_to<>> entries;
  };
  static constexpr std::size_t shard_count = 16;
  shard& shard_for(std::string_view token) const noexcept;

  std::size_t max_per_shard_;
  mutable std::array<shard, shard_count> shards_;
};

}  // namespace tenantd::auth

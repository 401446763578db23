// Claims of access tokens that were verified before, so a token presented again skips
// base64, JSON parsing and the MAC. Keyed by a keyed BLAKE2b-256 digest of the token's exact
// bytes (the key is random per process): 32 bytes per entry instead of the token, and no two
// tokens share a key short of breaking BLAKE2b. A hit returns the same claims verify()
// returned, as long as the token has not expired (exp + leeway): the only check whose answer
// changes with time (nbf and iat can only become true). Bounded: a full shard first drops
// expired entries, then everything it holds. Thread-safe, sharded to keep I/O threads from
// queueing on one mutex.
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
  using digest = std::array<unsigned char, 32>;
  struct digest_hash {
    std::size_t operator()(const digest& d) const noexcept {
      std::size_t h = 0;
      for (std::size_t i = 0; i < sizeof h; ++i) h = (h << 8) | d[i];
      return h;
    }
  };
  struct entry {
    std::shared_ptr<const claims> verified;
    std::int64_t valid_until{0};
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<digest, entry, digest_hash> entries;
  };
  static constexpr std::size_t shard_count = 16;
  digest digest_of(std::string_view token) const noexcept;
  shard& shard_for(const digest& d) const noexcept;

  std::size_t max_per_shard_;
  unsigned char key_[32]{};
  mutable std::array<shard, shard_count> shards_;
};

}  // namespace tenantd::auth

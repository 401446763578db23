// Request quotas per tenant and per session (security catalogue S35): token buckets checked
// on every authenticated request, after the access token is verified. No Asio, Beast or JSON:
// plain state behind a few mutexes, with an injectable clock. Each process keeps its own
// buckets, so N processes let N times the quota through.
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tenantd::api {

// One token bucket per key: `rate` tokens per second, holding at most `burst`; a new key
// starts full. Keys are spread over 16 shards, each with its own mutex, so requests of
// different keys rarely wait on each other. Memory is bounded: a shard holds at most
// max_keys / 16 keys (rounded up); when a new key finds its shard full, buckets that have
// refilled to full are dropped (they carry no information), and if none is, the fullest
// eighth of the shard. Taking a token for a known key does not allocate.
class token_buckets {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr std::size_t shard_count = 16;

  // rate > 0, burst >= 1, max_keys >= 1.
  token_buckets(double rate, double burst, std::size_t max_keys);

  // Takes one token from the key's bucket at `now`: 0 when there was one, else the whole
  // seconds (at least 1) until the bucket holds a token again.
  std::int64_t take(std::string_view key, time_point now);
  // Keys tracked now (at most max_keys rounded up to a multiple of shard_count).
  std::size_t size() const;

 private:
  struct bucket {
    double tokens;
    time_point refilled;
  };
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept { return std::hash<std::string_view>{}(key); }
  };
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, bucket, key_hash, std::equal_to<>> buckets;
  };
  // Tokens in `b` at `now`, counting the refill since it was last touched (at most burst_).
  double level(const bucket& b, time_point now) const noexcept;
  // Makes room for one more key in a full shard (its mutex held).
  void make_room(shard& s, time_point now);

  double rate_;
  double burst_;
  std::size_t keys_per_shard_;
  std::array<shard, shard_count> shards_;
};

enum class quota_scope {
  tenant,   // all requests made with the tenant's tokens
  session,  // requests made with one login's tokens (the token's `sid`)
};
std::string_view to_string(quota_scope scope) noexcept;

struct quota_settings {
  double tenant_rate{1000};      // TENANT_REQUESTS_PER_SECOND; 0 = no tenant quota
  double tenant_burst{2000};     // TENANT_REQUEST_BURST
  double session_rate{200};      // SESSION_REQUESTS_PER_SECOND; 0 = no session quota
  double session_burst{400};     // SESSION_REQUEST_BURST
  std::size_t max_keys{100000};  // per scope
};

// Why a request was refused: the quota it went past and the whole seconds to wait.
struct quota_denial {
  quota_scope scope;
  std::int64_t retry_after;
};

class request_quota {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

  explicit request_quota(const quota_settings& settings, clock_fn clock = {});

  // Counts one request of `session_id` in `tenant_id`. The session quota is checked first,
  // so a session past its own quota does not use up its tenant's. nullopt: go on.
  std::optional<quota_denial> admit(std::string_view tenant_id, std::string_view session_id);
  // Requests refused so far in `scope`.
  std::uint64_t throttled(quota_scope scope) const noexcept;

 private:
  std::optional<token_buckets> tenants_;
  std::optional<token_buckets> sessions_;
  clock_fn clock_;
  std::atomic<std::uint64_t> throttled_tenant_{0};
  std::atomic<std::uint64_t> throttled_session_{0};
};

}  // namespace tenantd::api

// Fixed-window counters keyed by a string (account, client address, ...), with an
// injectable clock. Thread-safe. Used for login failures, registrations and tenant creation.
// Memory is bounded: keys are stored as 16-byte keyed digests (never the caller's text), and
// at most `max_keys` are tracked; past that, expired windows are pruned and then the least
// significant ones (below the limit, fewest events, oldest) are forgotten in batches.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tenantd::auth {

class rate_limiter {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
  static constexpr std::size_t default_max_keys = 100000;

  // `limit` events per `window` per key; `max_keys` >= 1.
  rate_limiter(std::int64_t limit, std::chrono::seconds window, clock_fn clock = {},
               std::size_t max_keys = default_max_keys);

  // Seconds until the key's window ends if it is blocked now; nullopt if it is not.
  std::optional<std::int64_t> blocked_for(std::string_view key) const;
  // Counts one event; returns true if the key is now (or already was) at the limit.
  bool hit(std::string_view key);
  // Reserves one event still in flight (e.g. a password being checked): refused, with the
  // seconds to wait, when counted events plus those in flight reach the limit. Every admitted
  // reservation must be settled exactly once.
  std::optional<std::int64_t> reserve(std::string_view key);
  // Ends a reservation: `counted` makes it an event (as hit() does), else it is forgotten.
  void settle(std::string_view key, bool counted);
  void reset(std::string_view key);
  // Seconds until the key's window ends (at least 1).
  std::int64_t retry_after(std::string_view key) const;
  // Keys tracked now (at most max_keys).
  std::size_t size() const;

 private:
  struct window_state {
    std::chrono::steady_clock::time_point start;
    std::int64_t count{0};
    std::int64_t in_flight{0};  // reserved, not yet settled
  };
  std::chrono::steady_clock::time_point now() const;
  std::string digest(std::string_view key) const;
  std::int64_t seconds_left(const window_state& w, std::chrono::steady_clock::time_point t) const;
  // Makes room for one new key: drops expired windows, then a batch of the least significant.
  void make_room(std::chrono::steady_clock::time_point t);
  // The key's window (created if missing), restarted if it is over. Holds mutex_.
  window_state& current_window(std::string key, std::chrono::steady_clock::time_point t);

  std::int64_t limit_;
  std::chrono::seconds window_;
  clock_fn clock_;
  std::size_t max_keys_;
  unsigned char digest_key_[32]{};  // random per process: digests cannot be precomputed
  mutable std::mutex mutex_;
  std::unordered_map<std::string, window_state> windows_;
  std::chrono::steady_clock::time_point last_prune_{};
};

}  // namespace tenantd::auth

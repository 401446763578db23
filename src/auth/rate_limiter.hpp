// Fixed-window counters keyed by a string (account, client address, ...), with an
// injectable clock. Thread-safe. Used for login failures and tenant creation limits.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tenantd::auth {

class rate_limiter {
 public:
  using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

  rate_limiter(std::int64_t limit, std::chrono::seconds window, clock_fn clock = {});

  // True while the key has reached the limit in its current window.
  bool blocked(const std::string& key) const;
  // Counts one event; returns true if the key is now (or already was) at the limit.
  bool hit(const std::string& key);
  void reset(const std::string& key);
  // Seconds until the key's window ends (at least 1).
  std::int64_t retry_after(const std::string& key) const;

 private:
  struct window_state {
    std::chrono::steady_clock::time_point start;
    std::int64_t count{0};
  };
  std::chrono::steady_clock::time_point now() const;
  void prune(std::chrono::steady_clock::time_point now);

  std::int64_t limit_;
  std::chrono::seconds window_;
  clock_fn clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, window_state> windows_;
  std::chrono::steady_clock::time_point last_prune_{};
};

}  // namespace tenantd::auth

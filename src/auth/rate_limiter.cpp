// Fixed-window rate limiting.
#include "auth/rate_limiter.hpp"

#include <algorithm>

namespace tenantd::auth {

rate_limiter::rate_limiter(std::int64_t limit, std::chrono::seconds window, clock_fn clock)
    : limit_(limit), window_(window), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point rate_limiter::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

bool rate_limiter::blocked(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = windows_.find(key);
  if (it == windows_.end()) return false;
  if (now() - it->second.start >= window_) return false;
  return it->second.count >= limit_;
}

bool rate_limiter::hit(const std::string& key) {
  std::lock_guard lock(mutex_);
  const auto t = now();
  prune(t);
  auto& w = windows_[key];
  if (w.count == 0 || t - w.start >= window_) {
    w.start = t;
    w.count = 0;
  }
  ++w.count;
  return w.count >= limit_;
}

void rate_limiter::reset(const std::string& key) {
  std::lock_guard lock(mutex_);
  windows_.erase(key);
}

std::int64_t rate_limiter::retry_after(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = windows_.find(key);
  if (it == windows_.end()) return 1;
  // Rounded up: a client that waits this long finds its window over.
  const auto left = std::chrono::ceil<std::chrono::seconds>(window_ - (now() - it->second.start)).count();
  return std::max<std::int64_t>(1, left);
}

void rate_limiter::prune(std::chrono::steady_clock::time_point t) {
  if (t - last_prune_ < window_ && windows_.size() < 100000) return;
  last_prune_ = t;
  std::erase_if(windows_, [&](const auto& kv) { return t - kv.second.start >= window_; });
}

}  // namespace tenantd::auth

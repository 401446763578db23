// Fixed-window rate limiting with a bounded number of keys.
#include "auth/rate_limiter.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>
#include <tuple>
#include <vector>

namespace tenantd::auth {

rate_limiter::rate_limiter(std::int64_t limit, std::chrono::seconds window, clock_fn clock, std::size_t max_keys)
    : limit_(limit), window_(window), clock_(std::move(clock)), max_keys_(std::max<std::size_t>(1, max_keys)) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium could not be initialised");
  crypto_generichash_keygen(digest_key_);
}

std::chrono::steady_clock::time_point rate_limiter::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

std::string rate_limiter::digest(std::string_view key) const {
  std::string out(16, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest_key_, sizeof digest_key_);
  return out;
}

std::int64_t rate_limiter::seconds_left(const window_state& w, std::chrono::steady_clock::time_point t) const {
  // Rounded up: a client that waits this long finds its window over.
  const auto left = std::chrono::ceil<std::chrono::seconds>(window_ - (t - w.start)).count();
  return std::max<std::int64_t>(1, left);
}

std::optional<std::int64_t> rate_limiter::blocked_for(std::string_view key) const {
  const auto k = digest(key);
  std::lock_guard lock(mutex_);
  auto it = windows_.find(k);
  if (it == windows_.end()) return std::nullopt;
  const auto t = now();
  if (t - it->second.start >= window_ || it->second.count < limit_) return std::nullopt;
  return seconds_left(it->second, t);
}

rate_limiter::window_state& rate_limiter::current_window(std::string key, std::chrono::steady_clock::time_point t) {
  if (t - last_prune_ >= window_) {
    last_prune_ = t;
    std::erase_if(windows_, [&](const auto& kv) { return t - kv.second.start >= window_ && kv.second.in_flight == 0; });
  }
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= max_keys_) make_room(t);
    it = windows_.emplace(std::move(key), window_state{t, 0, 0}).first;
  }
  auto& w = it->second;
  if (w.count == 0 || t - w.start >= window_) {
    w.start = t;
    w.count = 0;
  }
  return w;
}

bool rate_limiter::hit(std::string_view key) {
  auto k = digest(key);
  std::lock_guard lock(mutex_);
  auto& w = current_window(std::move(k), now());
  ++w.count;
  return w.count >= limit_;
}

std::optional<std::int64_t> rate_limiter::reserve(std::string_view key) {
  auto k = digest(key);
  std::lock_guard lock(mutex_);
  const auto t = now();
  auto& w = current_window(std::move(k), t);
  if (w.count + w.in_flight >= limit_) return w.count >= limit_ ? seconds_left(w, t) : 1;
  ++w.in_flight;
  return std::nullopt;
}

void rate_limiter::settle(std::string_view key, bool counted) {
  auto k = digest(key);
  std::lock_guard lock(mutex_);
  auto& w = current_window(std::move(k), now());
  if (w.in_flight > 0) --w.in_flight;
  if (counted) ++w.count;
}

void rate_limiter::make_room(std::chrono::steady_clock::time_point t) {
  last_prune_ = t;
  std::erase_if(windows_, [&](const auto& kv) { return t - kv.second.start >= window_; });
  if (windows_.size() < max_keys_) return;
  // Still full of live windows (e.g. someone spraying random emails): forget a batch at once,
  // so the O(n) pass is paid once per max_keys/8 new keys. Blocked keys go last, so a lockout
  // survives spraying as long as fewer than max_keys keys are blocked at the same time.
  using entry = std::tuple<bool, std::int64_t, std::chrono::steady_clock::time_point, decltype(windows_)::iterator>;
  std::vector<entry> order;
  order.reserve(windows_.size());
  for (auto it = windows_.begin(); it != windows_.end(); ++it)
    order.emplace_back(it->second.count + it->second.in_flight >= limit_, it->second.count, it->second.start, it);
  const std::size_t batch = std::min(order.size(), max_keys_ / 8 + 1);
  const auto less_significant = [](const entry& a, const entry& b) {
    return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
           std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
  };
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(batch - 1), order.end(),
                   less_significant);
  for (std::size_t i = 0; i < batch; ++i) windows_.erase(std::get<3>(order[i]));
}

void rate_limiter::reset(std::string_view key) {
  const auto k = digest(key);
  std::lock_guard lock(mutex_);
  windows_.erase(k);
}

std::int64_t rate_limiter::retry_after(std::string_view key) const {
  const auto k = digest(key);
  std::lock_guard lock(mutex_);
  auto it = windows_.find(k);
  if (it == windows_.end()) return 1;
  return seconds_left(it->second, now());
}

std::size_t rate_limiter::size() const {
  std::lock_guard lock(mutex_);
  return windows_.size();
}

}  // namespace tenantd::auth

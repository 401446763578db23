// Token buckets for the per-tenant and per-session request quotas.
#include "api/request_quota.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <vector>

namespace tenantd::api {

token_buckets::token_buckets(double rate, double burst, std::size_t max_keys)
    : rate_(rate),
      burst_(burst),
      keys_per_shard_((std::max<std::size_t>(1, max_keys) + shard_count - 1) / shard_count) {
  if (!(rate > 0) || !(burst >= 1)) throw std::invalid_argument("token_buckets: rate must be > 0 and burst >= 1");
}

double token_buckets::level(const bucket& b, time_point now) const noexcept {
  const double elapsed = now > b.refilled ? std::chrono::duration<double>(now - b.refilled).count() : 0.0;
  return std::min(burst_, b.tokens + elapsed * rate_);
}

std::int64_t token_buckets::take(std::string_view key, time_point now) {
  const std::size_t hash = key_hash{}(key);
  // The map hashes with the low bits; the shard comes from the high ones.
  shard& s = shards_[(hash >> (sizeof(std::size_t) * 8 - 4)) % shard_count];
  std::lock_guard lock(s.mutex);
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= keys_per_shard_) make_room(s, now);
    it = s.buckets.emplace(std::string(key), bucket{burst_, now}).first;
  }
  bucket& b = it->second;
  b.tokens = level(b, now);
  b.refilled = std::max(b.refilled, now);
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  // Rounded up: a client that waits this long finds a token.
  const double wait = (1 - b.tokens) / rate_;
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait)));
}

void token_buckets::make_room(shard& s, time_point now) {
  std::erase_if(s.buckets, [&](const auto& kv) { return level(kv.second, now) >= burst_; });
  if (s.buckets.size() < keys_per_shard_) return;
  // Every bucket is in use: forget the fullest eighth (closest to what a new key gets).
  std::vector<std::pair<double, decltype(s.buckets)::iterator>> by_level;
  by_level.reserve(s.buckets.size());
  for (auto it = s.buckets.begin(); it != s.buckets.end(); ++it) by_level.emplace_back(level(it->second, now), it);
  const std::size_t drop = std::max<std::size_t>(1, by_level.size() / 8);
  std::nth_element(by_level.begin(), by_level.begin() + static_cast<std::ptrdiff_t>(drop - 1), by_level.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = 0; i < drop; ++i) s.buckets.erase(by_level[i].second);
}

std::size_t token_buckets::size() const {
  std::size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard lock(s.mutex);
    n += s.buckets.size();
  }
  return n;
}

std::string_view to_string(quota_scope scope) noexcept {
  switch (scope) {
    case quota_scope::tenant: return "tenant";
    case quota_scope::session: return "session";
  }
  return "unknown";
}

request_quota::request_quota(const quota_settings& settings, clock_fn clock) : clock_(std::move(clock)) {
  if (settings.tenant_rate > 0) tenants_.emplace(settings.tenant_rate, settings.tenant_burst, settings.max_keys);
  if (settings.session_rate > 0) sessions_.emplace(settings.session_rate, settings.session_burst, settings.max_keys);
}

std::optional<quota_denial> request_quota::admit(std::string_view tenant_id, std::string_view session_id) {
  if (!tenants_ && !sessions_) return std::nullopt;
  const auto now = clock_ ? clock_() : std::chrono::steady_clock::now();
  if (sessions_) {
    // Session ids are random UUIDs; the tenant goes into the key all the same. Composed on the
    // stack: tenant ids are at most 40 bytes, session ids 36.
    std::array<char, 128> buffer{};
    std::string spilled;
    std::string_view key;
    if (tenant_id.size() + 1 + session_id.size() <= buffer.size()) {
      auto end = std::copy(tenant_id.begin(), tenant_id.end(), buffer.begin());
      *end++ = '/';
      end = std::copy(session_id.begin(), session_id.end(), end);
      key = std::string_view(buffer.data(), static_cast<std::size_t>(end - buffer.begin()));
    } else {
      spilled = std::string(tenant_id) + '/' + std::string(session_id);
      key = spilled;
    }
    if (const auto wait = sessions_->take(key, now); wait > 0) {
      throttled_session_.fetch_add(1, std::memory_order_relaxed);
      return quota_denial{quota_scope::session, wait};
    }
  }
  if (tenants_) {
    if (const auto wait = tenants_->take(tenant_id, now); wait > 0) {
      throttled_tenant_.fetch_add(1, std::memory_order_relaxed);
      return quota_denial{quota_scope::tenant, wait};
    }
  }
  return std::nullopt;
}

std::uint64_t request_quota::throttled(quota_scope scope) const noexcept {
  return (scope == quota_scope::tenant ? throttled_tenant_ : throttled_session_).load(std::memory_order_relaxed);
}

}  // namespace tenantd::api

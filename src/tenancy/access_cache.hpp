// The per-request access check: is the tenant active, is the account still a member (with
// which role), is the session still live. One master query on a miss; cached per
// (tenant, account, session) and invalidated on every change, so a demotion, removal,
// logout or suspension takes effect at once while a request costs no query.
//
// Invalidations arrive through LISTEN/NOTIFY. While they do, an entry lives for `ttl` (long:
// it is only a backstop); while the listener is disconnected, changes may be missed, so an
// entry lives only `ttl_unlistened`. A session's own expiry is checked on every hit.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "db/master_repository.hpp"
#include "db/pool.hpp"
#include "domain/invalidation.hpp"

namespace tenantd::tenancy {

class access_cache {
 public:
  using wall_clock_fn = std::function<std::int64_t()>;  // Unix seconds
  access_cache(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl,
               std::chrono::milliseconds ttl_unlistened, wall_clock_fn now = {});

  // Null when the tenant does not exist. Throws db::unavailable_error.
  boost::asio::awaitable<std::shared_ptr<const db::master::access_row>> lookup(std::string_view tenant_id,
                                                                               std::string_view account_id,
                                                                               std::string_view session_id);

  // Drops the entries the change touches (every entry for `everything`).
  void invalidate(const invalidation& change);
  void clear();
  std::size_t size() const;
  // Whether invalidations are being received (the listener is connected); starts false.
  void set_listening(bool listening) noexcept { listening_ = listening; }

 private:
  struct key {
    std::string tenant_id;
    std::string account_id;
    std::string session_id;
  };
  struct key_view {
    std::string_view tenant_id;
    std::string_view account_id;
    std::string_view session_id;
  };
  struct key_hash {
    using is_transparent = void;
    std::size_t operator()(const key_view& k) const noexcept;
    std::size_t operator()(const key& k) const noexcept { return (*this)(view(k)); }
  };
  struct key_equal {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      const key_view x = view(a), y = view(b);
      return x.session_id == y.session_id && x.account_id == y.account_id && x.tenant_id == y.tenant_id;
    }
  };
  static key_view view(const key& k) noexcept { return {k.tenant_id, k.account_id, k.session_id}; }
  static key_view view(const key_view& k) noexcept { return k; }
  struct entry {
    std::shared_ptr<const db::master::access_row> row;
    std::chrono::steady_clock::time_point loaded;
  };
  bool fresh(const entry& e, std::chrono::steady_clock::time_point t) const;

  std::shared_ptr<db::pool> master_;
  std::chrono::milliseconds ttl_;
  std::chrono::milliseconds ttl_unlistened_;
  wall_clock_fn now_;
  std::atomic<bool> listening_{false};
  mutable std::mutex mutex_;
  std::unordered_map<key, entry, key_hash, key_equal> entries_;
  std::uint64_t generation_{0};
};

}  // namespace tenantd::tenancy

// The per-request access check: is the tenant active, is the account still a member (with
// which role), is the session still live. One master query on a miss; cached per
// (tenant, account, session) and invalidated on every change, so a demotion, removal,
// logout or suspension takes effect at once while a request costs no query.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "db/master_repository.hpp"
#include "db/pool.hpp"

namespace tenantd::tenancy {

class access_cache {
 public:
  access_cache(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl);

  // nullopt when the tenant does not exist. Throws db::unavailable_error.
  boost::asio::awaitable<std::optional<db::master::access_row>> lookup(const std::string& tenant_id,
                                                                       const std::string& account_id,
                                                                       const std::string& session_id);

  // Applies an invalidation payload ("tenant:<id>", "account:<id>", "member:<t>:<a>",
  // "session:<id>"); anything else clears everything.
  void invalidate(std::string_view payload);
  void clear();
  std::size_t size() const;

 private:
  struct entry {
    std::string tenant_id;
    std::string account_id;
    std::string session_id;
    std::optional<db::master::access_row> row;
    std::chrono::steady_clock::time_point loaded;
  };
  std::shared_ptr<db::pool> master_;
  std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  std::uint64_t generation_{0};
};

}  // namespace tenantd::tenancy

// The tenant directory: tenant id -> record (status, database, schema version), served from
// memory, loaded from master on a miss, invalidated on change (locally and through
// LISTEN/NOTIFY), with a TTL as the fallback if a notification is lost.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "db/pool.hpp"
#include "domain/records.hpp"

namespace tenantd::tenancy {

class directory {
 public:
  directory(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl);

  // The tenant, whatever its status; null if no such id. Shared, not copied: a request
  // looks its tenant up at least once. Throws db::unavailable_error.
  boost::asio::awaitable<std::shared_ptr<const tenant_record>> find(const std::string& id);
  void invalidate(const std::string& id);
  void clear();
  // When a load last found the tenant on another server or database than the load before it
  // (a move's cut-over seen by this process); nullopt if never.
  std::optional<std::chrono::steady_clock::time_point> moved_at(const std::string& id) const;

 private:
  struct entry {
    std::shared_ptr<const tenant_record> tenant;
    std::chrono::steady_clock::time_point loaded;
  };
  std::shared_ptr<db::pool> master_;
  std::chrono::milliseconds ttl_;
  struct placement {
    std::optional<std::string> server;
    std::string database;
    std::optional<std::chrono::steady_clock::time_point> moved_at;
  };
  // Notes where a load found the tenant (with mutex_ held).
  void note_placement(const tenant_record& tenant);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;
  // Where each tenant was last seen, kept across invalidations (bounded like entries_).
  std::unordered_map<std::string, placement> placements_;
  std::uint64_t generation_{0};
};

}  // namespace tenantd::tenancy

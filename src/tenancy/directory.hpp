// The tenant directory: tenant id -> record (status, database, schema version), served from
// memory, loaded from master on a miss, invalidated on change (locally and through
// LISTEN/NOTIFY), with a TTL as the fallback if a notification is lost. Each I/O thread reads
// its own copy (io_thread::index()), so lookups on different threads share no lock; an
// invalidation empties the entry in every copy.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "db/pool.hpp"
#include "domain/records.hpp"

namespace tenantd::tenancy {

class directory {
 public:
  directory(std::shared_ptr<db::pool> master, std::chrono::milliseconds ttl, std::size_t copies = 1);

  // The tenant, whatever its status; null if no such id. Shared, not copied: a request
  // looks its tenant up at least once. Throws db::unavailable_error.
  boost::asio::awaitable<std::shared_ptr<const tenant_record>> find(const std::string& id);
  void invalidate(const std::string& id);
  void clear();

 private:
  struct entry {
    std::shared_ptr<const tenant_record> tenant;
    std::chrono::steady_clock::time_point loaded;
  };
  struct copy {
    std::mutex mutex;  // contended only by invalidations
    std::unordered_map<std::string, entry> entries;
    std::uint64_t generation{0};  // a fill that started before an invalidation is dropped
  };
  std::shared_ptr<db::pool> master_;
  std::chrono::milliseconds ttl_;
  std::vector<copy> copies_;  // one per I/O thread
};

}  // namespace tenantd::tenancy

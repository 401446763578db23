// The invalidation listeners of tenantd processes as PostgreSQL sees them (propagation and
// stale-move tests cut them to make a process miss a NOTIFY).
#pragma once
#include <set>
#include <string>

#include "support/pg_cluster.hpp"

namespace tenantd::test {

// The LISTEN connections on a master database, by backend pid.
inline std::set<std::string> listener_backends(const std::string& master) {
  std::set<std::string> pids;
  for (const auto& row :
       admin_query("SELECT pid FROM pg_stat_activity WHERE datname = '" + master + "' AND query LIKE 'LISTEN %'"))
    pids.insert(row.at(0));
  return pids;
}

}  // namespace tenantd::test

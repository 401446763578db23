// One invalidation -> the access cache and the tenant directory.
#include "tenancy/cache_invalidation.hpp"

namespace tenantd::tenancy {

void apply_invalidation(const invalidation& change, access_cache& access, directory& tenants, server_directory* servers,
                        write_gate* gate) {
  if (change.what == invalidation::scope::hold || change.what == invalidation::scope::release) {
    if (gate == nullptr) return;
    if (change.what == invalidation::scope::hold)
      gate->hold(change.tenant_id, std::chrono::milliseconds(change.hold_ms));
    else
      gate->release(change.tenant_id);
    return;
  }
  access.invalidate(change);
  if (change.what == invalidation::scope::tenant)
    tenants.invalidate(change.tenant_id);
  else if (change.what == invalidation::scope::everything)
    tenants.clear();
  if (servers && (change.what == invalidation::scope::server || change.what == invalidation::scope::everything))
    servers->invalidate();
}

}  // namespace tenantd::tenancy

// tenant_status <-> text.
#include "domain/tenant_status.hpp"

#include <ostream>

namespace tenantd {

std::string_view to_string(tenant_status state) noexcept {
  switch (state) {
    case tenant_status::provisioning: return "provisioning";
    case tenant_status::active: return "active";
    case tenant_status::suspended: return "suspended";
    case tenant_status::failed: return "failed";
    case tenant_status::deleting: return "deleting";
    case tenant_status::deleted: return "deleted";
  }
  return "failed";  // not reached: every value is named above
}

std::optional<tenant_status> parse_tenant_status(std::string_view text) noexcept {
  for (const auto state : all_tenant_statuses)
    if (to_string(state) == text) return state;
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& out, tenant_status state) { return out << to_string(state); }

}  // namespace tenantd

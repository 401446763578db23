// A tenant's lifecycle state, as master's tenants.status holds it. The state machine is in
// tenancy/ (provisioner, lifecycle); the text form is written and read here only.
#pragma once
#include <array>
#include <iosfwd>
#include <optional>
#include <string_view>

namespace tenantd {

enum class tenant_status {
  provisioning,  // being created (or restored); the advisory lock of a live creation is held
  active,        // serves requests
  suspended,     // kept, but its members' requests are refused (403 tenant_suspended)
  failed,        // a creation or migration left it unusable; an operator deletes it
  deleting,      // its database is being dropped
  deleted,       // gone; the row stays so the id is never handed to someone else
};

inline constexpr std::array<tenant_status, 6> all_tenant_statuses{tenant_status::provisioning, tenant_status::active,
                                                                  tenant_status::suspended,    tenant_status::failed,
                                                                  tenant_status::deleting,     tenant_status::deleted};

// "provisioning", "active", ... (the text in master and in the API).
std::string_view to_string(tenant_status state) noexcept;
// nullopt for any other text.
std::optional<tenant_status> parse_tenant_status(std::string_view text) noexcept;
// Writes to_string(state).
std::ostream& operator<<(std::ostream& out, tenant_status state);

// Active or suspended: the tenant has its database and its members (a suspended tenant's
// requests are refused one by one, but it may be backed up, resumed, joined by invitation).
constexpr bool is_live(tenant_status state) noexcept {
  return state == tenant_status::active || state == tenant_status::suspended;
}

}  // namespace tenantd

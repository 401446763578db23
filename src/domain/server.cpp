// Server states and the placement rule.
#include "domain/server.hpp"

namespace tenantd {

std::string_view to_string(server_state state) noexcept {
  switch (state) {
    case server_state::active: return "active";
    case server_state::draining: return "draining";
    case server_state::disabled: return "disabled";
  }
  return "disabled";
}

std::optional<server_state> parse_server_state(std::string_view text) noexcept {
  if (text == "active") return server_state::active;
  if (text == "draining") return server_state::draining;
  if (text == "disabled") return server_state::disabled;
  return std::nullopt;
}

bool can_take_tenant(const server_record& server) noexcept {
  return server.state == server_state::active && (!server.max_tenants || server.tenants < *server.max_tenants);
}

std::optional<std::string> choose_server(std::span<const server_record> servers) {
  const server_record* best = nullptr;
  for (const auto& s : servers) {
    if (!can_take_tenant(s) || s.weight <= 0) continue;
    if (!best) {
      best = &s;
      continue;
    }
    // tenants/weight compared without division: a.t * b.w < b.t * a.w
    const auto lhs = s.tenants * best->weight;
    const auto rhs = best->tenants * s.weight;
    if (lhs < rhs || (lhs == rhs && (s.tenants < best->tenants || (s.tenants == best->tenants && s.name < best->name))))
      best = &s;
  }
  if (!best) return std::nullopt;
  return best->name;
}

}  // namespace tenantd

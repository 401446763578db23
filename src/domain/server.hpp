// A PostgreSQL server tenant databases are placed on (master's db_servers), its state, and
// placement: which server a new tenant goes to. Pure: no I/O here.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace tenantd {

enum class server_state {
  active,    // takes new tenants
  draining,  // keeps its tenants, takes no new ones
  disabled,  // takes no new tenants (an operator's stop sign; its tenants are still served)
};

// "active", "draining", "disabled" (the text in master and in the API).
std::string_view to_string(server_state state) noexcept;
// nullopt for any other text.
std::optional<server_state> parse_server_state(std::string_view text) noexcept;

// The server of DB_HOST/DB_PORT, present from the start.
inline constexpr std::string_view main_server_name = "main";

// A server as the API shows it (never its credentials).
struct server_record {
  std::string name;
  std::string host;
  int port{5432};
  server_state state{server_state::active};
  std::int64_t tenants{0};  // tenants placed on it and not deleted
  std::int64_t weight{1};
  std::optional<std::int64_t> max_tenants;  // none: no limit
  std::string created_at;
};

// Whether a server can take one more tenant: active and under its max_tenants.
bool can_take_tenant(const server_record& server) noexcept;

// The server a new tenant goes to: among those that can take one, the lowest tenants ÷
// weight; ties go to the fewest tenants, then to the name (so the choice is deterministic).
// nullopt when none can.
std::optional<std::string> choose_server(std::span<const server_record> servers);

}  // namespace tenantd

// The invalidation payload's one formatter and one parser.
#include "domain/invalidation.hpp"

#include <charconv>

namespace tenantd {
namespace {

constexpr std::string_view everything_text = "*";

// A non-empty id without the separator.
bool valid_id(std::string_view id) { return !id.empty() && id.find(':') == std::string_view::npos; }

}  // namespace

std::string format(const invalidation& change) {
  switch (change.what) {
    case invalidation::scope::tenant: return "tenant:" + change.tenant_id;
    case invalidation::scope::account: return "account:" + change.account_id;
    case invalidation::scope::member: return "member:" + change.tenant_id + ":" + change.account_id;
    case invalidation::scope::session: return "session:" + change.session_id;
    case invalidation::scope::server: return "server:" + change.server;
    case invalidation::scope::hold: return "hold:" + change.tenant_id + ":" + std::to_string(change.hold_ms);
    case invalidation::scope::release: return "release:" + change.tenant_id;
    case invalidation::scope::everything: break;
  }
  return std::string(everything_text);
}

std::optional<invalidation> parse_invalidation(std::string_view payload) {
  if (payload == everything_text) return invalidation::everything();
  const auto colon = payload.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const auto kind = payload.substr(0, colon);
  const auto rest = payload.substr(colon + 1);
  if (kind == "member") {
    const auto sep = rest.find(':');
    if (sep == std::string_view::npos) return std::nullopt;
    const auto tenant = rest.substr(0, sep);
    const auto account = rest.substr(sep + 1);
    if (!valid_id(tenant) || !valid_id(account)) return std::nullopt;
    return invalidation::of_member(std::string(tenant), std::string(account));
  }
  if (kind == "hold") {
    const auto sep = rest.find(':');
    if (sep == std::string_view::npos) return std::nullopt;
    const auto tenant = rest.substr(0, sep);
    const auto ms = rest.substr(sep + 1);
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(ms.data(), ms.data() + ms.size(), value);
    if (!valid_id(tenant) || ec != std::errc{} || end != ms.data() + ms.size() || value <= 0 || value > 60000)
      return std::nullopt;
    return invalidation::hold_writes(std::string(tenant), value);
  }
  if (!valid_id(rest)) return std::nullopt;
  if (kind == "tenant") return invalidation::of_tenant(std::string(rest));
  if (kind == "account") return invalidation::of_account(std::string(rest));
  if (kind == "session") return invalidation::of_session(std::string(rest));
  if (kind == "server") return invalidation::of_server(std::string(rest));
  if (kind == "release") return invalidation::release_writes(std::string(rest));
  return std::nullopt;
}

}  // namespace tenantd

// One cache invalidation, as the server processes tell each other on the LISTEN/NOTIFY channel
// (db::master::invalidation_channel). Its payload text is written by format() and read by
// parse(), nowhere else: "tenant:<id>", "account:<id>", "member:<tenant>:<account>",
// "session:<id>", "server:<name>", "hold:<tenant>:<ms>", "release:<tenant>", or "*" for
// everything. (One SQL statement, db/master_repository.cpp's
// schema-version update, writes the "tenant:<id>" form itself, in its NOTIFY.)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tenantd {

struct invalidation {
  enum class scope {
    everything,  // "*": after a reconnect, or a payload this version cannot read
    tenant,      // the tenant's row changed (status, settings, schema version)
    account,     // an account changed, in every tenant
    member,      // one account's membership in one tenant (added, removed, role, logout of all sessions)
    session,     // one session ended
    server,      // a database server was added, changed or removed (the servers directory)
    hold,        // a move's cut-over: hold the tenant's writes for at most hold_ms (tenancy/write_gate.hpp)
    release,     // the cut-over is over: let the tenant's held writes go
  };
  scope what{scope::everything};
  std::string tenant_id;    // tenant, member
  std::string account_id;   // account, member
  std::string session_id;   // session
  std::string server;       // server
  std::int64_t hold_ms{0};  // hold

  static invalidation everything() { return {}; }
  static invalidation of_tenant(std::string id) { return {scope::tenant, std::move(id), {}, {}, {}}; }
  static invalidation of_account(std::string id) { return {scope::account, {}, std::move(id), {}, {}}; }
  static invalidation of_member(std::string tenant, std::string account) {
    return {scope::member, std::move(tenant), std::move(account), {}, {}};
  }
  static invalidation of_session(std::string id) { return {scope::session, {}, {}, std::move(id), {}}; }
  static invalidation of_server(std::string name) { return {scope::server, {}, {}, {}, std::move(name)}; }
  static invalidation hold_writes(std::string tenant, std::int64_t ms) {
    return {scope::hold, std::move(tenant), {}, {}, {}, ms};
  }
  static invalidation release_writes(std::string tenant) { return {scope::release, std::move(tenant), {}, {}, {}}; }

  bool operator==(const invalidation&) const = default;
};

// The payload text of `change`.
std::string format(const invalidation& change);
// The invalidation a payload names; nullopt when it is malformed (unknown kind, a missing or
// empty id, an id holding ':'). A receiver treats nullopt as everything: clearing too much
// costs a query, missing a change would serve stale access.
std::optional<invalidation> parse_invalidation(std::string_view payload);

}  // namespace tenantd

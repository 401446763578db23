// Master SQL for tenant moves (tenant_moves, V007): the durable state machine of
// tenancy/mover.hpp. Each function runs on the master connection it is given. Throws
// pg_error / unavailable_error.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "domain/move.hpp"

namespace tenantd::db::moves {

using boost::asio::awaitable;

struct new_move {
  std::string id;
  std::string tenant_id;
  std::string from;
  std::string to;
  std::string database_name;
  bool keep_source{false};
  std::string owner;  // the process that drives it (its lease starts now)
};
// Records a move in state copying; nullopt when the tenant has a move that is not finished.
awaitable<std::optional<move_record>> insert(connection& c, const new_move& move);

awaitable<std::optional<move_record>> find(connection& c, const std::string& id);
// The newest first, at most `limit`.
awaitable<std::vector<move_record>> list(connection& c, int limit);
// Every move of one tenant, the newest first.
awaitable<std::vector<move_record>> of_tenant(connection& c, const std::string& tenant_id);

// Sets the state (and renews the owner's lease); false when `owner` no longer owns the move
// (another process took it over) or it is finished.
awaitable<bool> set_state(connection& c, const std::string& id, const std::string& owner, move_state state);
// Renews the lease; false as set_state.
awaitable<bool> renew(connection& c, const std::string& id, const std::string& owner);
// One more cut-over tried.
awaitable<void> count_attempt(connection& c, const std::string& id);

// Takes over moves that are not finished and whose lease ran out (their process died): they
// are owned by `owner` afterwards. Under concurrent callers each move goes to one.
awaitable<std::vector<move_record>> claim_stale(connection& c, const std::string& owner, int lease_seconds);

// The commit point of a cut-over, in one master transaction: the tenant's placement becomes
// `to` (only if it is still `from`), the move records the flip and its freeze, and every
// process is told (the tenant's invalidation, delivered at commit). False when the placement
// was not `from` (nothing changed).
awaitable<bool> flip(connection& c, const move_record& move, double freeze_ms);

// done; the source is due to be dropped `grace_seconds` from now unless the move keeps it.
awaitable<void> finish(connection& c, const std::string& id, long long grace_seconds);
// aborted, with the reason.
awaitable<void> abort(connection& c, const std::string& id, const std::string& error);

// Finished moves whose source database is due to be dropped now.
awaitable<std::vector<move_record>> sources_due(connection& c);
awaitable<void> mark_source_dropped(connection& c, const std::string& id);

}  // namespace tenantd::db::moves

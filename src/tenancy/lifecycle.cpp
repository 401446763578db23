// Suspend, resume, delete, reconcile and check. Status changes are conditional updates
// (only from the allowed states) published on the invalidation channel in the same
// transaction, so they reach every server process at commit.
#include "tenancy/lifecycle.hpp"

#include "domain/server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "db/advisory_lock.hpp"
#include "db/master_repository.hpp"
#include "db/move_repository.hpp"
#include "db/session_repository.hpp"
#include "db/transaction.hpp"

namespace tenantd::tenancy {
namespace master = db::master;

lifecycle::lifecycle(std::shared_ptr<db::pool> master, provisioner& provisioning, pool_registry* pools,
                     std::function<void(const invalidation&)> on_change)
    : master_(std::move(master)), provisioning_(provisioning), pools_(pools), on_change_(std::move(on_change)) {}

void lifecycle::publish_local(const invalidation& change) {
  if (on_change_) on_change_(change);
}

boost::asio::awaitable<std::vector<tenant_record>> lifecycle::list(std::optional<tenant_status> status) {
  auto conn = co_await master_->acquire();
  co_return co_await master::list_tenants(*conn, status);
}

boost::asio::awaitable<std::optional<tenant_record>> lifecycle::find(const std::string& id) {
  auto conn = co_await master_->acquire();
  co_return co_await master::find_tenant(*conn, id);
}

boost::asio::awaitable<result<tenant_record>> lifecycle::set_status(const std::string& id,
                                                                    std::span<const tenant_status> allowed,
                                                                    tenant_status to, const std::string& reason) {
  auto conn = co_await master_->acquire();
  auto tx = co_await db::transaction::begin(*conn);
  auto changed = co_await master::transition_tenant(*conn, id, allowed, to, reason);
  if (!changed) {
    co_await tx.rollback();
    auto current = co_await master::find_tenant(*conn, id);
    if (!current) co_return make_error(errc::not_found, "no such tenant");
    co_return make_error(errc::tenant_exists, "the tenant is " + std::string(to_string(current->status)) +
                                                  "; it cannot become " + std::string(to_string(to)));
  }
  const auto change = invalidation::of_tenant(id);
  co_await master::notify_invalidation(*conn, change);
  co_await tx.commit();
  publish_local(change);
  co_return *changed;
}

boost::asio::awaitable<result<tenant_record>> lifecycle::suspend(const std::string& id, const std::string& reason) {
  static constexpr std::array from{tenant_status::active};
  auto changed = co_await set_status(id, from, tenant_status::suspended, reason);
  if (changed && pools_) pools_->drop(pool_key_of(*changed));
  spdlog::info("tenant {}: suspended{}", id, reason.empty() ? "" : " (" + reason + ")");
  co_return changed;
}

boost::asio::awaitable<result<tenant_record>> lifecycle::resume(const std::string& id) {
  static constexpr std::array from{tenant_status::suspended};
  const std::string no_reason;
  auto changed = co_await set_status(id, from, tenant_status::active, no_reason);
  if (changed) spdlog::info("tenant {}: resumed", id);
  co_return changed;
}

boost::asio::awaitable<result<tenant_record>> lifecycle::remove(const std::string& id) {
  static constexpr std::array from{tenant_status::active, tenant_status::suspended, tenant_status::failed,
                                   tenant_status::deleting};
  static constexpr std::array dropped{tenant_status::deleting};
  const std::string no_reason;
  auto deleting = co_await set_status(id, from, tenant_status::deleting, no_reason);
  if (!deleting) co_return deleting;
  {
    // Every session in the tenant ends now: no token of it may work again, even if a backup
    // brings the tenant back under the same id.
    auto conn = co_await master_->acquire();
    const std::string reason = "tenant_deleted";
    (void)co_await db::sessions::end_tenant_sessions(*conn, id, reason);
  }
  if (pools_) pools_->drop(pool_key_of(*deleting));
  const auto server = co_await provisioning_.server_of(*deleting);
  co_await provisioning_.drop_database(server, deleting->database_name);
  auto deleted = co_await set_status(id, dropped, tenant_status::deleted, no_reason);
  if (deleted) spdlog::info("tenant {}: deleted (database {} dropped)", id, deleting->database_name);
  co_return deleted;
}

boost::asio::awaitable<reconcile_report> lifecycle::reconcile(bool finish_deletions) {
  reconcile_report report;
  std::vector<tenant_record> unfinished;
  {
    auto conn = co_await master_->acquire();
    for (const auto status : {tenant_status::provisioning, tenant_status::failed, tenant_status::deleting}) {
      auto rows = co_await master::list_tenants(*conn, status);
      unfinished.insert(unfinished.end(), rows.begin(), rows.end());
    }
  }
  for (const auto& t : unfinished) {
    if (t.status == tenant_status::deleting) {
      if (!finish_deletions) continue;
      auto done = co_await remove(t.id);
      if (done) report.deleted.push_back(t.id);
      continue;
    }
    // A live provisioning holds the tenant's advisory lock; a free lock means its process died.
    auto conn = co_await master_->acquire();
    auto lock = co_await db::advisory_lock::try_acquire(*conn, provisioning_lock_key(t.id));
    if (!lock) {
      report.in_progress.push_back(t.id);
      continue;
    }
    const auto server = co_await provisioning_.server_of(t);
    co_await provisioning_.drop_database(server, t.database_name);
    co_await master::delete_tenant_row(*conn, t.id);
    report.rolled_back.push_back(t.id);
    spdlog::warn("tenant {}: half-done provisioning rolled back (database {} dropped)", t.id, t.database_name);
    co_await lock->release();
  }
  co_return report;
}

boost::asio::awaitable<check_report> lifecycle::check() {
  check_report report;
  std::vector<tenant_record> tenants;
  std::vector<move_record> moves;
  {
    auto conn = co_await master_->acquire();
    tenants = co_await master::list_tenants(*conn, std::nullopt);
    moves = co_await db::moves::list(*conn, 100000);
  }
  const auto& prefix = provisioning_.settings().database_prefix;
  const auto servers = co_await provisioning_.all_servers();
  for (const auto& server : servers) {
    // Databases are named "<server>/<database>" in the report, except on main.
    const auto where = [&](const std::string& name) {
      return server.name == main_server_name ? name : server.name + "/" + name;
    };
    std::vector<std::string> databases;
    try {
      auto ddl = co_await provisioning_.open_ddl_session(server);
      databases = co_await master::databases_with_prefix(*ddl, prefix);
    } catch (const std::exception& e) {
      spdlog::warn("check: database server {} cannot be inspected: {}", server.name, e.what());
      report.unreachable_servers.push_back(server.name);
      continue;
    }
    std::erase(databases, provisioning_.template_name());
    const auto on_server = [&](const tenant_record& t) {
      return t.db_server.value_or(std::string(main_server_name)) == server.name;
    };
    for (const auto& db_name : databases) {
      const bool owned = std::any_of(tenants.begin(), tenants.end(), [&](const tenant_record& t) {
        return on_server(t) && t.database_name == db_name && t.status != tenant_status::deleted;
      });
      const bool moving = std::any_of(moves.begin(), moves.end(), [&](const move_record& m) {
        if (m.database_name != db_name) return false;
        const bool old_source = m.from == server.name && m.state == move_state::done && !m.source_dropped_at;
        const bool target = m.to == server.name && !finished(m.state);
        return old_source || target;
      });
      if (!owned && moving)
        report.move_databases.push_back(where(db_name));
      else if (!owned)
        report.orphan_databases.push_back(where(db_name));
    }
    for (const auto& t : tenants) {
      if (!on_server(t)) continue;
      const bool exists = std::find(databases.begin(), databases.end(), t.database_name) != databases.end();
      if (is_live(t.status) && !exists) report.missing_databases.push_back(t.id);
    }
  }
  for (const auto& t : tenants) {
    if (t.status == tenant_status::provisioning || t.status == tenant_status::deleting ||
        t.status == tenant_status::failed)
      report.unfinished.push_back(t.id);
  }
  co_return report;
}

}  // namespace tenantd::tenancy

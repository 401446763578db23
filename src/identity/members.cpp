// Members of a tenant: invitations (issue, list, revoke), the member list and role changes. Role rules: only an
// owner grants or removes the owner role, nobody acts on a member who outranks them, and a
// tenant always keeps at least one owner.

#include "db/invitation_repository.hpp"
#include "db/master_repository.hpp"
#include "db/transaction.hpp"
#include "db/user_repository.hpp"
#include "domain/validation.hpp"
#include "identity/accounts.hpp"

namespace tenantd::identity {
namespace master = db::master;

awaitable<result<invitation_issued>> accounts::invite(const principal& caller, const std::string& email,
                                                      const std::string& role) {
  if (!deps_.roles->find(role)) co_return make_error(errc::invalid_input, "unknown role");
  if (role == "owner" && caller.role != "owner")
    co_return make_error(errc::forbidden, "only an owner may grant the owner role");
  const auto token = new_opaque_token();
  const auto id = validation::new_uuid();
  auto conn = co_await deps_.master->acquire();
  auto stored = co_await db::invitations::insert(*conn, id, caller.tenant_id, email, role, sha256_hex(token),
                                                 caller.account_id, deps_.invitation_ttl);
  co_return invitation_issued{stored.id, token, stored.email, stored.role, stored.expires_at, caller.account_id};
}

awaitable<std::vector<invitation_view>> accounts::list_invitations(const principal& caller) {
  auto conn = co_await deps_.master->acquire();
  auto rows = co_await db::invitations::list_usable(*conn, caller.tenant_id);
  std::vector<invitation_view> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back({r.id, r.email, r.role, r.invited_by, r.created_at, r.expires_at});
  co_return out;
}

awaitable<status> accounts::revoke_invitation(const principal& caller, const std::string& id) {
  auto conn = co_await deps_.master->acquire();
  if (!co_await db::invitations::revoke(*conn, caller.tenant_id, id))
    co_return make_error(errc::not_found, "no such pending invitation");
  co_return ok();
}

awaitable<std::vector<member_view>> accounts::list_members(const principal& caller) {
  std::vector<master::member_row> rows;
  {
    auto conn = co_await deps_.master->acquire();
    rows = co_await master::list_members(*conn, caller.tenant_id);
  }
  std::vector<member_view> out;
  out.reserve(rows.size());
  auto tenant = co_await deps_.tenants->find(caller.tenant_id);
  std::optional<tenancy::tenant_connection> tenant_conn;
  if (tenant) tenant_conn = co_await databases_.acquire(*tenant, tenancy::intent::read);
  for (auto& r : rows) {
    // The email is the account's (the login identity, which no tenant edits); the names are
    // the tenant's own user record.
    member_view m{r.account_id, r.email, r.first_name, r.last_name, r.role, r.joined_at};
    if (tenant_conn) {
      if (auto u = co_await db::users::find(**tenant_conn, r.account_id)) {
        m.first_name = u->first_name;
        m.last_name = u->last_name;
      }
    }
    out.push_back(std::move(m));
  }
  co_return out;
}

awaitable<result<member_view>> accounts::change_role(const principal& caller, const std::string& user_id,
                                                     const std::string& role) {
  const role_info* wanted = deps_.roles->find(role);
  if (!wanted) co_return make_error(errc::invalid_input, "unknown role");
  const role_info* actor = deps_.roles->find(caller.role);
  auto conn = co_await deps_.master->acquire();
  auto tx = co_await db::transaction::begin(*conn);
  (void)co_await master::lock_tenant(*conn, caller.tenant_id);
  auto current = co_await master::find_membership_role(*conn, caller.tenant_id, user_id);
  if (!current) {
    co_return make_error(errc::not_found, "no such member");
  }
  const role_info* target = deps_.roles->find(*current);
  if ((role == "owner" || *current == "owner") && caller.role != "owner") {
    co_return make_error(errc::forbidden, "only an owner may grant or take away the owner role");
  }
  if (target && actor && target->rank > actor->rank) {
    co_return make_error(errc::forbidden, "you cannot change the role of a member who outranks you");
  }
  if (*current == "owner" && role != "owner" && co_await master::count_role(*conn, caller.tenant_id, "owner") <= 1) {
    co_return make_error(errc::last_owner, "a tenant must keep at least one owner");
  }
  (void)co_await master::update_membership_role(*conn, caller.tenant_id, user_id, role);
  const auto change = invalidation::of_member(caller.tenant_id, user_id);
  co_await master::notify_invalidation(*conn, change);
  co_await tx.commit();
  invalidate_local(change);

  auto members = co_await list_members(caller);
  for (auto& m : members)
    if (m.user_id == user_id) co_return std::move(m);
  co_return make_error(errc::not_found, "no such member");
}

}  // namespace tenantd::identity

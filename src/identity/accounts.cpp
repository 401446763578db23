// Registration, owner creation, the claim token, member removal and directory edits. Master
// changes run in one transaction that locks the tenant row, so membership decisions (a claim
// or invitation used once, the last owner stays) cannot race, and a refused one changes nothing.
#include "identity/accounts.hpp"

#include <spdlog/spdlog.h>

#include "auth/client_key.hpp"
#include "db/invitation_repository.hpp"
#include "db/master_repository.hpp"
#include "db/transaction.hpp"
#include "db/user_repository.hpp"
#include "domain/validation.hpp"
#include "tenancy/cache_invalidation.hpp"

namespace tenantd::identity {
namespace master = db::master;

accounts::accounts(dependencies deps)
    : deps_(std::move(deps)), databases_(*deps_.tenants, *deps_.pools, nullptr, deps_.servers, deps_.gate) {}

void accounts::invalidate_local(const invalidation& change) {
  tenancy::apply_invalidation(change, *deps_.access, *deps_.tenants);
}

awaitable<bool> accounts::insert_new_account(db::connection& conn, const account_record& account) {
  try {
    co_await master::insert_account(conn, account);
    co_return true;
  } catch (const db::pg_error& e) {
    if (!e.is_unique_violation()) throw;
  }
  co_return false;  // the email was taken meanwhile
}

awaitable<result<user_record>> accounts::ensure_tenant_user(const tenant_record& tenant, const user_record& user) {
  auto conn = co_await databases_.acquire(tenant);
  if (auto kept = co_await db::users::find(*conn, user.id)) co_return *kept;
  if (auto adopted = co_await db::users::adopt(*conn, user.email, user.id)) co_return *adopted;
  co_return co_await db::users::insert(*conn, user);
}

awaitable<proven_person> accounts::prove(const person& who) {
  proven_person out{who, {}, false, {}};
  {
    auto conn = co_await deps_.master->acquire();
    out.existing = co_await master::find_account_by_email(*conn, who.email);
  }
  if (out.existing)
    out.password_ok = co_await deps_.hasher->verify(out.existing->password_hash, who.password);
  else
    out.new_hash = co_await deps_.hasher->hash(who.password);
  co_return out;
}

awaitable<result<membership_granted>> accounts::grant_membership(const tenant_record& tenant,
                                                                 const proven_person& joiner, bool provisioning,
                                                                 const consent& given) {
  const person& who = joiner.who;
  const auto& existing = joiner.existing;
  auto conn = co_await deps_.master->acquire();
  auto tx = co_await db::transaction::begin(*conn);

  auto locked = co_await master::lock_tenant(*conn, tenant.id);
  const bool usable =
      locked && (provisioning ? locked->status == tenant_status::provisioning : is_live(locked->status));
  if (!usable) {
    co_return make_error(errc::tenant_not_found, "no such tenant");
  }
  if (locked->status == tenant_status::suspended) {
    co_return make_error(errc::tenant_suspended, "this tenant is suspended");
  }

  // Consent: the tenant's creation (provisioning), its claim token, an invitation, or 'open'.
  std::string role;
  bool claimed = false;
  std::optional<db::invitations::invitation> accepted;
  if (provisioning) {
    role = "owner";
  } else if (given.claim_token) {
    if (!co_await db::invitations::claim_matches(*conn, tenant.id, sha256_hex(*given.claim_token))) {
      co_return make_error(errc::registration_closed, "the claim token is not valid for this tenant, or was used");
    }
    role = "owner";
    claimed = true;
  } else if (given.invitation) {
    accepted = co_await db::invitations::lock_by_token(*conn, sha256_hex(*given.invitation));
    if (!accepted || !accepted->usable || accepted->tenant_id != tenant.id || accepted->email != who.email) {
      co_return make_error(
          errc::registration_closed,
          "the invitation is not valid for this tenant and email, or was used, revoked or has expired");
    }
    role = accepted->role;
  } else if (locked->registration == "open") {
    role = "member";
  } else {
    co_return make_error(errc::registration_closed, "this tenant accepts new members by invitation only");
  }

  if (existing && !joiner.password_ok) {
    if (provisioning) co_return make_error(errc::invalid_credentials, "email or password is incorrect");
    co_return make_error(errc::email_taken, "an account with this email exists; use its password to join this tenant");
  }
  if (existing && co_await master::find_membership_role(*conn, tenant.id, existing->id)) {
    co_return make_error(errc::already_member, "this account is already a member");
  }

  account_record account;
  if (existing) {
    account = *existing;
  } else {
    account = account_record{validation::new_uuid(), who.email, joiner.new_hash, who.first_name, who.last_name, {}, {}};
    if (!co_await insert_new_account(*conn, account)) {
      co_return make_error(errc::email_taken, "an account with this email already exists");
    }
  }
  co_await master::insert_membership(*conn, tenant.id, account.id, role);
  if (accepted) co_await db::invitations::accept(*conn, accepted->id, account.id);
  if (claimed) co_await db::invitations::clear_claim(*conn, tenant.id);

  const user_record entry{account.id, who.email, who.first_name, who.last_name, {}, {}};
  auto user = co_await ensure_tenant_user(*locked, entry);
  if (!user) {
    co_return std::move(user).err();
  }
  const auto change = invalidation::of_member(tenant.id, account.id);
  co_await master::notify_invalidation(*conn, change);
  co_await tx.commit();
  invalidate_local(change);
  co_return membership_granted{std::move(*user), tenant.id, role};
}

awaitable<result<membership_granted>> accounts::register_member(const std::string& tenant_id, const person& who,
                                                                const consent& given) {
  auto tenant = co_await deps_.tenants->find(tenant_id);
  if (!tenant || !is_live(tenant->status)) co_return make_error(errc::tenant_not_found, "no such tenant");
  if (tenant->status == tenant_status::suspended)
    co_return make_error(errc::tenant_suspended, "this tenant is suspended");
  const auto joiner = co_await prove(who);
  co_return co_await grant_membership(*tenant, joiner, false, given);
}

awaitable<result<proven_person>> accounts::check_owner(const person& who) {
  auto owner = co_await prove(who);
  if (owner.existing && !owner.password_ok)
    co_return make_error(errc::invalid_credentials, "email or password is incorrect");
  co_return owner;
}

awaitable<result<membership_granted>> accounts::create_owner(const tenant_record& tenant, const proven_person& owner) {
  const consent by_creation;
  co_return co_await grant_membership(tenant, owner, true, by_creation);
}

awaitable<std::string> accounts::issue_claim_token(const tenant_record& tenant) {
  auto token = new_opaque_token();
  auto conn = co_await deps_.master->acquire();
  co_await db::invitations::set_claim(*conn, tenant.id, sha256_hex(token), deps_.invitation_ttl);
  co_return token;
}

awaitable<login_outcome> accounts::login(const std::string& email, const std::string& password,
                                         const std::optional<std::string>& tenant_id,
                                         const std::string& client_address) {
  login_outcome out;
  const auto invalid = [] { return make_error(errc::invalid_credentials, "email or password is incorrect"); };
  std::optional<account_record> account;
  {
    auto conn = co_await deps_.master->acquire();
    account = co_await master::find_account_by_email(*conn, email);
  }
  const auto client = auth::client_key(client_address);  // the hashing queue is shared fairly per client
  if (!account) {
    (void)co_await deps_.hasher->verify_dummy(password, client);
    out.failure = invalid();
    co_return out;
  }
  if (!co_await deps_.hasher->verify(account->password_hash, password, client)) {
    out.failure = invalid();
    co_return out;
  }
  if (deps_.hasher->needs_rehash(account->password_hash)) {
    auto rehashed = co_await deps_.hasher->hash(password, client);
    auto conn = co_await deps_.master->acquire();
    co_await master::set_password_hash(*conn, account->id, rehashed);
  }

  std::vector<master::tenant_membership> memberships;
  {
    auto conn = co_await deps_.master->acquire();
    memberships = co_await master::memberships_of(*conn, account->id);
  }
  const master::tenant_membership* chosen = nullptr;
  if (tenant_id) {
    for (const auto& m : memberships)
      if (m.tenant_id == *tenant_id) chosen = &m;
    if (!chosen) {
      out.failure = invalid();
      co_return out;
    }
  } else if (memberships.size() == 1) {
    chosen = &memberships.front();
  } else if (memberships.empty()) {
    out.failure = invalid();
    co_return out;
  } else {
    out.failure =
        make_error(errc::tenant_required, "this account belongs to several tenants; choose one with tenant_id");
    for (const auto& m : memberships) out.tenant_choices.push_back(m.tenant_id);
    co_return out;
  }

  auto tenant = co_await deps_.tenants->find(chosen->tenant_id);
  if (!tenant || !is_live(tenant->status)) {
    out.failure = invalid();
    co_return out;
  }
  if (tenant->status == tenant_status::suspended) {
    out.failure = make_error(errc::tenant_suspended, "this tenant is suspended");
    co_return out;
  }
  if (tenant->schema_version > deps_.latest_tenant_schema) {
    out.failure = make_error(errc::schema_too_new, "this tenant's schema is newer than this server");
    co_return out;
  }

  std::optional<user_record> user;
  {
    auto conn = co_await databases_.acquire(*tenant, tenancy::intent::read);
    user = co_await db::users::find(*conn, account->id);
  }
  const role_info* role = deps_.roles->find(chosen->role);
  login_success success;
  success.tokens = co_await start_session(account->id, tenant->id, chosen->role, client_address);
  success.user = user ? *user : user_record{account->id,        account->email,      account->first_name,
                                            account->last_name, account->created_at, account->updated_at};
  success.tenant_id = tenant->id;
  success.role = chosen->role;
  success.permissions = role ? role->permissions : 0;
  out.success = std::move(success);
  co_return out;
}

awaitable<result<user_record>> accounts::update_user(const principal& caller, const std::string& user_id,
                                                     const user_changes& changes) {
  auto tenant = co_await deps_.tenants->find(caller.tenant_id);
  if (!tenant) co_return make_error(errc::tenant_not_found, "no such tenant");
  // Single statements, each its own implicit transaction (an exclusive connection held
  // between them would add nothing): the pool may pipeline them on its shared connection.
  auto tenant_db = co_await databases_.runner(tenant->id, tenancy::intent::write);
  if (changes.email) {
    auto current = co_await db::users::find(*tenant_db, user_id);
    if (!current) co_return make_error(errc::not_found, "no such user");
    if (current->email != *changes.email) {
      std::optional<std::string> role;
      {
        auto conn = co_await deps_.master->acquire();
        role = co_await master::find_membership_role(*conn, tenant->id, user_id);
      }
      if (role) {
        error e{errc::invalid_input, "the request body has invalid fields", {}};
        e.fields.push_back({"email", "is this member's login email, which only they can change; names may change"});
        co_return e;
      }
    }
  }
  co_return co_await db::users::update(*tenant_db, user_id, changes);
}

awaitable<status> accounts::remove_member(const principal& caller, const std::string& user_id, bool drop_user_row) {
  auto tenant = co_await deps_.tenants->find(caller.tenant_id);
  if (!tenant) co_return make_error(errc::tenant_not_found, "no such tenant");
  std::optional<user_record> user;
  {
    auto conn = co_await databases_.acquire(*tenant, tenancy::intent::read);
    user = co_await db::users::find(*conn, user_id);
  }

  auto conn = co_await deps_.master->acquire();
  auto tx = co_await db::transaction::begin(*conn);
  (void)co_await master::lock_tenant(*conn, tenant->id);
  auto role = co_await master::find_membership_role(*conn, tenant->id, user_id);
  const auto change = invalidation::of_member(tenant->id, user_id);
  if (!role && (!user || !drop_user_row)) {
    co_return make_error(errc::not_found, drop_user_row ? "no such user" : "no such member");
  }
  if (role) {
    const role_info* target = deps_.roles->find(*role);
    const role_info* actor = deps_.roles->find(caller.role);
    if (target && actor && target->rank > actor->rank) {
      co_return make_error(errc::forbidden, "only an owner may remove an owner");
    }
    if (*role == "owner" && co_await master::count_role(*conn, tenant->id, "owner") <= 1) {
      co_return make_error(errc::last_owner, "a tenant must keep at least one owner");
    }
    (void)co_await master::delete_membership(*conn, tenant->id, user_id);
    const std::string reason = drop_user_row ? "user_deleted" : "member_removed";
    (void)co_await master::end_sessions(*conn, tenant->id, user_id, reason);
    co_await master::notify_invalidation(*conn, change);
  }
  co_await tx.commit();
  if (role) invalidate_local(change);

  if (drop_user_row && user) {
    auto tenant_conn = co_await databases_.acquire(*tenant);
    (void)co_await db::users::remove(*tenant_conn, user_id);
  }
  co_return ok();
}

awaitable<result<tenant_record>> accounts::update_tenant(const principal& caller,
                                                         const std::optional<std::string>& name,
                                                         const std::optional<std::string>& registration) {
  auto conn = co_await deps_.master->acquire();
  if (!name && !registration) {
    auto current = co_await master::find_tenant(*conn, caller.tenant_id);
    if (!current) co_return make_error(errc::not_found, "no such tenant");
    co_return *current;
  }
  auto tx = co_await db::transaction::begin(*conn);
  auto updated = co_await master::update_tenant(*conn, caller.tenant_id, name, registration);
  if (!updated) {
    co_return make_error(errc::not_found, "no such tenant");
  }
  const auto change = invalidation::of_tenant(caller.tenant_id);
  co_await master::notify_invalidation(*conn, change);
  co_await tx.commit();
  invalidate_local(change);
  co_return *updated;
}

}  // namespace tenantd::identity

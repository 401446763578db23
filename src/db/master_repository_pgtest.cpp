// Master repository against a fresh database with the real master migrations: tenants,
// accounts, memberships, sessions, the access row, roles and invalidation notifications.
#include "db/master_repository.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <boost/asio/this_coro.hpp>

#include "db/migrator.hpp"
#include "db/transaction.hpp"
#include "domain/validation.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

net::awaitable<std::unique_ptr<connection>> connect_to(const test::test_database& db) {
  connection_options options;
  options.conninfo = db.conninfo();
  co_return co_await connection::connect(co_await net::this_coro::executor, options);
}

using test::migrated_master;

account_record account_named(const std::string& email) {
  return account_record{validation::new_uuid(), email, "$argon2id$v=19$m=8,t=1,p=1$x$y", "Ada", "Lovelace", {}, {}};
}

// An active tenant whose row exists (no database is needed for master-only tests).
net::awaitable<void> add_active_tenant(connection& c, const std::string& id) {
  const std::string name = "Tenant " + id;
  const std::string database = "db_" + id;
  const auto got1 = co_await master::insert_provisioning_tenant(c, id, name, database);
  EXPECT_TRUE(got1);
  co_await master::set_tenant_status(c, id, tenant_status::active);
}

TEST(master_repository, tenant_lifecycle) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string id = "acme_corp";
    const std::string name = "Acme";
    const std::string database = "tenant_acme_corp";
    const auto got2 = co_await master::find_tenant(*c, id);
    EXPECT_FALSE(got2);
    const auto got3 = co_await master::insert_provisioning_tenant(*c, id, name, database);
    EXPECT_TRUE(got3);
    const auto got4 = co_await master::insert_provisioning_tenant(*c, id, name, "other_db");
    EXPECT_FALSE(got4) << "duplicate id";
    const std::string other = "other_corp";
    const auto got5 = co_await master::insert_provisioning_tenant(*c, other, name, database);
    EXPECT_FALSE(got5) << "duplicate database";

    auto found = co_await master::find_tenant(*c, id);
    EXPECT_TRUE(found);
    if (!found) co_return;
    EXPECT_EQ(found->id, id);
    EXPECT_EQ(found->name, name);
    EXPECT_EQ(found->status, tenant_status::provisioning);
    EXPECT_EQ(found->registration, "invite");
    EXPECT_EQ(found->database_name, database);
    EXPECT_EQ(found->db_server, "main");  // the column's default since V006
    EXPECT_EQ(found->schema_version, 0);
    EXPECT_EQ(found->created_at.size(), 20U) << found->created_at;
    EXPECT_EQ(found->created_at.back(), 'Z');

    co_await master::set_tenant_status(*c, id, tenant_status::active);
    const std::optional<std::string> no_error;
    co_await master::set_tenant_schema_version(*c, id, 3, no_error);
    found = co_await master::find_tenant(*c, id);
    EXPECT_EQ(found->status, tenant_status::active);
    EXPECT_EQ(found->schema_version, 3);
    const std::optional<std::string> failure = "V004 failed";
    co_await master::set_tenant_schema_version(*c, id, 3, failure);
    const auto error_rows =
        test::admin_query("SELECT last_migration_error, last_migration_at IS NOT NULL FROM tenants", db.name());
    EXPECT_EQ(error_rows.at(0).at(0), "V004 failed");
    EXPECT_EQ(error_rows.at(0).at(1), "t");

    // update_tenant: only the given fields change; missing id -> nullopt.
    const std::optional<std::string> new_name = "Acme Corporation";
    const std::optional<std::string> no_change;
    auto updated = co_await master::update_tenant(*c, id, new_name, no_change);
    EXPECT_TRUE(updated);
    EXPECT_EQ(updated->name, "Acme Corporation");
    EXPECT_EQ(updated->registration, "invite");
    const std::optional<std::string> open = "open";
    updated = co_await master::update_tenant(*c, id, no_change, open);
    EXPECT_EQ(updated->name, "Acme Corporation");
    EXPECT_EQ(updated->registration, "open");
    const std::string missing = "missing_tenant";
    const auto got6 = co_await master::update_tenant(*c, missing, new_name, open);
    EXPECT_FALSE(got6);

    // lock_tenant inside a transaction.
    auto tx = co_await transaction::begin(*c);
    auto locked = co_await master::lock_tenant(*c, id);
    EXPECT_TRUE(locked);
    EXPECT_EQ(locked->name, "Acme Corporation");
    const auto got7 = co_await master::lock_tenant(*c, missing);
    EXPECT_FALSE(got7);
    co_await tx.commit();

    co_await master::delete_tenant_row(*c, id);
    const auto got8 = co_await master::find_tenant(*c, id);
    EXPECT_FALSE(got8);
  });
}

TEST(master_repository, lock_tenant_blocks_another_transaction_until_commit) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string id = "locked_one";
    co_await add_active_tenant(*c, id);
    auto holder = co_await transaction::begin(*c);
    const auto got9 = co_await master::lock_tenant(*c, id);
    EXPECT_TRUE(got9);
    // A second session cannot take the row lock while the first transaction holds it.
    auto other = co_await connect_to(db);
    bool blocked = false;
    {
      auto waiting = co_await transaction::begin(*other);
      co_await other->exec("SET LOCAL lock_timeout = '100ms'");
      try {
        (void)co_await master::lock_tenant(*other, id);
      } catch (const pg_error& e) {
        blocked = e.sqlstate() == "55P03";
      }
      co_await waiting.rollback();
    }
    EXPECT_TRUE(blocked);
    co_await holder.commit();
    auto after = co_await transaction::begin(*other);
    const auto got10 = co_await master::lock_tenant(*other, id);
    EXPECT_TRUE(got10);
    co_await after.commit();
  });
}

TEST(master_repository, list_tenants_filters_by_status_in_id_order) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string b = "bbb", a = "aaa", s = "sss";
    co_await add_active_tenant(*c, b);
    co_await add_active_tenant(*c, a);
    co_await add_active_tenant(*c, s);
    co_await master::set_tenant_status(*c, s, tenant_status::suspended);

    const std::optional<tenant_status> all_statuses;
    const auto all = co_await master::list_tenants(*c, all_statuses);
    EXPECT_EQ(all.size(), 3U);
    if (all.size() == 3) {
      EXPECT_EQ(all[0].id, "aaa");
      EXPECT_EQ(all[1].id, "bbb");
      EXPECT_EQ(all[2].id, "sss");
    }
    const std::optional<tenant_status> active = tenant_status::active;
    const auto actives = co_await master::list_tenants(*c, active);
    EXPECT_EQ(actives.size(), 2U);
    const std::optional<tenant_status> suspended = tenant_status::suspended;
    const auto suspendeds = co_await master::list_tenants(*c, suspended);
    EXPECT_EQ(suspendeds.size(), 1U);
    if (!suspendeds.empty()) {
      EXPECT_EQ(suspendeds[0].id, "sss");
    }
  });
}

TEST(master_repository, database_exists) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto got11 = co_await master::database_exists(*c, db.name());
    EXPECT_TRUE(got11);
    const std::string absent = test::unique_name("absent_");
    const auto got12 = co_await master::database_exists(*c, absent);
    EXPECT_FALSE(got12);
  });
}

TEST(master_repository, accounts_and_password_hash) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto account = account_named("ada@example.com");
    co_await master::insert_account(*c, account);

    auto by_email = co_await master::find_account_by_email(*c, account.email);
    EXPECT_TRUE(by_email);
    if (!by_email) co_return;
    EXPECT_EQ(by_email->id, account.id);
    EXPECT_EQ(by_email->password_hash, account.password_hash);
    EXPECT_EQ(by_email->first_name, "Ada");
    EXPECT_EQ(by_email->last_name, "Lovelace");
    EXPECT_EQ(by_email->created_at.back(), 'Z');
    auto by_id = co_await master::find_account(*c, account.id);
    EXPECT_TRUE(by_id);
    EXPECT_EQ(by_id->email, account.email);
    const std::string nobody = "nobody@example.com";
    const auto got13 = co_await master::find_account_by_email(*c, nobody);
    EXPECT_FALSE(got13);
    const auto unknown_id = validation::new_uuid();
    const auto got14 = co_await master::find_account(*c, unknown_id);
    EXPECT_FALSE(got14);

    // Emails are unique across accounts.
    auto twin = account_named(account.email);
    bool unique_violation = false;
    try {
      co_await master::insert_account(*c, twin);
    } catch (const pg_error& e) {
      unique_violation = e.is_unique_violation();
    }
    EXPECT_TRUE(unique_violation);

    const std::string new_hash = "$argon2id$v=19$m=8,t=1,p=1$new$hash";
    co_await master::set_password_hash(*c, account.id, new_hash);
    by_id = co_await master::find_account(*c, account.id);
    EXPECT_EQ(by_id->password_hash, new_hash);
  });
}

TEST(master_repository, memberships) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string t1 = "tenant_one", t2 = "tenant_two", gone = "tenant_gone";
    co_await add_active_tenant(*c, t1);
    co_await add_active_tenant(*c, t2);
    co_await add_active_tenant(*c, gone);
    const auto ada = account_named("ada@example.com");
    const auto bob = account_named("bob@example.com");
    co_await master::insert_account(*c, ada);
    co_await master::insert_account(*c, bob);

    const std::string owner = "owner", member = "member";
    const auto got15 = co_await master::find_membership_role(*c, t1, ada.id);
    EXPECT_FALSE(got15);
    const auto got16 = co_await master::count_members(*c, t1);
    EXPECT_EQ(got16, 0);
    co_await master::insert_membership(*c, t1, ada.id, owner);
    co_await master::insert_membership(*c, t1, bob.id, member);
    co_await master::insert_membership(*c, t2, ada.id, member);
    co_await master::insert_membership(*c, gone, ada.id, owner);
    co_await master::set_tenant_status(*c, gone, tenant_status::deleting);

    const auto got17 = co_await master::find_membership_role(*c, t1, ada.id);
    EXPECT_EQ(got17, std::optional<std::string>("owner"));
    const auto got18 = co_await master::find_membership_role(*c, t2, ada.id);
    EXPECT_EQ(got18, std::optional<std::string>("member"));
    const auto got19 = co_await master::find_membership_role(*c, t2, bob.id);
    EXPECT_FALSE(got19);
    const auto got20 = co_await master::count_members(*c, t1);
    EXPECT_EQ(got20, 2);
    const auto got21 = co_await master::count_role(*c, t1, owner);
    EXPECT_EQ(got21, 1);
    const auto got22 = co_await master::count_role(*c, t1, member);
    EXPECT_EQ(got22, 1);
    const auto got23 = co_await master::count_role(*c, t2, owner);
    EXPECT_EQ(got23, 0);

    // Unknown role: the foreign key refuses it.
    const std::string bogus = "emperor";
    bool refused = false;
    try {
      co_await master::insert_membership(*c, t2, bob.id, bogus);
    } catch (const pg_error& e) {
      refused = e.sqlstate() == "23503";
    }
    EXPECT_TRUE(refused);

    // memberships_of: only active or suspended tenants, in tenant order.
    co_await master::set_tenant_status(*c, t2, tenant_status::suspended);
    const auto of_ada = co_await master::memberships_of(*c, ada.id);
    EXPECT_EQ(of_ada.size(), 2U);
    if (of_ada.size() == 2) {
      EXPECT_EQ(of_ada[0].tenant_id, t1);
      EXPECT_EQ(of_ada[0].role, "owner");
      EXPECT_EQ(of_ada[1].tenant_id, t2);
      EXPECT_EQ(of_ada[1].role, "member");
    }

    const auto got24 = co_await master::delete_membership(*c, t1, bob.id);
    EXPECT_TRUE(got24);
    const auto got25 = co_await master::delete_membership(*c, t1, bob.id);
    EXPECT_FALSE(got25);
    const auto got26 = co_await master::count_members(*c, t1);
    EXPECT_EQ(got26, 1);
    const auto got27 = co_await master::memberships_of(*c, bob.id);
    EXPECT_TRUE((got27).empty());
  });
}

TEST(master_repository, sessions_refresh_tokens_and_end_sessions) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string t1 = "tenant_one", t2 = "tenant_two";
    co_await add_active_tenant(*c, t1);
    co_await add_active_tenant(*c, t2);
    const auto ada = account_named("ada@example.com");
    co_await master::insert_account(*c, ada);
    const auto s1 = validation::new_uuid(), s2 = validation::new_uuid(), s3 = validation::new_uuid();
    const std::string address = "192.0.2.7";
    co_await master::insert_session(*c, s1, ada.id, t1, 3600, address);
    co_await master::insert_session(*c, s2, ada.id, t1, 3600, address);
    co_await master::insert_session(*c, s3, ada.id, t2, 3600, address);

    const auto lifetime = test::admin_query(
        "SELECT round(extract(epoch FROM expires_at - created_at)), client_address FROM sessions WHERE id = '" + s1 +
            "'",
        db.name());
    EXPECT_EQ(lifetime.at(0).at(0), "3600");
    EXPECT_EQ(lifetime.at(0).at(1), address);

    const std::string hash_hex(64, 'a');
    co_await master::insert_refresh_token(*c, hash_hex, s1, 7200);
    const auto stored = test::admin_query(
        "SELECT encode(token_hash, 'hex'), session_id, round(extract(epoch FROM expires_at - issued_at)) "
        "FROM refresh_tokens",
        db.name());
    EXPECT_EQ(stored.size(), 1U);
    EXPECT_EQ(stored.at(0).at(0), hash_hex);
    EXPECT_EQ(stored.at(0).at(1), s1);
    EXPECT_EQ(stored.at(0).at(2), "7200");

    const std::string reason = "member_removed";
    auto ended = co_await master::end_sessions(*c, t1, ada.id, reason);
    std::sort(ended.begin(), ended.end());
    auto expected = std::vector<std::string>{s1, s2};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(ended, expected);
    const auto got28 = co_await master::end_sessions(*c, t1, ada.id, reason);
    EXPECT_TRUE((got28).empty()) << "already ended";
    const auto reasons = test::admin_query(
        "SELECT id, coalesce(end_reason, '-'), ended_at IS NOT NULL FROM sessions ORDER BY id", db.name());
    for (const auto& row : reasons) {
      if (row.at(0) == s3) {
        EXPECT_EQ(row.at(1), "-") << "the other tenant's session stays live";
        EXPECT_EQ(row.at(2), "f");
      } else {
        EXPECT_EQ(row.at(1), reason);
        EXPECT_EQ(row.at(2), "t");
      }
    }
  });
}

TEST(master_repository, load_access_for_member_non_member_ended_session_and_suspended_tenant) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const std::string t = "tenant_one", other_tenant = "tenant_two";
    co_await add_active_tenant(*c, t);
    co_await add_active_tenant(*c, other_tenant);
    const std::optional<std::string> no_error;
    co_await master::set_tenant_schema_version(*c, t, 1, no_error);
    const auto ada = account_named("ada@example.com");
    const auto eve = account_named("eve@example.com");
    co_await master::insert_account(*c, ada);
    co_await master::insert_account(*c, eve);
    const std::string admin = "admin";
    co_await master::insert_membership(*c, t, ada.id, admin);
    const auto session = validation::new_uuid();
    const auto eve_session = validation::new_uuid();
    const auto other_session = validation::new_uuid();
    const std::string address = "192.0.2.1";
    co_await master::insert_session(*c, session, ada.id, t, 3600, address);
    co_await master::insert_session(*c, eve_session, eve.id, t, 3600, address);
    co_await master::insert_session(*c, other_session, ada.id, other_tenant, 3600, address);

    // Member with a live session.
    auto row = co_await master::load_access(*c, t, ada.id, session);
    EXPECT_TRUE(row);
    if (!row) co_return;
    EXPECT_EQ(row->tenant_status, tenant_status::active);
    EXPECT_EQ(row->tenant_schema_version, 1);
    EXPECT_EQ(row->role, std::optional<std::string>("admin"));
    EXPECT_TRUE(row->session_live);

    // Non-member (with a session row in the tenant): no role.
    row = co_await master::load_access(*c, t, eve.id, eve_session);
    EXPECT_TRUE(row);
    EXPECT_FALSE(row->role);
    EXPECT_EQ(row->tenant_status, tenant_status::active);

    // A session of another tenant, or of another account, is not live here.
    row = co_await master::load_access(*c, t, ada.id, other_session);
    EXPECT_FALSE(row->session_live);
    row = co_await master::load_access(*c, t, ada.id, eve_session);
    EXPECT_FALSE(row->session_live);
    const auto unknown_session = validation::new_uuid();
    row = co_await master::load_access(*c, t, ada.id, unknown_session);
    EXPECT_FALSE(row->session_live);
    EXPECT_EQ(row->role, std::optional<std::string>("admin"));

    // Expired session.
    const auto expired = validation::new_uuid();
    co_await master::insert_session(*c, expired, ada.id, t, -1, address);
    row = co_await master::load_access(*c, t, ada.id, expired);
    EXPECT_FALSE(row->session_live);

    // Ended session.
    const std::string reason = "logout";
    (void)co_await master::end_sessions(*c, t, ada.id, reason);
    row = co_await master::load_access(*c, t, ada.id, session);
    EXPECT_TRUE(row);
    EXPECT_FALSE(row->session_live);
    EXPECT_EQ(row->role, std::optional<std::string>("admin"));

    // Suspended tenant.
    const auto fresh = validation::new_uuid();
    co_await master::insert_session(*c, fresh, ada.id, t, 3600, address);
    co_await master::set_tenant_status(*c, t, tenant_status::suspended);
    row = co_await master::load_access(*c, t, ada.id, fresh);
    EXPECT_TRUE(row);
    EXPECT_EQ(row->tenant_status, tenant_status::suspended);
    EXPECT_TRUE(row->session_live);

    // Unknown tenant.
    const std::string missing = "no_such_tenant";
    const auto got29 = co_await master::load_access(*c, missing, ada.id, fresh);
    EXPECT_FALSE(got29);
  });
}

TEST(master_repository, load_roles_equals_the_built_in_table) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto loaded = co_await master::load_roles(*c);
    const auto expected = role_table::defaults();
    EXPECT_EQ(loaded.all().size(), expected.all().size());
    for (const auto& role : expected.all()) {
      const role_info* got = loaded.find(role.name);
      EXPECT_NE(got, nullptr) << role.name;
      if (!got) continue;
      EXPECT_EQ(got->rank, role.rank) << role.name;
      EXPECT_EQ(permission_names(got->permissions), permission_names(role.permissions)) << role.name;
    }
  });
}

TEST(master_repository, notify_invalidation_reaches_a_listener) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    auto listener = co_await connect_to(db);
    co_await listener->exec(std::string("LISTEN ") + master::invalidation_channel);

    const auto change = invalidation::of_member("acme_corp", "7f1d2c3e-0000-4000-8000-000000000001");
    co_await master::notify_invalidation(*c, change);
    std::vector<notification> got;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (got.empty() && std::chrono::steady_clock::now() < deadline)
      got = co_await listener->wait_notifications(500ms);
    EXPECT_EQ(got.size(), 1U);
    if (!got.empty()) {
      EXPECT_EQ(got[0].channel, master::invalidation_channel);
      EXPECT_EQ(got[0].payload, "member:acme_corp:7f1d2c3e-0000-4000-8000-000000000001");
    }

    // Inside a transaction: delivered at commit, not before, and never after a rollback.
    const auto rolled_back = invalidation::of_tenant("rolled_back");
    {
      auto tx = co_await transaction::begin(*c);
      co_await master::notify_invalidation(*c, rolled_back);
      co_await tx.rollback();
    }
    const auto committed = invalidation::of_tenant("committed");
    auto tx = co_await transaction::begin(*c);
    co_await master::notify_invalidation(*c, committed);
    const auto got30 = co_await listener->wait_notifications(200ms);
    EXPECT_TRUE((got30).empty()) << "delivered before commit";
    co_await tx.commit();
    got.clear();
    const auto deadline2 = std::chrono::steady_clock::now() + 5s;
    while (got.empty() && std::chrono::steady_clock::now() < deadline2)
      got = co_await listener->wait_notifications(500ms);
    EXPECT_EQ(got.size(), 1U);
    if (!got.empty()) {
      EXPECT_EQ(got[0].payload, "tenant:committed");
    }
  });
}

}  // namespace
}  // namespace tenantd::db

// Account flows with real pools against a migrated master and two migrated tenant
// databases: registration rules, login with and without a tenant, bearer authentication
// against the current membership and tenant, member removal and directory entries adopted on joining.
#include "identity/accounts.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <ctime>

#include "db/migrator.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::identity {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

net::awaitable<void> migrate(const std::string& conninfo, const std::vector<db::embedded_file>& files) {
  (void)co_await test::connect_migrated(conninfo, files);
}

person person_named(const std::string& email, const std::string& password = "correct horse battery") {
  return person{email, password, "First", "Last"};
}

// A migrated master with two active tenants (registration 'invite'), each with its own
// migrated database; real hasher (small Argon2 parameters), real JWT codec.
class accounts_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto master_conninfo = master_.conninfo();
    const auto t1_conninfo = t1_db_.conninfo();
    const auto t2_conninfo = t2_db_.conninfo();
    run_coro([&](auto) -> net::awaitable<void> {
      co_await migrate(master_conninfo, db::embedded_master_migrations());
      co_await migrate(t1_conninfo, db::embedded_tenant_migrations());
      co_await migrate(t2_conninfo, db::embedded_tenant_migrations());
    });
    exec("INSERT INTO tenants (id, name, status, database_name, schema_version) VALUES ('" + t1_ +
         "', 'One', 'active', '" + t1_db_.name() + "', 1), ('" + t2_ + "', 'Two', 'active', '" + t2_db_.name() +
         "', 1)");
  }

  void exec(const std::string& sql) { test::admin_exec(sql, master_.name()); }
  std::vector<std::vector<std::string>> query(const std::string& sql) { return test::admin_query(sql, master_.name()); }

  // Gives the tenant a claim token, as POST /tenants without an owner does; returns the consent.
  consent claim(const std::string& tenant) {
    const auto token = new_opaque_token();
    exec("UPDATE tenants SET claim_token_hash = decode('" + sha256_hex(token) +
         "', 'hex'), claim_expires_at = now() + interval '1 hour' WHERE id = '" + tenant + "'");
    return consent{token, std::nullopt};
  }
  const consent no_token{};  // the tenant's registration policy decides

  void open_registration(const std::string& tenant) {
    exec("UPDATE tenants SET registration = 'open' WHERE id = '" + tenant + "'");
  }
  std::string password_hash_of(const std::string& email) {
    const auto rows = query("SELECT password_hash FROM accounts WHERE email = '" + email + "'");
    return rows.empty() ? std::string() : rows.at(0).at(0);
  }
  std::string role_in(const std::string& tenant, const std::string& account_id) {
    const auto rows =
        query("SELECT role FROM memberships WHERE tenant_id = '" + tenant + "' AND account_id = '" + account_id + "'");
    return rows.empty() ? std::string() : rows.at(0).at(0);
  }
  static std::vector<std::vector<std::string>> tenant_user(const test::test_database& db, const std::string& id) {
    return test::admin_query("SELECT email, first_name FROM users WHERE id = '" + id + "'", db.name());
  }

  // Everything accounts needs, wired on the test's executor; destroyed before run_coro returns.
  struct world {
    world(net::any_io_executor ex, accounts_test& t)
        : master(t.master_pool(ex)),
          pools(ex, t.tenant_settings()),
          tenants(master, 60s),
          access(master, 60s, 60s),
          accounts(t.dependencies_for(master, pools, tenants, access)) {}
    std::shared_ptr<db::pool> master;
    tenancy::pool_registry pools;
    tenancy::directory tenants;
    tenancy::access_cache access;
    identity::accounts accounts;
  };

  std::shared_ptr<db::pool> master_pool(net::any_io_executor ex) const {
    db::pool_options options;
    options.connection.conninfo = master_.conninfo();
    options.max_size = 4;
    return db::pool::create(std::move(ex), std::move(options));
  }

  tenancy::tenant_connection_settings tenant_settings() const {
    const auto& pg = test::pg_cluster();
    tenancy::tenant_connection_settings s;
    s.host = pg.host;
    s.port = std::to_string(pg.port);
    s.user = pg.app_user;
    s.password = pg.app_password;
    s.pool_size = 2;
    s.max_connections = 8;
    return s;
  }

  dependencies dependencies_for(std::shared_ptr<db::pool> master, tenancy::pool_registry& pools,
                                tenancy::directory& tenants, tenancy::access_cache& access) {
    dependencies d;
    d.master = std::move(master);
    d.pools = &pools;
    d.tenants = &tenants;
    d.access = &access;
    d.hasher = &hasher_;
    d.jwt = &jwt_;
    d.roles = &roles_;
    d.latest_tenant_schema = 1;
    d.now = [] { return static_cast<std::int64_t>(std::time(nullptr)); };
    return d;
  }

  static auth::jwt_settings jwt_settings() {
    auth::jwt_settings s;
    s.secret = "0123456789abcdef0123456789abcdef-test-secret";
    return s;
  }

  // Logs in to `tenant` and authenticates the access token.
  static net::awaitable<principal> principal_of(accounts& a, const person& who, const std::string& tenant) {
    const std::optional<std::string> chosen = tenant;
    const std::string address = "192.0.2.1";
    const auto outcome = co_await a.login(who.email, who.password, chosen, address);
    if (!outcome.success) throw std::runtime_error("login failed for " + who.email);
    const auto authenticated = co_await a.authenticate(outcome.success->tokens.access_token);
    if (!authenticated) throw std::runtime_error("authenticate failed for " + who.email);
    co_return authenticated.value();
  }

  test::test_database master_;
  test::test_database t1_db_{"td_"};
  test::test_database t2_db_{"td_"};
  const std::string t1_ = test::unique_name("ta_");
  const std::string t2_ = test::unique_name("tb_");
  auth::password_hasher hasher_{auth::argon2_params{1, 8 * 1024}, 1, 64};
  auth::jwt_codec jwt_{jwt_settings()};
  role_table roles_ = role_table::defaults();
};

TEST_F(accounts_test, claim_token_makes_the_owner_then_closed_until_open) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto claimed = claim(t1_);
    const auto first = co_await w.accounts.register_member(t1_, ada, claimed);
    EXPECT_TRUE(first);
    if (!first) co_return;
    EXPECT_EQ(first->role, "owner");
    EXPECT_EQ(first->tenant_id, t1_);
    EXPECT_EQ(first->user.email, "ada@example.com");
    EXPECT_FALSE(first->user.created_at.empty());
    EXPECT_EQ(role_in(t1_, first->user.id), "owner");
    EXPECT_EQ(tenant_user(t1_db_, first->user.id).size(), 1U) << "the user is in the tenant's users table";
    EXPECT_TRUE(tenant_user(t2_db_, first->user.id).empty());

    const auto bob = person_named("bob@example.com");
    const auto closed = co_await w.accounts.register_member(t1_, bob, no_token);
    EXPECT_FALSE(closed);
    if (!closed) {
      EXPECT_EQ(closed.err().code, errc::registration_closed);
    }
    EXPECT_TRUE(query("SELECT 1 FROM accounts WHERE email = 'bob@example.com'").empty()) << "no account was made";
    EXPECT_EQ(test::admin_query("SELECT count(*) FROM users", t1_db_.name()).at(0).at(0), "1");

    open_registration(t1_);
    const auto again = co_await w.accounts.register_member(t1_, bob, claimed);
    EXPECT_FALSE(again) << "a claim token is single use";
    if (!again) {
      EXPECT_EQ(again.err().code, errc::registration_closed);
    }
    const auto joined = co_await w.accounts.register_member(t1_, bob, no_token);
    EXPECT_TRUE(joined);
    if (!joined) co_return;
    EXPECT_EQ(joined->role, "member");
    EXPECT_EQ(role_in(t1_, joined->user.id), "member");
    EXPECT_EQ(tenant_user(t1_db_, joined->user.id).size(), 1U);

    const std::string missing = "no_such_tenant";
    const auto nowhere = co_await w.accounts.register_member(missing, bob, no_token);
    EXPECT_FALSE(nowhere);
    if (!nowhere) {
      EXPECT_EQ(nowhere.err().code, errc::tenant_not_found);
    }
  });
}

TEST_F(accounts_test, existing_email_joins_another_tenant_with_the_right_password_only) {
  open_registration(t1_);
  open_registration(t2_);
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto in_t1 = co_await w.accounts.register_member(t1_, ada, no_token);
    EXPECT_TRUE(in_t1);
    if (!in_t1) co_return;
    const auto hash_before = password_hash_of(ada.email);

    const auto wrong = person_named(ada.email, "not the password");
    const auto t2_claim = claim(t2_);
    const auto refused = co_await w.accounts.register_member(t2_, wrong, t2_claim);
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.err().code, errc::email_taken);
    }
    EXPECT_TRUE(role_in(t2_, in_t1->user.id).empty());

    const auto in_t2 = co_await w.accounts.register_member(t2_, ada, t2_claim);
    EXPECT_TRUE(in_t2);
    if (!in_t2) co_return;
    EXPECT_EQ(in_t2->user.id, in_t1->user.id) << "one account, one id everywhere";
    EXPECT_EQ(in_t2->role, "owner") << "the refused registration left the claim token usable";
    EXPECT_EQ(tenant_user(t2_db_, in_t1->user.id).size(), 1U);
    EXPECT_EQ(password_hash_of(ada.email), hash_before) << "joining does not change the password";
    EXPECT_EQ(query("SELECT count(*) FROM accounts").at(0).at(0), "1");

    const auto again = co_await w.accounts.register_member(t2_, ada, no_token);
    EXPECT_FALSE(again);
    if (!again) {
      EXPECT_EQ(again.err().code, errc::already_member);
    }
  });
}

TEST_F(accounts_test, suspended_tenant_refuses_registration) {
  exec("UPDATE tenants SET status = 'suspended' WHERE id = '" + t1_ + "'");
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto refused = co_await w.accounts.register_member(t1_, ada, no_token);
    EXPECT_FALSE(refused);
    if (!refused) {
      EXPECT_EQ(refused.err().code, errc::tenant_suspended);
    }
  });
}

TEST_F(accounts_test, login_chooses_the_tenant) {
  open_registration(t2_);
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto claimed = claim(t1_);
    const auto registered = co_await w.accounts.register_member(t1_, ada, claimed);
    EXPECT_TRUE(registered);
    if (!registered) co_return;
    const std::optional<std::string> no_tenant;
    const std::string address = "192.0.2.1";

    // One tenant: no tenant_id needed.
    auto outcome = co_await w.accounts.login(ada.email, ada.password, no_tenant, address);
    EXPECT_TRUE(outcome.success);
    if (!outcome.success) co_return;
    EXPECT_EQ(outcome.success->tenant_id, t1_);
    EXPECT_EQ(outcome.success->role, "owner");
    EXPECT_EQ(outcome.success->permissions, roles_.find("owner")->permissions);
    EXPECT_EQ(outcome.success->user.id, registered->user.id);
    EXPECT_EQ(outcome.success->tokens.expires_in, 3600);
    EXPECT_FALSE(outcome.success->tokens.refresh_token.empty());
    const auto verified = jwt_.verify(outcome.success->tokens.access_token, std::time(nullptr));
    EXPECT_TRUE(verified);
    if (verified) {
      EXPECT_EQ(verified.value->sub, registered->user.id);
      EXPECT_EQ(verified.value->tenant_id, t1_);
      EXPECT_EQ(verified.value->sid, outcome.success->tokens.session_id);
    }
    const auto sessions = query("SELECT count(*) FROM sessions WHERE id = '" + outcome.success->tokens.session_id +
                                "' AND ended_at IS NULL");
    EXPECT_EQ(sessions.at(0).at(0), "1");
    const auto refresh = query("SELECT encode(token_hash, 'hex') FROM refresh_tokens WHERE session_id = '" +
                               outcome.success->tokens.session_id + "'");
    EXPECT_EQ(refresh.size(), 1U);
    if (!refresh.empty()) {
      EXPECT_EQ(refresh.at(0).at(0), sha256_hex(outcome.success->tokens.refresh_token)) << "stored hashed";
    }

    // Several tenants: the caller must choose.
    const auto joined = co_await w.accounts.register_member(t2_, ada, no_token);
    EXPECT_TRUE(joined);
    outcome = co_await w.accounts.login(ada.email, ada.password, no_tenant, address);
    EXPECT_FALSE(outcome.success);
    EXPECT_TRUE(outcome.failure);
    if (outcome.failure) {
      EXPECT_EQ(outcome.failure->code, errc::tenant_required);
    }
    auto choices = outcome.tenant_choices;
    std::sort(choices.begin(), choices.end());
    auto expected = std::vector<std::string>{t1_, t2_};
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(choices, expected);

    const std::optional<std::string> second = t2_;
    outcome = co_await w.accounts.login(ada.email, ada.password, second, address);
    EXPECT_TRUE(outcome.success);
    if (outcome.success) {
      EXPECT_EQ(outcome.success->tenant_id, t2_);
    }

    // A tenant the account is not in, an unknown email, a wrong password: all the same.
    const std::optional<std::string> foreign = "not_my_tenant";
    outcome = co_await w.accounts.login(ada.email, ada.password, foreign, address);
    EXPECT_FALSE(outcome.success);
    if (outcome.failure) {
      EXPECT_EQ(outcome.failure->code, errc::invalid_credentials);
    }
    const std::string unknown_email = "nobody@example.com";
    outcome = co_await w.accounts.login(unknown_email, ada.password, no_tenant, address);
    EXPECT_FALSE(outcome.success);
    EXPECT_TRUE(outcome.failure);
    if (outcome.failure) {
      EXPECT_EQ(outcome.failure->code, errc::invalid_credentials);
    }
    const std::string wrong_password = "not the password";
    outcome = co_await w.accounts.login(ada.email, wrong_password, second, address);
    EXPECT_FALSE(outcome.success);
    EXPECT_TRUE(outcome.failure);
    if (outcome.failure) {
      EXPECT_EQ(outcome.failure->code, errc::invalid_credentials);
      EXPECT_EQ(outcome.failure->detail, "email or password is incorrect");
    }
    EXPECT_TRUE(outcome.tenant_choices.empty());
  });
}

TEST_F(accounts_test, authenticate_follows_the_current_role_membership_and_tenant) {
  open_registration(t1_);
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto bob = person_named("bob@example.com");
    const auto claimed = claim(t1_);
    const auto ada_user = co_await w.accounts.register_member(t1_, ada, claimed);
    const auto bob_user = co_await w.accounts.register_member(t1_, bob, no_token);
    EXPECT_TRUE(ada_user && bob_user);
    if (!ada_user || !bob_user) co_return;
    const std::optional<std::string> tenant = t1_;
    const std::string address = "192.0.2.1";
    const auto login = co_await w.accounts.login(bob.email, bob.password, tenant, address);
    EXPECT_TRUE(login.success);
    if (!login.success) co_return;
    const auto token = login.success->tokens.access_token;

    auto who = co_await w.accounts.authenticate(token);
    EXPECT_TRUE(who);
    if (!who) co_return;
    EXPECT_EQ(who->tenant_id, t1_);
    EXPECT_EQ(who->account_id, bob_user->user.id);
    EXPECT_EQ(who->role, "member");
    EXPECT_EQ(who->permissions, roles_.find("member")->permissions);
    EXPECT_EQ(who->session_id, login.success->tokens.session_id);
    EXPECT_EQ(who->tenant_schema_version, 1);

    // A promotion made elsewhere applies once its invalidation arrives, whatever the token says.
    exec("UPDATE memberships SET role = 'admin' WHERE account_id = '" + bob_user->user.id + "'");
    w.access.invalidate(invalidation::of_member(t1_, bob_user->user.id));
    who = co_await w.accounts.authenticate(token);
    EXPECT_TRUE(who);
    if (who) {
      EXPECT_EQ(who->role, "admin");
      EXPECT_EQ(who->permissions, roles_.find("admin")->permissions);
    }

    const std::string garbage = "not.a.token";
    const auto rejected = co_await w.accounts.authenticate(garbage);
    EXPECT_FALSE(rejected);
    if (!rejected) {
      EXPECT_EQ(rejected.err().code, errc::unauthorized);
    }

    // Removal: the token stops working at once.
    const auto owner = co_await principal_of(w.accounts, ada, t1_);
    const auto removed = co_await w.accounts.remove_member(owner, bob_user->user.id, false);
    EXPECT_TRUE(removed);
    const auto after_removal = co_await w.accounts.authenticate(token);
    EXPECT_FALSE(after_removal);
    if (!after_removal) {
      EXPECT_EQ(after_removal.err().code, errc::unauthorized);
    }
    EXPECT_EQ(tenant_user(t1_db_, bob_user->user.id).size(), 1U) << "DELETE /api/members keeps the user row";
    const auto ended = query("SELECT end_reason FROM sessions WHERE id = '" + login.success->tokens.session_id + "'");
    EXPECT_EQ(ended.at(0).at(0), "member_removed");

    // Suspension made elsewhere: tenant_suspended once invalidated.
    const auto ada_login = co_await w.accounts.login(ada.email, ada.password, tenant, address);
    EXPECT_TRUE(ada_login.success);
    if (!ada_login.success) co_return;
    const auto ada_token = ada_login.success->tokens.access_token;
    const auto before = co_await w.accounts.authenticate(ada_token);
    EXPECT_TRUE(before);
    exec("UPDATE tenants SET status = 'suspended' WHERE id = '" + t1_ + "'");
    w.access.invalidate(invalidation::of_tenant(t1_));
    w.tenants.invalidate(t1_);
    const auto suspended = co_await w.accounts.authenticate(ada_token);
    EXPECT_FALSE(suspended);
    if (!suspended) {
      EXPECT_EQ(suspended.err().code, errc::tenant_suspended);
    }
    const auto suspended_login = co_await w.accounts.login(ada.email, ada.password, tenant, address);
    EXPECT_FALSE(suspended_login.success);
    if (suspended_login.failure) {
      EXPECT_EQ(suspended_login.failure->code, errc::tenant_suspended);
    }
  });
}

TEST_F(accounts_test, remove_member_keeps_the_last_owner) {
  open_registration(t1_);
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto bob = person_named("bob@example.com");
    const auto claimed = claim(t1_);
    const auto ada_user = co_await w.accounts.register_member(t1_, ada, claimed);
    const auto bob_user = co_await w.accounts.register_member(t1_, bob, no_token);
    if (!ada_user || !bob_user) {
      ADD_FAILURE() << "registration failed";
      co_return;
    }
    const auto owner = co_await principal_of(w.accounts, ada, t1_);

    auto result = co_await w.accounts.remove_member(owner, ada_user->user.id, true);
    EXPECT_FALSE(result);
    if (!result) {
      EXPECT_EQ(result.err().code, errc::last_owner);
    }
    EXPECT_EQ(role_in(t1_, ada_user->user.id), "owner");
    EXPECT_EQ(tenant_user(t1_db_, ada_user->user.id).size(), 1U);

    // An admin may not remove an owner.
    exec("UPDATE memberships SET role = 'admin' WHERE account_id = '" + bob_user->user.id + "'");
    const auto admin = co_await principal_of(w.accounts, bob, t1_);
    EXPECT_EQ(admin.role, "admin");
    result = co_await w.accounts.remove_member(admin, ada_user->user.id, true);
    EXPECT_FALSE(result);
    if (!result) {
      EXPECT_EQ(result.err().code, errc::forbidden);
    }

    // With a second owner, the first may go (user row and sessions too).
    exec("UPDATE memberships SET role = 'owner' WHERE account_id = '" + bob_user->user.id + "'");
    w.access.invalidate(invalidation::of_member(t1_, bob_user->user.id));
    const auto second_owner = co_await principal_of(w.accounts, bob, t1_);
    result = co_await w.accounts.remove_member(second_owner, ada_user->user.id, true);
    EXPECT_TRUE(result);
    EXPECT_TRUE(role_in(t1_, ada_user->user.id).empty());
    EXPECT_TRUE(tenant_user(t1_db_, ada_user->user.id).empty());
    EXPECT_EQ(query("SELECT count(*) FROM sessions WHERE account_id = '" + ada_user->user.id + "' AND ended_at IS NULL")
                  .at(0)
                  .at(0),
              "0");
    EXPECT_EQ(query("SELECT count(*) FROM accounts WHERE id = '" + ada_user->user.id + "'").at(0).at(0), "1")
        << "the global account stays";

    // Unknown user: not_found.
    const std::string nobody = "00000000-0000-4000-8000-000000000000";
    result = co_await w.accounts.remove_member(second_owner, nobody, true);
    EXPECT_FALSE(result);
    if (!result) {
      EXPECT_EQ(result.err().code, errc::not_found);
    }
  });
}

TEST_F(accounts_test, joining_adopts_the_directory_entry_with_the_same_email) {
  test::admin_exec(
      "INSERT INTO users (id, email, first_name, last_name) VALUES "
      "('00000000-0000-4000-8000-0000000000aa', 'ada@example.com', 'Ada', 'Lovelace')",
      t1_db_.name());
  run_coro([&](auto ex) -> net::awaitable<void> {
    world w(ex, *this);
    const auto ada = person_named("ada@example.com");
    const auto claimed = claim(t1_);
    const auto joined = co_await w.accounts.register_member(t1_, ada, claimed);
    EXPECT_TRUE(joined);
    if (!joined) co_return;
    EXPECT_NE(joined->user.id, "00000000-0000-4000-8000-0000000000aa");
    EXPECT_EQ(query("SELECT id FROM accounts WHERE email = 'ada@example.com'").at(0).at(0), joined->user.id)
        << "the entry's id became the account id";
    EXPECT_EQ(joined->user.first_name, "Ada") << "the entry's names stay";
    EXPECT_EQ(joined->user.last_name, "Lovelace");
    EXPECT_EQ(test::admin_query("SELECT count(*) FROM users", t1_db_.name()).at(0).at(0), "1");
    EXPECT_EQ(tenant_user(t1_db_, joined->user.id).size(), 1U);
  });
}

}  // namespace
}  // namespace tenantd::identity

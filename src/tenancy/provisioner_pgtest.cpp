// Provisioner against a fresh master database: a created tenant has a migrated database
// closed to PUBLIC and an active row; every failure leaves neither row nor database behind,
// and a database it did not create is never touched.
#include "tenancy/provisioner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <mutex>

#include "db/master_repository.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

// Passed explicitly: a defaulted `= {}` argument would be a braced temporary inside co_await.
const provisioner::ready_step no_step;

bool database_exists(const std::string& name) {
  return !test::admin_query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'").empty();
}

std::vector<std::vector<std::string>> tenant_rows(const test::test_database& master, const std::string& id) {
  return test::admin_query("SELECT status, database_name, schema_version FROM tenants WHERE id = '" + id + "'",
                           master.name());
}

// A master database (migrated) plus a unique database prefix; drops every database with
// that prefix at the end, so a failing test leaves nothing behind.
class provisioner_test : public ::testing::Test {
 protected:
  void SetUp() override { test::migrate_master(master_); }

  void TearDown() override {
    for (const auto& row : test::admin_query("SELECT datname FROM pg_database")) {
      if (row.at(0).starts_with(prefix_)) {
        test::admin_exec("ALTER DATABASE " + row.at(0) + " WITH IS_TEMPLATE false");
        test::admin_exec("DROP DATABASE IF EXISTS " + row.at(0) + " WITH (FORCE)");
      }
    }
  }

  provisioning_settings settings() const {
    const auto& pg = test::pg_cluster();
    provisioning_settings s;
    s.database_prefix = prefix_;
    s.master_user = pg.app_user;
    s.tenant.host = pg.host;
    s.tenant.port = std::to_string(pg.port);
    s.tenant.user = pg.app_user;
    s.tenant.password = pg.app_password;
    return s;
  }

  std::shared_ptr<db::pool> master_pool(net::any_io_executor ex) const {
    db::pool_options options;
    options.connection.conninfo = master_.conninfo();
    options.max_size = 4;
    return db::pool::create(std::move(ex), std::move(options));
  }

  std::unique_ptr<provisioner> make_provisioner(net::any_io_executor ex) const {
    return std::make_unique<provisioner>(master_pool(std::move(ex)), settings(),
                                         db::parse_migrations(db::embedded_tenant_migrations()));
  }

  test::test_database master_;
  std::string prefix_ = test::unique_name("p") + "_";
};

TEST_F(provisioner_test, create_makes_a_migrated_private_database_and_an_active_row) {
  const std::string id = "acme_corp";
  const std::string name = "Acme Corporation";
  const std::string database = prefix_ + id;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    EXPECT_EQ(p->database_name(id), database);
    EXPECT_EQ(p->latest_version(), 1);
    const auto created = co_await p->create(id, name, no_step);
    EXPECT_TRUE(created);
    if (!created) co_return;
    EXPECT_EQ(created->id, id);
    EXPECT_EQ(created->name, name);
    EXPECT_EQ(created->status, tenant_status::active);
    EXPECT_EQ(created->database_name, database);
    EXPECT_EQ(created->schema_version, 1);
    EXPECT_FALSE(created->created_at.empty());
  });

  EXPECT_TRUE(database_exists(database));
  const auto users_table = test::admin_query("SELECT to_regclass('public.users') IS NOT NULL", database);
  EXPECT_EQ(users_table.at(0).at(0), "t");
  const auto applied = test::admin_query("SELECT max(version) FROM schema_migrations", database);
  EXPECT_EQ(applied.at(0).at(0), "1");
  const auto& pg = test::pg_cluster();
  const auto privileges =
      test::admin_query("SELECT has_database_privilege('public', '" + database +
                        "', 'CONNECT'), has_database_privilege('" + pg.app_user + "', '" + database + "', 'CONNECT')");
  EXPECT_EQ(privileges.at(0).at(0), "f") << "PUBLIC may not connect";
  EXPECT_EQ(privileges.at(0).at(1), "t") << "the tenant role may";
  const auto row = tenant_rows(master_, id);
  EXPECT_EQ(row.size(), 1U);
  EXPECT_EQ(row.at(0).at(0), "active");
  EXPECT_EQ(row.at(0).at(1), database);
  EXPECT_EQ(row.at(0).at(2), "1");
}

TEST_F(provisioner_test, duplicate_id_is_tenant_exists_and_leaves_the_first_alone) {
  const std::string id = "acme_corp";
  const std::string name = "Acme";
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    const auto first = co_await p->create(id, name, no_step);
    EXPECT_TRUE(first);
    const std::string other_name = "Impostor";
    const auto second = co_await p->create(id, other_name, no_step);
    EXPECT_FALSE(second);
    if (!second) {
      EXPECT_EQ(second.err().code, errc::tenant_exists);
    }
  });
  EXPECT_TRUE(database_exists(prefix_ + id));
  const auto row = tenant_rows(master_, id);
  EXPECT_EQ(row.size(), 1U);
  EXPECT_EQ(row.at(0).at(0), "active");
  const auto names = test::admin_query("SELECT name FROM tenants", master_.name());
  EXPECT_EQ(names.at(0).at(0), "Acme");
}

TEST_F(provisioner_test, existing_database_without_a_row_is_tenant_exists_and_untouched) {
  const std::string id = "orphan";
  const std::string database = prefix_ + id;
  test::admin_exec("CREATE DATABASE " + database + " OWNER " + test::pg_cluster().app_user);
  test::admin_exec("CREATE TABLE precious (v text); INSERT INTO precious VALUES ('keep me')", database);
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    const std::string name = "Orphan";
    const auto created = co_await p->create(id, name, no_step);
    EXPECT_FALSE(created);
    if (!created) {
      EXPECT_EQ(created.err().code, errc::tenant_exists);
    }
  });
  EXPECT_TRUE(database_exists(database));
  const auto kept = test::admin_query("SELECT v FROM precious", database);
  EXPECT_EQ(kept.size(), 1U);
  EXPECT_EQ(kept.at(0).at(0), "keep me");
  EXPECT_TRUE(test::admin_query("SELECT to_regclass('public.users')", database).at(0).at(0).empty()) << "not migrated";
  EXPECT_TRUE(tenant_rows(master_, id).empty());
}

// The database appears after the existence check but before CREATE DATABASE (another actor
// was faster): creation fails and rolls back, and that database is not dropped. The master
// pool has one connection and hands it out in FIFO order, which makes the interleaving exact.
TEST_F(provisioner_test, database_created_by_another_actor_meanwhile_is_not_dropped) {
  const std::string id = "latecomer";
  const std::string database = prefix_ + id;
  bool create_threw = false;
  run_coro([&](auto ex) -> net::awaitable<void> {
    db::pool_options options;
    options.connection.conninfo = master_.conninfo();
    options.max_size = 1;
    options.acquire_timeout = 20s;
    auto master = db::pool::create(ex, std::move(options));
    provisioner p(master, settings(), db::parse_migrations(db::embedded_tenant_migrations()));
    const auto wait_for_waiters = [&](std::size_t n) -> net::awaitable<void> {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (master->stats().waiters < n && std::chrono::steady_clock::now() < deadline) {
        net::steady_timer timer(ex, 2ms);
        co_await timer.async_wait(net::use_awaitable);
      }
    };
    bool done = false;
    auto held = co_await master->acquire();
    auto create = [&]() -> net::awaitable<void> {
      try {
        const std::string name = "Latecomer";
        (void)co_await p.create(id, name, no_step);
      } catch (const db::pg_error&) {
        create_threw = true;
      }
      done = true;
    };
    net::co_spawn(ex, create(), net::detached);
    co_await wait_for_waiters(1);  // create() waits for the connection (row insert + check)
    auto other_actor = [&]() -> net::awaitable<void> {
      auto conn = co_await master->acquire();  // gets it between the check and CREATE DATABASE
      test::admin_exec("CREATE DATABASE " + database + " OWNER " + test::pg_cluster().app_user);
      test::admin_exec("CREATE TABLE precious (v text); INSERT INTO precious VALUES ('keep me')", database);
    };
    net::co_spawn(ex, other_actor(), net::detached);
    co_await wait_for_waiters(2);
    held = db::pooled_connection();
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      net::steady_timer timer(ex, 5ms);
      co_await timer.async_wait(net::use_awaitable);
    }
    EXPECT_TRUE(done);
  });
  // Whether CREATE DATABASE reports the duplicate (42P04) or the existence check already saw
  // it depends on where the other actor slipped in; either way nothing of theirs is dropped.
  (void)create_threw;
  EXPECT_TRUE(database_exists(database)) << "a database we did not create is never dropped";
  if (database_exists(database)) {
    EXPECT_EQ(test::admin_query("SELECT v FROM precious", database).size(), 1U);
  }
  EXPECT_TRUE(tenant_rows(master_, id).empty()) << "the row is rolled back";
}

TEST_F(provisioner_test, ready_step_error_rolls_everything_back) {
  const std::string id = "refused";
  const std::string database = prefix_ + id;
  bool step_saw_database = false;
  std::string step_status;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    provisioner::ready_step step = [&](const tenant_record& t) -> net::awaitable<status> {
      step_saw_database = database_exists(t.database_name);
      step_status = tenant_rows(master_, t.id).at(0).at(0);
      co_return make_error(errc::email_taken, "owner email taken");
    };
    const std::string name = "Refused";
    const auto created = co_await p->create(id, name, step);
    EXPECT_FALSE(created);
    if (!created) {
      EXPECT_EQ(created.err().code, errc::email_taken);
      EXPECT_EQ(created.err().detail, "owner email taken");
    }
  });
  EXPECT_TRUE(step_saw_database) << "the step runs once the database exists";
  EXPECT_EQ(step_status, "provisioning");
  EXPECT_FALSE(database_exists(database));
  EXPECT_TRUE(tenant_rows(master_, id).empty());

  // The id can be used again afterwards.
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    const std::string name = "Second try";
    const auto created = co_await p->create(id, name, no_step);
    EXPECT_TRUE(created);
  });
  EXPECT_TRUE(database_exists(database));
}

TEST_F(provisioner_test, ready_step_exception_rolls_back_and_propagates) {
  const std::string id = "throwing";
  const std::string database = prefix_ + id;
  EXPECT_THROW(run_coro([&](auto ex) -> net::awaitable<void> {
                 auto p = make_provisioner(ex);
                 provisioner::ready_step step = [](const tenant_record&) -> net::awaitable<status> {
                   throw std::logic_error("step failed");
                   co_return ok();
                 };
                 const std::string name = "Throwing";
                 (void)co_await p->create(id, name, step);
               }),
               std::logic_error);
  EXPECT_FALSE(database_exists(database));
  EXPECT_TRUE(tenant_rows(master_, id).empty());
}

TEST_F(provisioner_test, concurrent_creates_of_one_id_yield_one_tenant) {
  const std::string id = "racer";
  const std::string database = prefix_ + id;
  std::mutex mutex;
  std::vector<std::optional<errc>> outcomes;  // nullopt: success
  std::vector<std::string> failures;
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto p = make_provisioner(ex);
        auto attempt = [&](std::string name) -> net::awaitable<void> {
          try {
            const auto created = co_await p->create(id, name, no_step);
            std::lock_guard lock(mutex);
            outcomes.push_back(created ? std::nullopt : std::optional<errc>(created.err().code));
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex);
            failures.emplace_back(e.what());
          }
        };
        net::co_spawn(ex, attempt("Racer one"), net::detached);
        net::co_spawn(ex, attempt("Racer two"), net::detached);
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        for (;;) {
          {
            std::lock_guard lock(mutex);
            if (outcomes.size() + failures.size() == 2) break;
          }
          if (std::chrono::steady_clock::now() > deadline) break;
          net::steady_timer timer(ex, 10ms);
          co_await timer.async_wait(net::use_awaitable);
        }
      },
      std::chrono::seconds(90), 2);
  EXPECT_TRUE(failures.empty()) << (failures.empty() ? "" : failures.front());
  EXPECT_EQ(outcomes.size(), 2U);
  int successes = 0, exists = 0;
  for (const auto& o : outcomes) {
    if (!o)
      ++successes;
    else if (*o == errc::tenant_exists)
      ++exists;
  }
  EXPECT_EQ(successes, 1);
  EXPECT_EQ(exists, 1);
  const auto databases = test::admin_query("SELECT count(*) FROM pg_database WHERE datname = '" + database + "'");
  EXPECT_EQ(databases.at(0).at(0), "1");
  const auto row = tenant_rows(master_, id);
  EXPECT_EQ(row.size(), 1U);
  if (!row.empty()) {
    EXPECT_EQ(row.at(0).at(0), "active");
  }
}

TEST_F(provisioner_test, remove_drops_the_database_and_the_row) {
  const std::string id = "doomed";
  const std::string database = prefix_ + id;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = make_provisioner(ex);
    const std::string name = "Doomed";
    const auto created = co_await p->create(id, name, no_step);
    EXPECT_TRUE(created);
    // An open connection to the tenant database does not stop the drop.
    db::connection_options options;
    options.conninfo = test::app_conninfo(database);
    auto holder = co_await db::connection::connect(ex, options);
    co_await p->remove(id);
    // Removing again is harmless.
    co_await p->remove(id);
  });
  EXPECT_FALSE(database_exists(database));
  EXPECT_TRUE(tenant_rows(master_, id).empty());
}

}  // namespace
}  // namespace tenantd::tenancy

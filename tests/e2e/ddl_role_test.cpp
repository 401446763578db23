// MIGRATION_DATABASE_URL: a runtime role without CREATEDB (MASTER_DATABASE_URL) serves
// everything while a separate DDL role creates, migrates, restores and owns the databases.
// The runtime role cannot create databases nor alter or drop what the DDL role made.
#include "support/e2e_cli.hpp"
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <libpq-fe.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace tenantd::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

class ddl_role : public e2e_test {
 protected:
  void SetUp() override {
    runtime_ = unique_name("rt_");
    ddl_ = unique_name("ddl_");
    runtime_password_ = random_token(24);
    ddl_password_ = random_token(24);
    admin_exec("CREATE ROLE " + runtime_ + " LOGIN NOCREATEDB NOSUPERUSER PASSWORD '" + runtime_password_ + "'");
    admin_exec("CREATE ROLE " + ddl_ + " LOGIN CREATEDB NOSUPERUSER PASSWORD '" + ddl_password_ + "'");
    e2e_test::SetUp();
  }

  void TearDown() override {
    e2e_test::TearDown();  // stops the server and drops its databases
    for (const auto& role : {runtime_, ddl_}) {
      try {
        admin_exec("DROP ROLE IF EXISTS " + role);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "cannot drop role " << role << ": " << e.what();
      }
    }
  }

  void prepare_server(e2e_server& s) override { s.set_master_owner(ddl_); }

  env_overrides server_env() const override {
    return {{"MASTER_DATABASE_URL", url(runtime_, runtime_password_)},
            {"MIGRATION_DATABASE_URL", url(ddl_, ddl_password_)}};
  }

  std::string url(const std::string& user, const std::string& password) const {
    const auto& c = pg_cluster();
    return "postgresql://" + user + ":" + password + "@" + c.host + ":" + std::to_string(c.port) + "/" +
           server().master_database();
  }

  // Runs `sql` on `database` as the runtime role: "" on success, else the SQLSTATE.
  std::string as_runtime(const std::string& database, const std::string& sql) const {
    const auto& c = pg_cluster();
    const std::string conninfo = "host=" + c.host + " port=" + std::to_string(c.port) + " user=" + runtime_ +
                                 " password=" + runtime_password_ + " dbname=" + database;
    PGconn* conn = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = PQerrorMessage(conn);
      PQfinish(conn);
      throw std::runtime_error("connect as " + runtime_ + " to " + database + ": " + message);
    }
    PGresult* r = PQexec(conn, sql.c_str());
    std::string state;
    if (const auto status = PQresultStatus(r); status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      state = code != nullptr ? code : "?";
    }
    PQclear(r);
    PQfinish(conn);
    return state;
  }

  std::string owner_of_database(const std::string& database) const {
    const auto rows = admin_query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '" + database + "'");
    return rows.empty() ? std::string("(no database)") : rows.at(0).at(0);
  }

  // Relations (tables, indexes, sequences...) the runtime role owns in `database`.
  std::string relations_owned_by_runtime(const std::string& database) const {
    return admin_query("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = '" +
                           runtime_ + "')",
                       database)
        .at(0)
        .at(0);
  }

  // Creates a directory user, reads, updates, lists and deletes it with `token`.
  void crud_users(const std::string& token, const std::string& tag) const {
    const std::string email = tag + "@split.example";
    const auto created =
        post("/api/users", json::object{{"email", email}, {"first_name", "Dee"}, {"last_name", "Ell"}}, token);
    ASSERT_EQ(created.status, 201u) << created.describe();
    const auto id = json_string(created.json(), "id");
    EXPECT_EQ(get("/api/users/" + id, token).status, 200u);
    const auto updated = put("/api/users/" + id, json::object{{"first_name", "Dora"}}, token);
    EXPECT_EQ(updated.status, 200u) << updated.describe();
    EXPECT_EQ(json_string(updated.json(), "first_name"), "Dora");
    const auto listed = get("/api/users?email=" + tag, token);
    EXPECT_EQ(listed.status, 200u) << listed.describe();
    EXPECT_EQ(del("/api/users/" + id, token).status, 204u);
    EXPECT_EQ(get("/api/users/" + id, token).status, 404u);
  }

  std::string runtime_, ddl_, runtime_password_, ddl_password_;
};

TEST_F(ddl_role, runtime_role_without_createdb_serves_tenants_users_and_members) {
  EXPECT_EQ(admin_query("SELECT rolcreatedb FROM pg_roles WHERE rolname = '" + runtime_ + "'").at(0).at(0), "f");
  EXPECT_EQ(as_runtime(server().master_database(), "CREATE DATABASE " + unique_name("nope_")), "42501")
      << "the runtime role must not be able to create databases";

  const auto owner = tenant_with_owner("split_co");
  crud_users(owner.token, "dir1");
  // An invited user (account in master + membership + invitation used + tenant row), and a member.
  const auto with_login =
      register_invited("split_co", "login@split.example", invite(owner, "login@split.example", "member"));
  ASSERT_EQ(with_login.status, 201u) << with_login.describe();
  EXPECT_EQ(login("login@split.example", default_password, "split_co").tenant_id, "split_co");
  const auto member = add_member(owner, "member@split.example");
  EXPECT_EQ(get("/api/me", member.token).status, 200u);
  EXPECT_EQ(get("/api/members", owner.token).status, 200u);

  // The DDL role owns the tenant database and everything in it; the runtime role owns nothing.
  const auto database = server().tenant_database("split_co");
  EXPECT_EQ(owner_of_database(database), ddl_);
  EXPECT_EQ(owner_of_database(server().master_database()), ddl_);
  EXPECT_EQ(relations_owned_by_runtime(database), "0");
  EXPECT_EQ(relations_owned_by_runtime(server().master_database()), "0");
  EXPECT_EQ(as_runtime(database, "DROP TABLE users"), "42501");
  EXPECT_EQ(as_runtime(database, "ALTER TABLE users ADD COLUMN x int"), "42501");
  EXPECT_EQ(as_runtime(database, "CREATE TABLE shadow (a int)"), "42501");
  EXPECT_EQ(as_runtime(database, "DELETE FROM schema_migrations"), "42501");
  EXPECT_EQ(as_runtime(database, "SELECT count(*) FROM schema_migrations"), "") << "the history stays readable";
  EXPECT_EQ(as_runtime(server().master_database(), "DROP TABLE tenants"), "42501");

  // tenantd doctor checks both roles.
  const auto doctor = run_cli(server(), {"doctor"}, server_env());
  EXPECT_EQ(doctor.exit_code, 0) << doctor.output;
  EXPECT_NE(doctor.output.find("runtime role " + runtime_ + " has no CREATEDB"), std::string::npos) << doctor.output;
  EXPECT_NE(doctor.output.find("role " + ddl_ + " has CREATEDB"), std::string::npos) << doctor.output;
}

TEST_F(ddl_role, backup_and_restore_run_as_the_ddl_role) {
  const auto owner = tenant_with_owner("keep_co");
  crud_users(owner.token, "before");
  const header_list admin = {{"Authorization", "Bearer " + server().admin_token()}};
  const auto backup = client().send_json("POST", "/admin/tenants/keep_co/backup", json::object{}, admin);
  ASSERT_EQ(backup.status, 201u) << backup.describe();
  const auto restored =
      client().send_json("POST", "/admin/tenants/keep_co/restore",
                         json::object{{"backup", json_string(backup.json(), "backup")}, {"as", "kept_copy"}}, admin);
  ASSERT_EQ(restored.status, 201u) << restored.describe();
  EXPECT_EQ(owner_of_database(server().tenant_database("kept_copy")), ddl_);
  EXPECT_EQ(relations_owned_by_runtime(server().tenant_database("kept_copy")), "0");
  const auto copy = login(owner.email, default_password, "kept_copy");
  crud_users(copy.token, "after");
}

// The built-in V001 plus V002, which adds a table with a sequence.
struct migrations_dir : tenant_migrations_dir {
  migrations_dir()
      : tenant_migrations_dir("V002__notes.sql",
                              "CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL);\n") {}
};

TEST_F(ddl_role, migrate_and_the_cli_run_as_the_ddl_role) {
  const auto owner = tenant_with_owner("mig_co");
  const migrations_dir dir;
  ASSERT_TRUE(server().stop().has_value());

  auto env = server_env();
  env["TENANT_MIGRATIONS_DIR"] = dir.path.string();
  const auto migrated = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string()}, env);
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  const auto database = server().tenant_database("mig_co");
  EXPECT_EQ(as_runtime(database, "INSERT INTO notes (body) VALUES ('written by the runtime role')"), "")
      << "the runtime role must be able to use a table a migration created";
  EXPECT_EQ(relations_owned_by_runtime(database), "0");
  EXPECT_EQ(as_runtime(database, "DROP TABLE notes"), "42501");

  const auto created = run_cli(server(), {"tenants", "create", "cli_split", "Made by the CLI"}, env);
  ASSERT_EQ(created.exit_code, 0) << created.output;
  EXPECT_EQ(owner_of_database(server().tenant_database("cli_split")), ddl_);

  // The server restarts on the new schema (same port, so the fixture's client still reaches
  // it): the template is migrated by the DDL role too.
  env["PORT"] = std::to_string(server().port());
  server().start(env);
  ASSERT_TRUE(server().wait_ready()) << server().log_tail();
  crud_users(owner.token, "migrated");
  const auto fresh = tenant_with_owner("mig_two");
  crud_users(fresh.token, "fresh");
  EXPECT_EQ(as_runtime(server().tenant_database("mig_two"), "INSERT INTO notes (body) VALUES ('x')"), "");
  // The CLI prints the new tenant's claim token; its first owner registers with it.
  const auto at = created.output.find("claim token: ");
  ASSERT_NE(at, std::string::npos) << created.output;
  const auto claim = created.output.substr(at + 13, created.output.find('\n', at) - at - 13);
  const auto joined = post("/auth/register", boost::json::object{{"email", "first@split.example"},
                                                                 {"password", std::string(default_password)},
                                                                 {"first_name", "Fi"},
                                                                 {"last_name", "Rst"},
                                                                 {"tenant_id", "cli_split"},
                                                                 {"claim_token", claim}});
  EXPECT_EQ(joined.status, 201u) << "a tenant the CLI created serves the runtime role:\n" << joined.describe();
}

}  // namespace
}  // namespace tenantd::test

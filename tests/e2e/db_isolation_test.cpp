// Tenant isolation inside PostgreSQL (M01-M04, M07): who may connect to a tenant database,
// how database names are formed, what a new tenant inherits from templates, what the app role
// cannot do, and that the public schema and search_path cannot be used to shadow tables.
// The design uses one runtime role for every tenant database (see docs/security.md).
#include "e2e/security_support.hpp"

#include <chrono>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
using namespace security;
using db_isolation = e2e_test;

std::string one_value(const std::string& sql, const std::string& db = "postgres") {
  return admin_query(sql, db).at(0).at(0);
}

// The role the running server connects to its master database with.
std::string server_role(const e2e_server& s) {
  const auto rows = admin_query("SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = '" +
                                s.master_database() + "' AND application_name = 'tenantd'");
  return rows.size() == 1 ? rows[0][0] : std::string();
}

// Runs `check` against the template database, which refuses connections between migrations.
template <class Check>
void with_template_open(const std::string& name, Check check) {
  admin_exec("ALTER DATABASE \"" + name + "\" WITH ALLOW_CONNECTIONS true");
  check();
  admin_exec("ALTER DATABASE \"" + name + "\" WITH ALLOW_CONNECTIONS false");
}

// A LOGIN role for the duration of a test; dropped (with its grants) on destruction.
class scratch_role {
 public:
  scratch_role() : name_(unique_name("r_")), password_(random_token(24)) {
    admin_exec("CREATE ROLE " + name_ + " LOGIN PASSWORD '" + password_ + "'");
  }
  ~scratch_role() {
    for (const auto& db : granted_) {
      try {
        admin_exec("REVOKE ALL ON DATABASE \"" + db + "\" FROM " + name_);
      } catch (...) {  // the database is gone already
      }
    }
    try {
      admin_exec("DROP ROLE IF EXISTS " + name_);
    } catch (...) {  // the cluster is discarded after the run
    }
  }
  scratch_role(const scratch_role&) = delete;
  scratch_role& operator=(const scratch_role&) = delete;
  void grant_connect(const std::string& db) {
    admin_exec("GRANT CONNECT ON DATABASE \"" + db + "\" TO " + name_);
    granted_.push_back(db);
  }
  pg_session connect(const std::string& db) const { return pg_session(role_conninfo(name_, password_, db)); }
  const std::string& name() const { return name_; }

 private:
  std::string name_, password_;
  std::vector<std::string> granted_;
};

TEST_F(db_isolation, m01_only_the_app_role_may_connect_to_tenant_databases) {
  (void)tenant_with_owner("iso_a");
  (void)create_tenant("iso_b", "B");
  const std::vector<std::string> dbs = {server().tenant_database("iso_a"), server().tenant_database("iso_b"),
                                        server().tenant_db_prefix() + "template"};
  const scratch_role outsider;
  ASSERT_TRUE(outsider.connect("postgres").connected()) << "control: the outsider role can log in at all";
  const std::string app = server_role(server());
  ASSERT_FALSE(app.empty());
  for (const auto& db : dbs) {
    for (const char* privilege : {"CONNECT", "TEMPORARY", "CREATE"}) {
      EXPECT_EQ(one_value("SELECT has_database_privilege('public', '" + db + "', '" + privilege + "')"), "f")
          << "PUBLIC has " << privilege << " on " << db;
      EXPECT_EQ(
          one_value("SELECT has_database_privilege('" + outsider.name() + "', '" + db + "', '" + privilege + "')"), "f")
          << outsider.name() << " has " << privilege << " on " << db;
    }
    EXPECT_EQ(one_value("SELECT has_database_privilege('" + app + "', '" + db + "', 'CONNECT')"), "t") << db;
    if (db.ends_with("template")) continue;  // refuses every connection anyway (ALLOW_CONNECTIONS false)
    const auto attempt = outsider.connect(db);
    EXPECT_FALSE(attempt.connected()) << "an unrelated role connected to " << db;
    EXPECT_NE(attempt.connect_error().find("permission denied for database"), std::string::npos)
        << attempt.connect_error();
  }
  // The one runtime role is an ordinary role: no superuser, no role creation, no replication,
  // no RLS bypass, no server file or program access.
  const auto attributes = admin_query(
      "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = '" + app + "'");
  ASSERT_EQ(attributes.size(), 1u);
  EXPECT_EQ(attributes[0], (std::vector<std::string>{"f", "f", "f", "f"})) << app;
  for (const char* predefined : {"pg_read_server_files", "pg_write_server_files", "pg_execute_server_program",
                                 "pg_read_all_data", "pg_write_all_data"})
    EXPECT_EQ(one_value("SELECT pg_has_role('" + app + "', '" + predefined + "', 'MEMBER')"), "f") << predefined;
}

TEST_F(db_isolation, m02_database_names_are_exactly_prefix_and_id) {
  const std::string prefix = server().tenant_db_prefix();
  // TENANT_DB_PREFIX is at most 20 bytes and an id at most 40: never cut at 63 (NAMEDATALEN - 1).
  ASSERT_LE(prefix.size() + 40, 63u);
  const std::string long1 = std::string(39, 'q') + "1";
  const std::string long2 = std::string(39, 'q') + "2";
  ASSERT_EQ(create_tenant_response(long1, "Long 1").status, 201u);
  ASSERT_EQ(create_tenant_response(long2, "Long 2").status, 201u);
  ASSERT_EQ(create_tenant_response("acme", "Acme").status, 201u);
  expect_problem(create_tenant_response("Acme", "Acme again"), 400, "invalid_input");
  expect_problem(create_tenant_response("acme", "Acme again"), 409, "tenant_exists");
  const std::string master = server().master_database();
  for (const std::string& id :
       {"x\"; DROP DATABASE " + master + "; --", std::string("x\" TEMPLATE \"") + prefix + "acme",
        std::string("x\" OWNER postgres"), std::string("postgres"), std::string("template"), std::string("pg_x"),
        std::string(64, 'a'),
        std::string("\xd0\xb0"
                    "cme"),
        std::string("")})
    expect_problem(create_tenant_response(id, "Hostile"), 400, "invalid_input");
  // Names of system databases are ordinary ids: the prefix keeps them apart from the real ones.
  ASSERT_EQ(create_tenant_response("template1", "Looks like a system name").status, 201u);
  ASSERT_EQ(create_tenant_response(master, "Looks like the master").status, 201u);

  const auto rows =
      admin_query("SELECT datname FROM pg_database WHERE starts_with(datname, '" + prefix + "') ORDER BY datname");
  std::vector<std::string> names;
  for (const auto& r : rows) names.push_back(r[0]);
  EXPECT_EQ(names, (std::vector<std::string>{prefix + "acme", prefix + master, prefix + long1, prefix + long2,
                                             prefix + "template", prefix + "template1"}));
  EXPECT_EQ(one_value("SELECT count(*) FROM pg_database WHERE datname IN ('postgres', 'template0', 'template1', '" +
                      master + "')"),
            "4")
      << "a system or master database disappeared";
  EXPECT_EQ(one_value("SELECT count(*) FROM tenants", master), "5") << "the master database is intact";
  EXPECT_EQ(one_value("SELECT datistemplate::text || datallowconn::text FROM pg_database WHERE datname = 'template1'"),
            "truetrue")
      << "template1 was altered";
}

class db_isolation_canary : public e2e_test {
 protected:
  // The canary goes into template1 before the server starts, so before it creates its own
  // tenant template; it is removed again after the test.
  void SetUp() override {
    canary_ = unique_name("zz_canary_");
    admin_exec("CREATE TABLE public." + canary_ + " (secret text); INSERT INTO public." + canary_ +
                   " VALUES ('from template1'); CREATE FUNCTION public." + canary_ +
                   "_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
               "template1");
    e2e_test::SetUp();
  }
  void TearDown() override {
    e2e_test::TearDown();
    try {
      admin_exec("DROP TABLE IF EXISTS public." + canary_ + "; DROP FUNCTION IF EXISTS public." + canary_ + "_fn()",
                 "template1");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "template1 canary left behind: " << e.what();
    }
  }
  std::string canary_;
};

TEST_F(db_isolation_canary, m03_objects_in_template1_never_reach_a_tenant) {
  const auto owner = tenant_with_owner("canary_co");
  const auto probe = [&](const std::string& db) {
    return one_value("SELECT (to_regclass('public." + canary_ +
                         "') IS NOT NULL)::text || '/' || "
                         "(SELECT count(*) FROM pg_proc WHERE proname = '" +
                         canary_ + "_fn')",
                     db);
  };
  EXPECT_EQ(probe(server().master_database()), "true/1") << "control: databases made from template1 have it";
  EXPECT_EQ(probe(server().tenant_database("canary_co")), "false/0");
  const std::string tmpl = server().tenant_db_prefix() + "template";
  with_template_open(tmpl, [&] {
    EXPECT_EQ(probe(tmpl), "false/0");
    EXPECT_EQ(one_value("SELECT count(*) FROM users", tmpl), "0") << "the template holds no data";
  });
  const std::string db = server().tenant_database("canary_co");
  EXPECT_EQ(one_value("SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension", db), "plpgsql");
  EXPECT_EQ(one_value("SELECT count(*) FROM pg_foreign_server", db), "0");
  EXPECT_EQ(one_value("SELECT count(*) FROM pg_foreign_data_wrapper", db), "0");
  EXPECT_EQ(one_value("SELECT count(*) FROM pg_user_mappings", db), "0");
  EXPECT_EQ(one_value("SELECT string_agg(email, ',') FROM users", db), owner.email) << "only the owner";
}

TEST_F(db_isolation, m04_the_app_role_has_no_way_out_of_its_database) {
  (void)tenant_with_owner("escape_co");
  const auto& c = pg_cluster();
  const pg_session app(role_conninfo(c.app_user, c.app_password, server().tenant_database("escape_co")));
  ASSERT_TRUE(app.connected()) << app.connect_error();
  const std::vector<std::string> refused = {
      "CREATE EXTENSION dblink",
      "CREATE EXTENSION postgres_fdw",
      "CREATE EXTENSION file_fdw",
      "COPY (SELECT 1) TO PROGRAM 'true'",
      "COPY users FROM '/etc/passwd'",
      "COPY users TO '/tmp/tenantd-m04-out'",
      "SELECT pg_read_file('/etc/passwd')",
      "SELECT pg_read_binary_file('/etc/passwd')",
      "SELECT pg_ls_dir('.')",
      "SELECT lo_import('/etc/passwd')",
      "CREATE ROLE m04_role",
      "ALTER SYSTEM SET work_mem = '1MB'",
      "SET ROLE " + c.superuser,
      "CREATE FUNCTION m04_fn() RETURNS int LANGUAGE c AS 'libc.so.6', 'getpid'",
  };
  for (const auto& sql : refused) {
    const auto r = app.exec(sql);
    EXPECT_FALSE(r.ok) << "the app role may: " << sql;
    EXPECT_EQ(r.sqlstate, "42501") << sql << ": " << r.message;
  }
  // By design, and the reason tenant ids must not be secrets: every role that can log in sees
  // every database name (pg_database is a shared catalog).
  const auto names = app.exec("SELECT datname FROM pg_database");
  ASSERT_TRUE(names.ok) << names.message;
  bool sees_master = false;
  for (const auto& row : names.rows) sees_master = sees_master || row[0] == server().master_database();
  EXPECT_TRUE(sees_master);
}

TEST_F(db_isolation, m07_public_schema_is_closed_and_shadow_schemas_are_ignored) {
  const auto owner = tenant_with_owner("shadow_co");
  const std::string db = server().tenant_database("shadow_co");
  const std::string tmpl = server().tenant_db_prefix() + "template";
  EXPECT_EQ(one_value("SELECT has_schema_privilege('public', 'public', 'CREATE')", db), "f");
  with_template_open(
      tmpl, [&] { EXPECT_EQ(one_value("SELECT has_schema_privilege('public', 'public', 'CREATE')", tmpl), "f"); });
  {
    scratch_role second;
    second.grant_connect(db);
    const auto s = second.connect(db);
    ASSERT_TRUE(s.connected()) << s.connect_error();
    for (const char* sql : {"CREATE TABLE public.users_shadow (id uuid)", "CREATE SCHEMA evil",
                            "CREATE TEMPORARY TABLE users (id uuid)", "CREATE VIEW public.users_v AS SELECT 1"}) {
      const auto r = s.exec(sql);
      EXPECT_FALSE(r.ok) << "a second role may: " << sql;
      EXPECT_EQ(r.sqlstate, "42501") << sql << ": " << r.message;
    }
    EXPECT_FALSE(s.exec("SELECT count(*) FROM users").ok) << "a second role may read the tenant's users";
  }

  // CVE-2018-1058 shape: a schema named like the app role comes first in the default
  // search_path ("$user", public). The app must keep using public.users.
  const std::string app = server_role(server());
  ASSERT_FALSE(app.empty());
  admin_exec("CREATE SCHEMA \"" + app + "\"; CREATE TABLE \"" + app + "\".users (LIKE public.users INCLUDING ALL); " +
                 "INSERT INTO \"" + app + "\".users (id, email, first_name, last_name) VALUES (gen_random_uuid(), " +
                 "'shadow@evil.example', 'Shadow', 'Table'); GRANT USAGE ON SCHEMA \"" + app + "\" TO PUBLIC; " +
                 "GRANT ALL ON \"" + app + "\".users TO PUBLIC",
             db);
  admin_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db + "'");
  http_response listed;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((listed = get("/api/users", owner.token)).status != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  EXPECT_EQ(listed.body.find("shadow@evil.example"), std::string::npos) << "the app read a shadow table:\n"
                                                                        << listed.body;
  EXPECT_EQ(json_field(listed.json(), "total"), json::value(1)) << listed.body;
  ASSERT_EQ(post("/api/users", json::object{{"email", "new@shadow.example"}, {"first_name", "N"}, {"last_name", "W"}},
                 owner.token)
                .status,
            201u);
  EXPECT_EQ(one_value("SELECT count(*) FROM public.users", db), "2");
  EXPECT_EQ(one_value("SELECT count(*) FROM \"" + app + "\".users", db), "1") << "the app wrote into a shadow table";
}

}  // namespace
}  // namespace tenantd::test

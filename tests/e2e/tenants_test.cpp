// POST /tenants: validation (ids, reserved names, injection strings, names), the database it
// creates (private to the app), conflicts and races, owner creation, TENANT_SIGNUP=closed.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <atomic>
#include <thread>
#include <vector>

namespace tenantd::test {
namespace {

using tenants = e2e_test;
namespace json = boost::json;

std::vector<std::string> databases_with_prefix(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& row : admin_query("SELECT datname FROM pg_database WHERE starts_with(datname, '" + prefix +
                                     "') AND datname NOT LIKE '%template%' ORDER BY 1"))
    out.push_back(row[0]);
  return out;
}

bool database_exists(const std::string& name) {
  return !admin_query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'").empty();
}

TEST_F(tenants, create_returns_tenant_and_a_private_database) {
  const auto r = create_tenant_response("acme_corp", "  Acme Corporation  ");
  ASSERT_EQ(r.status, 201u) << r.describe();
  const auto v = r.json();
  EXPECT_EQ(json_string(v, "id"), "acme_corp");
  EXPECT_EQ(json_string(v, "name"), "Acme Corporation") << "name must be trimmed";
  EXPECT_EQ(json_string(v, "status"), "active");
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "created_at"))) << r.body;
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "updated_at"))) << r.body;
  EXPECT_FALSE(v.as_object().contains("token")) << "no owner, so no token: " << r.body;
  EXPECT_GE(json_string(v, "claim_token").size(), 32u) << "no owner, so a claim token: " << r.body;

  const std::string db = server().tenant_database("acme_corp");
  ASSERT_TRUE(database_exists(db)) << "expected database " << db;
  const auto pub = admin_query("SELECT has_database_privilege('public', '" + db + "', 'CONNECT')");
  EXPECT_EQ(pub.at(0).at(0), "f") << "PUBLIC can still CONNECT to " << db;
  const std::string outsider = unique_name("r_");
  admin_exec("CREATE ROLE " + outsider + " LOGIN");
  const auto other = admin_query("SELECT has_database_privilege('" + outsider + "', '" + db + "', 'CONNECT')");
  admin_exec("DROP ROLE " + outsider);
  EXPECT_EQ(other.at(0).at(0), "f") << "an unrelated role can CONNECT to " << db;
}

TEST_F(tenants, invalid_ids_are_rejected_without_creating_anything) {
  const std::vector<std::string> bad_ids = {
      "",
      "ab",
      std::string(41, 'a'),
      "Acme",
      "ACME_CORP",
      "1acme",
      "_acme",
      "acme-corp",
      "acme corp",
      "acme.corp",
      " acme_corp",
      "acme_corp ",
      "pg_tenant",
      "pg_catalog",
      "template",
      "master",
      "postgres",
      "admin",
      "default",
      "public",
      "x\"; DROP DATABASE postgres; --",
      "x\" TEMPLATE \"t_a",
      "acme' OR '1'='1",
      "acme;drop",
      "acme\\x",
      "../etc/passwd",
      "acm\xc3\xa9",                           // é
      "\xef\xbd\x81\xef\xbd\x82\xef\xbd\x83",  // fullwidth abc
      "acme\ncorp",
  };
  for (const auto& id : bad_ids) {
    const auto r = create_tenant_response(id, "Bad Tenant");
    EXPECT_EQ(r.status, 400u) << "id [" << id << "]:\n" << r.describe();
  }
  for (const json::value& id :
       {json::value(123), json::value(nullptr), json::value(json::array{"abc"}), json::value(true)}) {
    const auto r = post("/tenants", json::object{{"id", id}, {"name", "Typed"}});
    EXPECT_EQ(r.status, 400u) << "id " << json::serialize(id) << ":\n" << r.describe();
  }
  const auto missing = post("/tenants", json::object{{"name", "No Id"}});
  EXPECT_EQ(missing.status, 400u) << missing.describe();
  EXPECT_TRUE(databases_with_prefix(server().tenant_db_prefix()).empty()) << "a rejected id left a database behind";
}

TEST_F(tenants, id_boundaries_are_accepted) {
  EXPECT_EQ(create_tenant_response("abc", "Three").status, 201u);
  EXPECT_EQ(create_tenant_response(std::string(40, 'z'), "Forty").status, 201u);
  EXPECT_EQ(create_tenant_response("a1_b2_c3", "Digits").status, 201u);
  EXPECT_TRUE(database_exists(server().tenant_database(std::string(40, 'z'))));
}

TEST_F(tenants, name_is_trimmed_and_limited_to_200_characters) {
  EXPECT_EQ(create_tenant_response("name_empty", "").status, 400u);
  EXPECT_EQ(create_tenant_response("name_blank", "   \t ").status, 400u);
  EXPECT_EQ(create_tenant_response("name_long", std::string(201, 'n')).status, 400u);
  EXPECT_EQ(post("/tenants", json::object{{"id", "name_missing"}}).status, 400u);
  EXPECT_EQ(post("/tenants", json::object{{"id", "name_number"}, {"name", 5}}).status, 400u);

  const auto max = create_tenant_response("name_max", std::string(200, 'n'));
  EXPECT_EQ(max.status, 201u) << max.describe();
  // 200 characters of two bytes each: the limit is in characters.
  std::string accented;
  for (int i = 0; i < 200; ++i) accented += "\xc3\xa9";
  const auto wide = create_tenant_response("name_wide", accented);
  ASSERT_EQ(wide.status, 201u) << wide.describe();
  EXPECT_EQ(json_string(wide.json(), "name"), accented);
  const auto padded = create_tenant_response("name_padded", "  " + std::string(200, 'p') + "  ");
  EXPECT_EQ(padded.status, 201u) << "200 characters after trimming:\n" << padded.describe();
}

TEST_F(tenants, caller_cannot_set_status_or_timestamps) {
  const auto r = post("/tenants", json::object{{"id", "sneaky"},
                                               {"name", "Sneaky"},
                                               {"status", "suspended"},
                                               {"created_at", "2000-01-01T00:00:00Z"},
                                               {"unknown", 1}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "status"), "active");
  EXPECT_NE(json_string(r.json(), "created_at"), "2000-01-01T00:00:00Z");
}

TEST_F(tenants, duplicate_id_is_a_conflict) {
  (void)create_tenant("dup_co", "First");
  const auto again = create_tenant_response("dup_co", "Second");
  expect_problem(again, 409, "tenant_exists");
}

TEST_F(tenants, concurrent_creates_of_one_id_give_exactly_one_winner) {
  constexpr int racers = 4;
  std::vector<unsigned> statuses(racers, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < racers; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < racers) std::this_thread::yield();
      statuses[static_cast<std::size_t>(i)] = create_tenant_response("race_co", "Race " + std::to_string(i)).status;
    });
  }
  for (auto& t : threads) t.join();
  int created = 0, conflicts = 0;
  for (const auto s : statuses) {
    if (s == 201) ++created;
    if (s == 409) ++conflicts;
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(conflicts, racers - 1);
  EXPECT_TRUE(database_exists(server().tenant_database("race_co")));
  // The winner's tenant is usable.
  EXPECT_EQ(register_response("race_co", "racer@race.example").status, 201u);
}

TEST_F(tenants, owner_gets_a_working_token) {
  const json::object owner{{"email", "  Boss@Globex.Example "},
                           {"password", "boss-password"},
                           {"first_name", "Hank"},
                           {"last_name", "Scorpio"}};
  const auto r = create_tenant_response("globex", "Globex", owner);
  ASSERT_EQ(r.status, 201u) << r.describe();
  const auto v = r.json();
  EXPECT_EQ(json_string(v, "status"), "active");
  const auto o = json_field(v, "owner");
  EXPECT_EQ(json_string(o, "email"), "boss@globex.example");
  EXPECT_EQ(json_string(o, "role"), "owner");
  EXPECT_EQ(json_string(o, "tenant_id"), "globex");
  EXPECT_TRUE(is_uuid(json_string(o, "id"))) << r.body;
  EXPECT_EQ(json_string(v, "token_type"), "Bearer");
  EXPECT_TRUE(json_field(v, "expires_in").is_int64()) << r.body;
  EXPECT_FALSE(json_string(v, "refresh_token").empty()) << r.body;
  EXPECT_EQ(r.body.find("boss-password"), std::string::npos);
  EXPECT_EQ(r.body.find("$argon2"), std::string::npos);

  const std::string token = json_string(v, "token");
  const auto me = get("/api/me", token);
  ASSERT_EQ(me.status, 200u) << me.describe();
  EXPECT_EQ(json_string(json_field(me.json(), "user"), "id"), json_string(o, "id"));
  const auto t = get("/api/tenant", token);
  ASSERT_EQ(t.status, 200u) << t.describe();
  EXPECT_EQ(json_string(t.json(), "registration"), "invite") << "a tenant starts with registration invite";

  // The owner can log in with the password given at creation.
  EXPECT_EQ(login("boss@globex.example", "boss-password").tenant_id, "globex");
}

TEST_F(tenants, invalid_owner_is_rejected_and_leaves_the_id_free) {
  const json::object owner{
      {"email", "not-an-email"}, {"password", "boss-password"}, {"first_name", "A"}, {"last_name", "B"}};
  const auto r = create_tenant_response("owner_bad", "Owner Bad", owner);
  EXPECT_EQ(r.status, 400u) << r.describe();
  const json::object short_pw{{"email", "a@b.example"}, {"password", "short"}, {"first_name", "A"}, {"last_name", "B"}};
  EXPECT_EQ(create_tenant_response("owner_bad", "Owner Bad", short_pw).status, 400u);
  EXPECT_EQ(create_tenant_response("owner_bad", "Owner Bad").status, 201u)
      << "a rejected request must not reserve the id";
}

class tenants_closed_signup : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"TENANT_SIGNUP", "closed"}}; }
};

TEST_F(tenants_closed_signup, needs_the_admin_token) {
  expect_problem(create_tenant_response("closed_co", "Closed"), 403, "signup_closed");
  const auto wrong =
      post("/tenants", json::object{{"id", "closed_co"}, {"name", "Closed"}}, "not-the-admin-token-but-long-enough");
  expect_problem(wrong, 403, "signup_closed");
  const auto lower = client().send_json("POST", "/tenants", json::object{{"id", "closed_co"}, {"name", "Closed"}},
                                        {{"Authorization", "Basic " + server().admin_token()}});
  EXPECT_EQ(lower.status, 403u) << "Basic is not Bearer:\n" << lower.describe();
  EXPECT_FALSE(database_exists(server().tenant_database("closed_co")));

  const auto ok = post("/tenants", json::object{{"id", "closed_co"}, {"name", "Closed"}}, server().admin_token());
  EXPECT_EQ(ok.status, 201u) << ok.describe();
  EXPECT_TRUE(database_exists(server().tenant_database("closed_co")));
}

TEST_F(tenants_closed_signup, a_user_token_is_not_the_admin_token) {
  const auto made = post("/tenants",
                         json::object{{"id", "first_co"},
                                      {"name", "First"},
                                      {"owner", json::object{{"email", "o@first.example"},
                                                             {"password", default_password},
                                                             {"first_name", "O"},
                                                             {"last_name", "F"}}}},
                         server().admin_token());
  ASSERT_EQ(made.status, 201u) << made.describe();
  const std::string user_token = json_string(made.json(), "token");
  expect_problem(post("/tenants", json::object{{"id", "second_co"}, {"name", "Second"}}, user_token), 403,
                 "signup_closed");
}

}  // namespace
}  // namespace tenantd::test

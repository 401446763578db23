// A database server that speaks TLS (API.md "Operator routes": a server's URL may carry
// sslmode and sslrootcert): a second private cluster with ssl = on and a certificate for
// 127.0.0.1 from a CA of its own. Added with sslmode=verify-full and that CA, a tenant placed
// there is served end to end and tenantd's sessions on it are encrypted (pg_stat_ssl); with
// another CA the server is refused with the reason in tenantd's words.
#include <filesystem>
#include <fstream>

#include "support/e2e_fixture.hpp"
#include "support/e2e_second_cluster.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;

class servers_tls : public e2e_test {
 protected:
  static fault_cluster_options with_tls() {
    fault_cluster_options options;
    options.tls = true;
    return options;
  }
  std::string url(const std::string& sslmode, const std::string& ca) const {
    return tls_.url() + "?sslmode=" + sslmode + (ca.empty() ? "" : "&sslrootcert=" + ca);
  }
  http_response add(const std::string& name, const std::string& server_url) const {
    return post("/admin/servers", json::object{{"name", name}, {"url", server_url}}, server().admin_token());
  }

  second_cluster tls_{with_tls()};
};

TEST_F(servers_tls, a_server_verified_by_its_ca_serves_a_tenant_over_tls) {
  ASSERT_FALSE(tls_.info().ca_file.empty());
  const auto added = add("tls1", url("verify-full", tls_.info().ca_file));
  ASSERT_EQ(added.status, 201u) << added.describe();

  const auto tenant = unique_name("tls_");
  const auto created = create_tenant_on(tenant, "tls1");
  ASSERT_EQ(created.status, 201u) << created.describe();
  (void)register_user(tenant, "owner@tls.example");
  const auto owner = login("owner@tls.example", default_password, tenant);
  const auto made = post(
      "/api/users", json::object{{"email", "x@tls.example"}, {"first_name", "X"}, {"last_name", "Y"}}, owner.token);
  ASSERT_EQ(made.status, 201u) << made.describe();
  const auto read = get("/api/users/" + json_string(made.json(), "id"), owner.token);
  EXPECT_EQ(read.status, 200u) << read.describe();

  // The row is on the TLS server, and every session tenantd holds there is encrypted.
  const auto database = server().tenant_database(tenant);
  EXPECT_EQ(tls_.query("SELECT count(*) FROM users WHERE email = 'x@tls.example'", database).at(0).at(0), "1");
  const auto sessions = tls_.query(
      "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
      "WHERE a.usename = '" +
      tls_.role() + "'");
  EXPECT_NE(sessions.at(0).at(0), "0") << "tenantd holds no session on the TLS server";
  EXPECT_EQ(sessions.at(0).at(0), sessions.at(0).at(1)) << "a session without TLS";
}

TEST_F(servers_tls, a_server_whose_certificate_another_ca_signed_is_refused_in_tenantds_words) {
  // Another cluster's CA: verify-full cannot check this server's certificate with it.
  second_cluster other{with_tls()};
  const auto refused = add("tls2", url("verify-full", other.info().ca_file));
  expect_problem(refused, 400, "invalid_input");
  EXPECT_NE(refused.body.find("TLS"), std::string::npos) << refused.describe();
  EXPECT_EQ(refused.body.find(tls_.password()), std::string::npos) << "the password leaked";
  // No CA file where the URL says.
  const auto missing = add("tls3", url("verify-full", "/nonexistent/ca.pem"));
  expect_problem(missing, 400, "invalid_input");
  // Plain `require` encrypts without checking the certificate: accepted.
  const auto required = add("tls4", url("require", ""));
  EXPECT_EQ(required.status, 201u) << required.describe();
}

}  // namespace
}  // namespace tenantd::test

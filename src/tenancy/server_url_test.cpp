#include "tenancy/server_url.hpp"

#include <gtest/gtest.h>

namespace tenantd::tenancy {
namespace {

TEST(server_url, takes_host_port_user_password_database_and_tls) {
  const auto url = parse_server_url(
      "postgresql://app:s%40cret@db2.internal:6432/maint?sslmode=verify-full&sslrootcert=/ca.pem", "dflt", "dfltpw");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->endpoint.host, "db2.internal");
  EXPECT_EQ(url->endpoint.port, "6432");
  EXPECT_EQ(url->endpoint.user, "app");
  EXPECT_EQ(url->endpoint.password, "s@cret");
  EXPECT_EQ(url->maintenance_database, "maint");
  EXPECT_EQ(url->endpoint.sslmode, "verify-full");
  EXPECT_EQ(url->endpoint.sslrootcert, "/ca.pem");
}

TEST(server_url, user_password_port_and_database_default) {
  const auto url = parse_server_url("postgresql://10.0.0.7", "tenantd", "pw");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->endpoint.host, "10.0.0.7");
  EXPECT_EQ(url->endpoint.port, "5432");
  EXPECT_EQ(url->endpoint.user, "tenantd");
  EXPECT_EQ(url->endpoint.password, "pw");
  EXPECT_EQ(url->maintenance_database, "postgres");
  EXPECT_TRUE(url->endpoint.sslmode.empty());
}

TEST(server_url, refuses_what_it_cannot_use_without_echoing_the_password) {
  for (const auto* bad : {"http://db:5432", "postgresql://", "not a url", "postgresql://u:hunter2@db:0",
                          "postgresql://u:hunter2@db:99999", "postgresql://db/a/b",
                          "postgresql://u:hunter2@db?sslmode=maybe", "postgresql://db?options=-c%20x"}) {
    const auto url = parse_server_url(bad, "u", "p");
    ASSERT_FALSE(url) << bad;
    EXPECT_EQ(url.err().code, errc::invalid_input);
    EXPECT_EQ(url.err().detail.find("hunter2"), std::string::npos) << bad;
    ASSERT_EQ(url.err().fields.size(), 1U);
    EXPECT_EQ(url.err().fields[0].field, "url");
  }
}

}  // namespace
}  // namespace tenantd::tenancy

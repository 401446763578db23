// The conninfo strings tenantd hands to libpq.
#include "db/conninfo.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tenantd::db {
namespace {

using namespace std::chrono_literals;

TEST(make_conninfo, quotes_and_escapes_values) {
  const std::vector<std::pair<std::string, std::string>> keywords{
      {"host", "db.internal"}, {"password", "it's a \\ secret"}, {"application_name", "tenantd"}};
  EXPECT_EQ(make_conninfo(keywords), "host='db.internal' password='it\\'s a \\\\ secret' application_name='tenantd'");
}

TEST(service_conninfo, names_the_server_database_and_session_settings) {
  const server_endpoint server{"db.internal", "6432", "app", "s3'cret", {}, {}};
  EXPECT_EQ(service_conninfo(server, "tenant_acme", 2500ms),
            "host='db.internal' port='6432' user='app' password='s3\\'cret' dbname='tenant_acme' "
            "application_name='tenantd' options='-c statement_timeout=2500 -c TimeZone=UTC -c search_path=public' "
            "keepalives='1' keepalives_idle='10' keepalives_interval='5' keepalives_count='3'");
}

TEST(service_conninfo, adds_sslmode_and_sslrootcert_when_given) {
  const server_endpoint server{"db.internal", "5432", "app", "pw", "verify-full", "/etc/ssl/db-ca.pem"};
  const auto conninfo = service_conninfo(server, "tenant_acme", 2500ms);
  EXPECT_NE(conninfo.find(" sslmode='verify-full' sslrootcert='/etc/ssl/db-ca.pem'"), std::string::npos) << conninfo;
  const server_endpoint plain{"db.internal", "5432", "app", "pw", {}, {}};
  EXPECT_EQ(service_conninfo(plain, "x", 1ms).find("sslmode"), std::string::npos);
}

}  // namespace
}  // namespace tenantd::db

#include "tenancy/server_catalog.hpp"

#include <gtest/gtest.h>

namespace tenantd::tenancy {
namespace {

TEST(connect_failure_reason, names_the_reason_in_tenantds_words_only) {
  struct sample {
    const char* libpq;
    const char* reason;
  };
  for (const auto& s : {
           sample{"connection to server at \"10.0.0.7\", port 5432 failed: FATAL:  password authentication failed "
                  "for user \"app\"",
                  "refused the login"},
           sample{"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running",
                  "unreachable"},
           sample{"could not translate host name \"db.nowhere\" to address: Name or service not known",
                  "does not resolve"},
           sample{"connecting to the database timed out after 5000 ms", "did not answer in time"},
           sample{"FATAL:  database \"maint\" does not exist", "database named in the URL does not exist"},
           sample{"FATAL:  no pg_hba.conf entry for host \"10.1.1.1\", user \"app\"", "refused the login"},
           sample{"SSL error: certificate verify failed", "TLS connection failed"},
           sample{"something nobody expected", "could not be reached"},
       }) {
    const auto reason = connect_failure_reason(s.libpq);
    EXPECT_NE(reason.find(s.reason), std::string::npos) << s.libpq << " -> " << reason;
    EXPECT_EQ(reason.find("FATAL"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("pg_"), std::string::npos) << reason;
    EXPECT_EQ(reason.find("app"), std::string::npos) << "names no user: " << reason;
  }
}

}  // namespace
}  // namespace tenantd::tenancy

// tenant_status: every value has one text and reads back from it; other text is refused.
#include "domain/tenant_status.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace tenantd {
namespace {

TEST(tenant_status, every_value_reads_back_from_its_text) {
  std::set<std::string> texts;
  for (const auto state : all_tenant_statuses) {
    texts.insert(std::string(to_string(state)));
    EXPECT_EQ(parse_tenant_status(to_string(state)), state) << to_string(state);
  }
  EXPECT_EQ(texts, (std::set<std::string>{"provisioning", "active", "suspended", "failed", "deleting", "deleted"}));
}

TEST(tenant_status, other_text_is_refused) {
  for (const char* text : {"", "Active", "ACTIVE", "active ", "live", "delete"})
    EXPECT_FALSE(parse_tenant_status(text)) << '"' << text << '"';
}

TEST(tenant_status, only_active_and_suspended_are_live) {
  for (const auto state : all_tenant_statuses)
    EXPECT_EQ(is_live(state), state == tenant_status::active || state == tenant_status::suspended) << to_string(state);
}

}  // namespace
}  // namespace tenantd

#include "domain/server.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace tenantd {
namespace {

server_record server(std::string name, std::int64_t tenants, std::int64_t weight = 1,
                     std::optional<std::int64_t> max = std::nullopt, server_state state = server_state::active) {
  server_record s;
  s.name = std::move(name);
  s.tenants = tenants;
  s.weight = weight;
  s.max_tenants = max;
  s.state = state;
  return s;
}

TEST(server_state, text_round_trips_and_unknown_text_is_refused) {
  for (auto s : {server_state::active, server_state::draining, server_state::disabled})
    EXPECT_EQ(parse_server_state(to_string(s)), s);
  EXPECT_FALSE(parse_server_state("Active"));
  EXPECT_FALSE(parse_server_state(""));
}

TEST(placement, picks_the_lowest_tenants_per_weight) {
  const std::vector<server_record> servers{server("main", 10, 1), server("big", 25, 3), server("b", 4, 1)};
  EXPECT_EQ(choose_server(servers), "b");  // 10/1, 25/3 = 8.3, 4/1
  const std::vector<server_record> weighted{server("main", 10, 1), server("big", 25, 3)};
  EXPECT_EQ(choose_server(weighted), "big");
}

TEST(placement, ties_go_to_fewer_tenants_then_to_the_name) {
  const std::vector<server_record> equal{server("b", 0), server("a", 0)};
  EXPECT_EQ(choose_server(equal), "a");
  const std::vector<server_record> ratio_tie{server("a", 2, 2), server("b", 1, 1)};  // both 1.0
  EXPECT_EQ(choose_server(ratio_tie), "b");
}

TEST(placement, skips_full_and_inactive_servers) {
  const std::vector<server_record> servers{server("full", 0, 1, 0),
                                           server("draining", 0, 1, {}, server_state::draining),
                                           server("off", 0, 1, {}, server_state::disabled), server("busy", 50, 1, 51)};
  EXPECT_EQ(choose_server(servers), "busy");
  const std::vector<server_record> none{server("full", 3, 1, 3), server("draining", 0, 1, {}, server_state::draining)};
  EXPECT_FALSE(choose_server(none));
  EXPECT_FALSE(choose_server(std::span<const server_record>{}));
}

TEST(placement, can_take_tenant_respects_max_tenants_and_state) {
  EXPECT_TRUE(can_take_tenant(server("a", 2, 1, 3)));
  EXPECT_FALSE(can_take_tenant(server("a", 3, 1, 3)));
  EXPECT_TRUE(can_take_tenant(server("a", 1000, 1)));
  EXPECT_FALSE(can_take_tenant(server("a", 0, 1, {}, server_state::disabled)));
}

}  // namespace
}  // namespace tenantd

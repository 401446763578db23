// Move states: the texts master and the API use, and which states are final.
#include "domain/move.hpp"

#include <gtest/gtest.h>

namespace tenantd {
namespace {

TEST(move_state, every_state_survives_its_text) {
  for (const auto state :
       {move_state::copying, move_state::catching_up, move_state::cutover, move_state::done, move_state::aborted}) {
    const auto parsed = parse_move_state(to_string(state));
    ASSERT_TRUE(parsed) << to_string(state);
    EXPECT_EQ(*parsed, state);
  }
  EXPECT_EQ(to_string(move_state::catching_up), "catching_up");
  EXPECT_FALSE(parse_move_state("Done"));
  EXPECT_FALSE(parse_move_state(""));
}

TEST(move_state, only_done_and_aborted_are_finished) {
  EXPECT_FALSE(finished(move_state::copying));
  EXPECT_FALSE(finished(move_state::catching_up));
  EXPECT_FALSE(finished(move_state::cutover));
  EXPECT_TRUE(finished(move_state::done));
  EXPECT_TRUE(finished(move_state::aborted));
}

}  // namespace
}  // namespace tenantd

// A pool's pipelined connection when it is full: statements past its depth take an exclusive
// connection only when one can be had at once; otherwise they queue on the pipelined
// connection, instead of waiting out the acquire timeout for a release that cannot come.
#include "db/pool_test_support.hpp"

namespace tenantd::db::pool_testing {
namespace {

constexpr statement slow_echo{"p_slow_echo", "SELECT $1::int, pg_backend_pid() FROM pg_sleep(0.04)"};

struct tally {
  int finished{0};
  int right{0};  // came back with their own echo
  std::set<int> backends;
};

net::awaitable<void> one_call(std::shared_ptr<pool> target, int echo, std::shared_ptr<tally> counts) {
  try {
    const auto text = std::to_string(echo);
    const std::array<param, 1> params{text};
    const auto result = co_await target->exec_prepared(slow_echo, params);
    if (result.text(0, 0) == text) ++counts->right;
    counts->backends.insert(std::stoi(std::string(result.text(0, 1))));
  } catch (const std::exception&) {  // counted as not right
  }
  ++counts->finished;
}

// Runs `callers` statements at once on `p` (one thread runs them all) and waits for all.
net::awaitable<tally> run_at_once(const std::shared_ptr<pool>& p, int callers) {
  auto counts = std::make_shared<tally>();
  for (int i = 0; i < callers; ++i)
    net::co_spawn(co_await net::this_coro::executor, one_call(p, i, counts), net::detached);
  while (counts->finished < callers) co_await sleep_for(5ms);
  co_return *counts;
}

// The budget has no slot left and the pool holds only its pipelined connection: the 12
// statements past a depth of 2 (12 x 40 ms, longer than the acquire timeout) wait on it.
TEST(pool_overflow, a_full_pipeline_queues_statements_when_no_connection_can_be_had_at_once) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto options = options_for(db, 4);
    options.pipeline_depth = 2;
    options.acquire_timeout = 300ms;
    std::atomic<int> reserved{0};
    options.reserve_slot = [&] { return reserved.fetch_add(1) == 0; };  // room for one connection only
    options.budget_full = [&] { return reserved.load() >= 1; };
    auto p = pool::create(ex, options);
    const auto counts = co_await run_at_once(p, 14);
    EXPECT_EQ(counts.right, 14) << "every statement answered, with its own result";
    EXPECT_EQ(counts.backends.size(), 1U) << "all of them on the one pipelined connection";
    EXPECT_EQ(p->stats().open, 1U);
    EXPECT_EQ(reserved.load(), 1) << "no other connection was asked of the budget";
  });
}

// With room in the budget, a full pipeline's overflow still spreads over exclusive
// connections (a busy tenant is not held to one backend's core).
TEST(pool_overflow, a_full_pipeline_overflows_to_exclusive_connections_when_there_is_room) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto options = options_for(db, 4);
    options.pipeline_depth = 2;
    options.budget_full = [] { return false; };
    auto p = pool::create(ex, options);
    const auto counts = co_await run_at_once(p, 14);
    EXPECT_EQ(counts.right, 14);
    EXPECT_GT(counts.backends.size(), 1U) << "the overflow ran on connections of its own";
    EXPECT_LE(p->stats().open, 4U);
  });
}

}  // namespace
}  // namespace tenantd::db::pool_testing

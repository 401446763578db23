// A pool with I/O lanes (pool_options::lanes): a quiet tenant's statements from every lane
// share one pipelined connection; once they are busy, each lane gets its own, driven on that
// lane's thread (pipeline.cpp asserts it in debug builds), and every caller still gets its
// own result.
#include <boost/asio/use_future.hpp>
#include <future>

#include "db/pool_test_support.hpp"
#include "domain/lane.hpp"
#include "support/lane_context.hpp"

namespace tenantd::db::pool_testing {
namespace {

constexpr statement backend_and_echo{"p_backend_and_echo", "SELECT pg_backend_pid(), $1::int"};

// Two lanes, each an io_context run by one thread that knows its lane number.
class lanes {
 public:
  lanes() {
    for (std::size_t i = 0; i < contexts_.size(); ++i)
      threads_.emplace_back([this, i] {
        set_this_threads_lane(i);
        contexts_[i].run();
      });
  }
  ~lanes() {
    for (auto& guard : guards_) guard.reset();
    for (auto& context : contexts_) context.stop();
    for (auto& t : threads_) t.join();
    for (auto& context : contexts_) context.shutdown();
  }
  lanes(const lanes&) = delete;
  lanes& operator=(const lanes&) = delete;

  net::any_io_executor executor(std::size_t lane) { return contexts_.at(lane).get_executor(); }
  std::vector<net::any_io_executor> executors() { return {executor(0), executor(1)}; }

  // Runs `make()` on `lane` and waits for it.
  template <class T, class Make>
  T run_on(std::size_t lane, Make make) {
    auto done = net::co_spawn(executor(lane), make(), net::use_future);
    if (done.wait_for(30s) != std::future_status::ready) throw std::runtime_error("lane coroutine timed out");
    return done.get();
  }

 private:
  std::array<test::lane_context, 2> contexts_;
  std::array<std::optional<net::executor_work_guard<net::io_context::executor_type>>, 2> guards_{
      net::executor_work_guard<net::io_context::executor_type>(contexts_[0].get_executor()),
      net::executor_work_guard<net::io_context::executor_type>(contexts_[1].get_executor())};
  std::vector<std::thread> threads_;
};

std::shared_ptr<pool> lane_pool(lanes& l, const test::test_database& db) {
  auto options = options_for(db, 4);
  options.pipeline_depth = 32;
  options.lanes = l.executors();
  options.lane_share_below = 2;
  return pool::create(l.executor(0), options);
}

// The backend that answered one statement run from `lane` (checking the echo too).
int backend_seen_from(lanes& l, std::size_t lane, const std::shared_ptr<pool>& p, int echo) {
  return l.run_on<int>(lane, [&]() -> net::awaitable<int> {
    const auto text = std::to_string(echo);
    const std::array<param, 1> params{text};
    const auto result = co_await p->exec_prepared(backend_and_echo, params);
    if (result.text(0, 1) != text) throw std::runtime_error("wrong echo");
    co_return std::stoi(std::string(result.text(0, 0)));
  });
}

TEST(pool_lanes, a_quiet_tenant_keeps_one_pipelined_connection_for_every_lane) {
  test::test_database db;
  lanes l;
  auto p = lane_pool(l, db);
  const int first = backend_seen_from(l, 0, p, 1);
  for (int i = 0; i < 10; ++i) {  // one statement at a time, from either lane
    EXPECT_EQ(backend_seen_from(l, 1, p, 2 * i), first);
    EXPECT_EQ(backend_seen_from(l, 0, p, 2 * i + 1), first);
  }
  EXPECT_EQ(p->stats().pipelines, 1U);
  EXPECT_EQ(backends_of(db), 1);
  p->shutdown();
}

TEST(pool_lanes, busy_lanes_each_get_their_own_pipelined_connection_and_every_caller_its_result) {
  test::test_database db;
  lanes l;
  auto p = lane_pool(l, db);
  (void)backend_seen_from(l, 0, p, 0);  // lane 0 has the first pipelined connection
  std::atomic<int> right{0}, wrong{0}, failed{0};
  // Bursts of concurrent statements on both lanes, until lane 1 has opened its own connection
  // (it does so in the background once lane 0's has lane_share_below = 2 statements in flight).
  const auto burst = [&](std::size_t lane) -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    std::atomic<int> left{8};
    for (int caller = 0; caller < 8; ++caller)
      net::co_spawn(
          ex,
          [&, caller]() -> net::awaitable<void> {
            for (int i = 0; i < 20; ++i) {
              const int echo = static_cast<int>(lane) * 100000 + caller * 1000 + i;
              const auto text = std::to_string(echo);
              const std::array<param, 1> params{text};
              try {
                const auto result = co_await p->exec_prepared(backend_and_echo, params);
                (result.text(0, 1) == text ? right : wrong)++;
              } catch (const std::exception&) {
                ++failed;
              }
            }
            --left;
          },
          net::detached);
    while (left.load() > 0) co_await sleep_for(1ms);
  };
  for (int round = 0; round < 20 && p->stats().pipelines < 2; ++round) {
    auto zero = net::co_spawn(l.executor(0), burst(0), net::use_future);
    auto one = net::co_spawn(l.executor(1), burst(1), net::use_future);
    ASSERT_EQ(zero.wait_for(30s), std::future_status::ready);
    ASSERT_EQ(one.wait_for(30s), std::future_status::ready);
    zero.get();
    one.get();
  }
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(right.load(), 0);
  ASSERT_EQ(p->stats().pipelines, 2U);
  // Each lane now runs on its own connection.
  const int from_zero = backend_seen_from(l, 0, p, 7);
  const int from_one = backend_seen_from(l, 1, p, 8);
  EXPECT_NE(from_zero, from_one);
  EXPECT_EQ(backend_seen_from(l, 0, p, 9), from_zero);
  EXPECT_EQ(backend_seen_from(l, 1, p, 10), from_one);
  EXPECT_EQ(backends_of(db), 2);
  // The idle sweep and the budget's eviction take pipelined connections of every lane.
  EXPECT_EQ(p->close_idle_older_than(0ms), 2U);
  EXPECT_EQ(p->stats().pipelines, 0U);
  EXPECT_EQ(p->stats().open, 0U);
  p->shutdown();
}

}  // namespace
}  // namespace tenantd::db::pool_testing

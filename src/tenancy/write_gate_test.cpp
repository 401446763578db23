// The write gate: a write passes at once when its tenant is not held; a held write waits for
// the release, or for the hold's own deadline when nobody releases it; another tenant's
// writes are never held.
#include "tenancy/write_gate.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <thread>

#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

TEST(write_gate, a_tenant_that_is_not_held_passes_at_once) {
  write_gate gate;
  gate.hold("acme", 10s);
  const auto waited =
      run_coro([&](auto) -> net::awaitable<std::chrono::microseconds> { co_return co_await gate.pass("other"); });
  EXPECT_EQ(waited.count(), 0);
  EXPECT_EQ(gate.writes_held(), 0u);
  EXPECT_TRUE(gate.holding("acme"));
  EXPECT_FALSE(gate.holding("other"));
}

TEST(write_gate, a_held_write_waits_for_the_release) {
  write_gate gate;
  gate.hold("acme", 30s);
  std::atomic<bool> released{false};
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    released = true;
    gate.release("acme");
  });
  const auto started = std::chrono::steady_clock::now();
  const auto waited = run_coro([&](auto) -> net::awaitable<std::chrono::microseconds> {
    auto w = co_await gate.pass("acme");
    EXPECT_TRUE(released.load()) << "it went before the release";
    co_return w;
  });
  const auto took = std::chrono::steady_clock::now() - started;
  releaser.join();
  EXPECT_GT(waited.count(), 0);
  EXPECT_LT(took, 30s) << "it waited for the hold's deadline instead of the release";
  EXPECT_EQ(gate.writes_held(), 1u);
  EXPECT_FALSE(gate.holding("acme"));
}

TEST(write_gate, a_hold_nobody_releases_ends_at_its_deadline) {
  write_gate gate;
  const auto deadline = std::chrono::steady_clock::now() + 150ms;  // the gate's own is a little later
  gate.hold("acme", 150ms);
  const auto waited =
      run_coro([&](auto) -> net::awaitable<std::chrono::microseconds> { co_return co_await gate.pass("acme"); });
  EXPECT_GT(waited.count(), 0);
  EXPECT_GE(std::chrono::steady_clock::now(), deadline) << "it went before the hold's deadline";
  EXPECT_FALSE(gate.holding("acme"));
  // And the next write is not held.
  const auto next =
      run_coro([&](auto) -> net::awaitable<std::chrono::microseconds> { co_return co_await gate.pass("acme"); });
  EXPECT_EQ(next.count(), 0);
}

TEST(write_gate, many_writes_held_on_several_threads_all_go_at_the_release) {
  write_gate gate;
  gate.hold("acme", 30s);
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    gate.release("acme");
  });
  const auto passed = run_coro(
      [&](auto ex) -> net::awaitable<int> {
        std::atomic<int> done{0};
        for (int i = 0; i < 20; ++i)
          net::co_spawn(
              ex,
              [&]() -> net::awaitable<void> {
                (void)co_await gate.pass("acme");
                ++done;
              },
              net::detached);
        net::steady_timer timer(ex);
        while (done.load() < 20) {
          timer.expires_after(5ms);
          co_await timer.async_wait(net::use_awaitable);
        }
        co_return done.load();
      },
      60s, 2);
  releaser.join();
  EXPECT_EQ(passed, 20);
  EXPECT_EQ(gate.writes_held(), 20u);
}

}  // namespace
}  // namespace tenantd::tenancy

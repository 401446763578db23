// Tests for password_hasher: PHC format and parameters (S14), verification, rehash detection,
// the dummy verify, the bounded queue, and resumption on the caller's executor.
#include "auth/password_hasher.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <sodium.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/run_coro.hpp"

namespace tenantd::auth {
namespace {

namespace net = boost::asio;
using tenantd::test::run_coro;

// The cheapest parameters libsodium allows, for tests about behaviour rather than cost.
constexpr argon2_params fast{1, 8192};

template <class Ex, class Predicate>
net::awaitable<bool> poll_until(Ex ex, Predicate done, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  net::steady_timer timer(ex);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) co_return false;
    timer.expires_after(std::chrono::milliseconds(2));
    co_await timer.async_wait(net::use_awaitable);
  }
  co_return true;
}

TEST(password_hasher, default_parameters_give_owasp_argon2id) {
  password_hasher hasher(argon2_params{}, 1, 4);
  const auto [first, second] = run_coro([&](auto) -> net::awaitable<std::pair<std::string, std::string>> {
    std::string a = co_await hasher.hash("correct horse battery staple");
    std::string b = co_await hasher.hash("correct horse battery staple");
    co_return std::pair{a, b};
  });
  EXPECT_TRUE(first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << first;
  EXPECT_TRUE(second.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << second;
  EXPECT_NE(first, second);
  EXPECT_NE(first.substr(0, first.rfind('$')), second.substr(0, second.rfind('$')));
  EXPECT_FALSE(hasher.needs_rehash(first));
}

TEST(password_hasher, verifies_matching_passwords_only) {
  password_hasher hasher(fast, 2, 8);
  const auto outcomes = run_coro([&](auto) -> net::awaitable<std::vector<bool>> {
    const std::string stored = co_await hasher.hash("s3cret p\xc3\xa4ssword");
    std::vector<bool> out;
    out.push_back(co_await hasher.verify(stored, "s3cret p\xc3\xa4ssword"));
    out.push_back(co_await hasher.verify(stored, "s3cret p\xc3\xa4sswore"));
    out.push_back(co_await hasher.verify(stored, "s3cret p\xc3\xa4sswor"));
    out.push_back(co_await hasher.verify(stored, ""));
    co_return out;
  });
  EXPECT_EQ(outcomes, (std::vector<bool>{true, false, false, false}));
}

// S13: no truncation, so a prefix of a long password does not match.
TEST(password_hasher, long_passwords_are_not_truncated) {
  password_hasher hasher(fast, 1, 4);
  const std::string password(100, 'p');
  const auto outcomes = run_coro([&](auto) -> net::awaitable<std::vector<bool>> {
    const std::string stored = co_await hasher.hash(password);
    std::vector<bool> out;
    out.push_back(co_await hasher.verify(stored, password));
    out.push_back(co_await hasher.verify(stored, password.substr(0, 72)));
    out.push_back(co_await hasher.verify(stored, password.substr(0, 99)));
    co_return out;
  });
  EXPECT_EQ(outcomes, (std::vector<bool>{true, false, false}));
}

TEST(password_hasher, malformed_hashes_do_not_verify) {
  password_hasher hasher(fast, 1, 4);
  const std::string good = run_coro([&](auto) -> net::awaitable<std::string> { co_return co_await hasher.hash("pw"); });
  const std::vector<std::string> malformed{
      "",
      "garbage",
      "$argon2id$",
      "$argon2id$v=19$m=8,t=1,p=1$bad",
      good.substr(0, good.size() - 4),
      std::string(good).append(std::string(1, '\0')).append("x"),
      "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
      std::string(300, '$'),
  };
  const auto outcomes = run_coro([&](auto) -> net::awaitable<std::vector<bool>> {
    std::vector<bool> out;
    for (const auto& stored : malformed) out.push_back(co_await hasher.verify(stored, "pw"));
    out.push_back(co_await hasher.verify(good, "pw"));
    co_return out;
  });
  ASSERT_EQ(outcomes.size(), malformed.size() + 1);
  for (std::size_t i = 0; i < malformed.size(); ++i) EXPECT_FALSE(outcomes[i]) << i;
  EXPECT_TRUE(outcomes.back());
}

TEST(password_hasher, needs_rehash_when_parameters_differ) {
  password_hasher current(fast, 1, 4);
  password_hasher stronger(argon2_params{2, 16384}, 1, 4);
  const std::string stored =
      run_coro([&](auto) -> net::awaitable<std::string> { co_return co_await current.hash("pw"); });
  EXPECT_FALSE(current.needs_rehash(stored));
  EXPECT_TRUE(stronger.needs_rehash(stored));
  EXPECT_TRUE(current.needs_rehash("garbage"));
  EXPECT_TRUE(current.needs_rehash(""));

  std::array<char, crypto_pwhash_STRBYTES> argon2i{};
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i.data(), "pw", 2, 3, 8192, crypto_pwhash_ALG_ARGON2I13), 0);
  EXPECT_TRUE(current.needs_rehash(argon2i.data()));
}

TEST(password_hasher, dummy_verification_is_always_false) {
  password_hasher hasher(fast, 1, 4);
  const auto outcomes = run_coro([&](auto) -> net::awaitable<std::vector<bool>> {
    std::vector<bool> out;
    out.push_back(co_await hasher.verify_dummy(""));
    out.push_back(co_await hasher.verify_dummy("password"));
    out.push_back(co_await hasher.verify_dummy(std::string(256, 'x')));
    co_return out;
  });
  EXPECT_EQ(outcomes, (std::vector<bool>{false, false, false}));
  EXPECT_EQ(hasher.queue_depth(), 0U);
}

TEST(password_hasher, full_queue_throws_busy) {
  password_hasher hasher(argon2_params{4, 64U * 1024U * 1024U}, 1, 1);
  struct outcome {
    std::size_t depth_while_running{0};
    bool second_was_busy{false};
    bool first_finished{false};
    std::string first_hash;
  };
  const outcome seen = run_coro([&](auto ex) -> net::awaitable<outcome> {
    outcome o;
    bool done = false;
    net::co_spawn(ex, hasher.hash("first"), [&](std::exception_ptr, std::string h) {
      o.first_hash = std::move(h);
      done = true;
    });
    co_await poll_until(ex, [&] { return hasher.queue_depth() > 0 || done; });
    o.depth_while_running = hasher.queue_depth();
    try {
      co_await hasher.verify_dummy("second");
    } catch (const hasher_busy&) {
      o.second_was_busy = true;
    }
    o.first_finished = co_await poll_until(ex, [&] { return done; });
    co_return o;
  });
  EXPECT_EQ(seen.depth_while_running, 1U);
  EXPECT_TRUE(seen.second_was_busy);
  EXPECT_TRUE(seen.first_finished);
  EXPECT_TRUE(seen.first_hash.starts_with("$argon2id$v=19$m=65536,t=4,p=1$"));
  EXPECT_EQ(hasher.queue_depth(), 0U);
}

TEST(password_hasher, queue_admits_up_to_its_bound) {
  password_hasher hasher(fast, 2, 3);
  const int finished = run_coro(
      [&](auto ex) -> net::awaitable<int> {
        std::atomic<int> count{0};
        for (int i = 0; i < 3; ++i)
          net::co_spawn(ex, hasher.hash("pw" + std::to_string(i)), [&](std::exception_ptr e, std::string h) {
            if (!e && h.starts_with("$argon2id$")) ++count;
          });
        co_await poll_until(ex, [&] { return count == 3; });
        co_return count.load();
      },
      std::chrono::seconds(60), 2);
  EXPECT_EQ(finished, 3);
  EXPECT_EQ(hasher.queue_depth(), 0U);
}

TEST(password_hasher, resumes_on_the_callers_executor) {
  password_hasher hasher(fast, 2, 4);
  struct where {
    bool on_strand_before{false};
    bool on_strand_after{false};
    bool same_thread{false};
  };
  const where seen = run_coro([&](auto ex) -> net::awaitable<where> {
    auto strand = net::make_strand(ex);
    co_return co_await net::co_spawn(
        strand,
        [&]() -> net::awaitable<where> {
          where w;
          const auto caller = std::this_thread::get_id();
          w.on_strand_before = strand.running_in_this_thread();
          co_await hasher.hash("pw");
          co_await hasher.verify_dummy("pw");
          w.on_strand_after = strand.running_in_this_thread();
          w.same_thread = std::this_thread::get_id() == caller;
          co_return w;
        },
        net::use_awaitable);
  });
  EXPECT_TRUE(seen.on_strand_before);
  EXPECT_TRUE(seen.on_strand_after);
  EXPECT_TRUE(seen.same_thread);
}

TEST(password_hasher, zero_threads_means_hardware_concurrency) {
  password_hasher hasher(fast, 0, 2);
  EXPECT_TRUE(run_coro([&](auto) -> net::awaitable<bool> {
    const std::string stored = co_await hasher.hash("pw");
    co_return co_await hasher.verify(stored, "pw");
  }));
  EXPECT_EQ(hasher.params().opslimit, fast.opslimit);
  EXPECT_EQ(hasher.params().memlimit, fast.memlimit);
}

// One client cannot take more than its share of the queue; others still get in.
TEST(password_hasher, one_client_gets_at_most_its_share_of_the_queue) {
  password_hasher hasher(argon2_params{4, 64U * 1024U * 1024U}, 1, 8, 2);
  struct outcome {
    bool third_of_flooder_busy{false};
    bool other_client_served{false};
    int flooder_done{0};
  };
  const outcome seen = run_coro(
      [&](auto ex) -> net::awaitable<outcome> {
        outcome o;
        for (int i = 0; i < 2; ++i)
          net::co_spawn(ex, hasher.verify_dummy("flood", "198.51.100.7"),
                        [&](std::exception_ptr e, bool) { o.flooder_done += e ? 0 : 1; });
        co_await poll_until(ex, [&] { return hasher.queue_depth() == 2; });
        try {
          co_await hasher.verify_dummy("flood", "198.51.100.7");
        } catch (const hasher_busy&) {
          o.third_of_flooder_busy = true;
        }
        const std::string stored = co_await hasher.hash("mine", "203.0.113.9");
        o.other_client_served = co_await hasher.verify(stored, "mine", "203.0.113.9");
        co_await poll_until(ex, [&] { return o.flooder_done == 2; });
        co_return o;
      },
      std::chrono::seconds(120));
  EXPECT_TRUE(seen.third_of_flooder_busy);
  EXPECT_TRUE(seen.other_client_served);
  EXPECT_EQ(seen.flooder_done, 2);
  EXPECT_EQ(hasher.queue_depth(), 0U);
}

// Clients take turns: a job of a second client runs before the first client's backlog. The
// order is observed where the jobs start (on the hashing thread): the order in which their
// completions reach the caller may differ (a completion is re-posted while the hashing thread
// has not yet left post()).
TEST(password_hasher, clients_are_served_in_turn) {
  password_hasher hasher(fast, 1, 16, 8);
  password_hasher slow(argon2_params{4, 64U * 1024U * 1024U}, 1, 1);
  std::mutex started_mutex;
  std::vector<std::string> started;
  hasher.on_job_start([&](const std::string& client) {
    const std::lock_guard lock(started_mutex);
    started.push_back(client);
  });
  const std::size_t completed = run_coro(
      [&](auto ex) -> net::awaitable<std::size_t> {
        std::size_t done = 0;
        // Hold the only thread of `hasher` with a long job of client x, then queue a1 a2 a3 and
        // b1 behind it.
        std::string blocker_hash = co_await slow.hash("blocker");
        net::co_spawn(ex, hasher.verify(blocker_hash, "blocker", "x"), [&](std::exception_ptr, bool) { ++done; });
        co_await poll_until(ex, [&] { return hasher.queue_depth() == 1; });
        for (const char* job : {"a1", "a2", "a3", "b1"}) {
          const std::string client(1, job[0]);
          net::co_spawn(ex, hasher.verify_dummy("pw", client), [&done](std::exception_ptr, bool) { ++done; });
        }
        co_await poll_until(ex, [&] { return done == 5; });
        co_return done;
      },
      std::chrono::seconds(120));
  EXPECT_EQ(completed, 5U);
  const std::lock_guard lock(started_mutex);
  EXPECT_EQ(started, (std::vector<std::string>{"x", "a", "b", "a", "a"}));
}

TEST(password_hasher, zero_queue_is_a_configuration_error) {
  EXPECT_THROW(password_hasher(fast, 1, 0), std::invalid_argument);
}

}  // namespace
}  // namespace tenantd::auth

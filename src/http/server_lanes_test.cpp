// Sessions on I/O lanes (server_options::lanes): accepted connections are handed to the lanes
// in turn, and every request of a connection, before and after its handler awaits, runs on
// the one thread of that connection's lane.
#include <functional>
#include <map>
#include <sstream>

#include "domain/lane.hpp"
#include "http/server_test_fixture.hpp"
#include "support/lane_context.hpp"

namespace tenantd::http::server_testing {
namespace {

std::string this_thread_name() {
  std::ostringstream out;
  out << std::this_thread::get_id();
  return out.str();
}

// Answers with the lane and thread it started on and those it resumed on after a timer.
net::awaitable<api::response> where_am_i(api::request&) {
  const auto lane_before = this_threads_lane();
  const auto thread_before = this_thread_name();
  net::steady_timer timer(co_await net::this_coro::executor, 2ms);
  co_await timer.async_wait(net::use_awaitable);
  api::response response;
  response.content_type = "text/plain";
  response.headers.emplace_back("X-Lane-Before", std::to_string(lane_before));
  response.headers.emplace_back("X-Lane-After", std::to_string(this_threads_lane()));
  response.headers.emplace_back("X-Thread-Before", thread_before);
  response.headers.emplace_back("X-Thread-After", this_thread_name());
  co_return response;
}

class server_lanes_test : public ::testing::Test {
 protected:
  // Lane 0 is io_ (it runs the acceptor too), lane 1 is second_; one thread each.
  void SetUp() override {
    auto options = fast_options();
    options.lanes = {&io_, &second_};
    server_ = std::make_unique<server>(io_, std::move(options), where_am_i, reject);
    server_->start();
    threads_.emplace_back([this] {
      set_this_threads_lane(0);
      io_.run();
    });
    threads_.emplace_back([this] {
      set_this_threads_lane(1);
      second_.run();
    });
  }
  void TearDown() override {
    server_->close_all();
    work_.reset();
    second_work_.reset();
    io_.stop();
    second_.stop();
    for (auto& t : threads_) t.join();
    io_.shutdown();
    second_.shutdown();
    server_.reset();
  }

  test::lane_context io_;
  test::lane_context second_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{io_.get_executor()};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> second_work_{second_.get_executor()};
  std::unique_ptr<server> server_;
  std::vector<std::thread> threads_;
};

TEST_F(server_lanes_test, connections_take_the_lanes_in_turn_and_each_stays_on_its_lanes_thread) {
  std::map<std::string, int> connections_per_lane;
  std::map<std::string, std::string> thread_of_lane;
  std::vector<std::unique_ptr<client>> clients;
  clients.reserve(4);
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<client>(server_->port()));
  for (auto& c : clients) {
    std::string lane;
    for (int request = 0; request < 3; ++request) {
      ASSERT_TRUE(c->send(get_root));
      const auto response = c->read_response();
      ASSERT_TRUE(response);
      ASSERT_EQ(response->status, 200U);
      const auto before = response->header("x-lane-before").value_or("?");
      EXPECT_EQ(response->header("x-lane-after"), before) << "the handler resumed on another lane";
      EXPECT_EQ(response->header("x-thread-after"), response->header("x-thread-before"));
      if (request == 0) lane = before;
      EXPECT_EQ(before, lane) << "a request of one connection ran on another lane";
      const auto thread = response->header("x-thread-before").value_or("?");
      auto [known, inserted] = thread_of_lane.emplace(before, thread);
      EXPECT_EQ(known->second, thread) << "lane " << before << " ran on two threads";
    }
    ++connections_per_lane[lane];
  }
  EXPECT_EQ(connections_per_lane, (std::map<std::string, int>{{"0", 2}, {"1", 2}}));
  ASSERT_EQ(thread_of_lane.size(), 2U);
  EXPECT_NE(thread_of_lane["0"], thread_of_lane["1"]);
}

}  // namespace
}  // namespace tenantd::http::server_testing

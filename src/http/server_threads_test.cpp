// The server with connection contexts (one io_context per I/O thread, as serve() runs it):
// connections are handed to the contexts in turn, every request of a connection is handled on
// its context's one thread, and stop_accepting/close_all still reach every connection.
#include "http/server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <functional>
#include <mutex>
#include <set>

#include "http/server_test_fixture.hpp"

namespace tenantd::http::server_testing {
namespace {

// Two single-threaded contexts; the first also runs the listening socket.
class server_threads_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = fast_options();
    options.connection_contexts = {&first_, &second_};
    server_ = std::make_unique<server>(
        first_, std::move(options),
        [](api::request&) -> net::awaitable<api::response> {
          api::response response;
          response.content_type = "text/plain";
          response.body = std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id()));
          co_return response;
        },
        reject);
    server_->start();
    threads_.emplace_back([this] { first_.run(); });
    threads_.emplace_back([this] { second_.run(); });
  }
  void TearDown() override {
    server_->close_all();
    first_work_.reset();
    second_work_.reset();
    first_.stop();
    second_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }
  // The thread (as the handler names it) that serves each of `requests` on one connection.
  std::set<std::string> threads_serving(client& c, int requests) const {
    std::set<std::string> seen;
    for (int i = 0; i < requests; ++i) {
      EXPECT_TRUE(c.send(get_root));
      const auto r = c.read_response();
      EXPECT_TRUE(r.has_value());
      if (r) seen.insert(r->body);
    }
    return seen;
  }

  // Destroyed in reverse: the first context (the acceptor's, whose pending accept holds a
  // socket of the second) goes before the second.
  net::io_context second_{1};
  net::io_context first_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> second_work_{second_.get_executor()};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> first_work_{first_.get_executor()};
  std::unique_ptr<server> server_;
  std::vector<std::thread> threads_;
};

TEST_F(server_threads_test, connections_take_turns_and_each_stays_on_one_thread) {
  client a(server_->port());
  client b(server_->port());
  const auto on_a = threads_serving(a, 5);
  const auto on_b = threads_serving(b, 5);
  ASSERT_EQ(on_a.size(), 1U) << "every request of a connection runs on its thread";
  ASSERT_EQ(on_b.size(), 1U);
  EXPECT_NE(*on_a.begin(), *on_b.begin()) << "the next connection went to the other thread";
  client c(server_->port());
  EXPECT_EQ(threads_serving(c, 2), on_a) << "and the third to the first again";
}

TEST_F(server_threads_test, close_all_reaches_connections_on_every_thread) {
  client a(server_->port());
  client b(server_->port());
  ASSERT_EQ(threads_serving(a, 1).size(), 1U);
  ASSERT_EQ(threads_serving(b, 1).size(), 1U);
  EXPECT_EQ(server_->open_connections(), 2U);
  server_->stop_accepting();
  server_->close_all();
  EXPECT_TRUE(a.closed_within());
  EXPECT_TRUE(b.closed_within());
  EXPECT_TRUE(eventually([&] { return server_->open_connections() == 0; }));
}

}  // namespace
}  // namespace tenantd::http::server_testing

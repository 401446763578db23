// Runs an awaitable to completion on a private io_context (for tests of async code).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace tenantd::test {

// Runs `make(executor)` (which returns an awaitable<T>) on `threads` threads until done;
// rethrows its exception. Fails with std::runtime_error after `timeout`.
template <class Make>
auto run_coro(Make&& make, std::chrono::seconds timeout = std::chrono::seconds(60), int threads = 1) {
  boost::asio::io_context io;
  auto fut = boost::asio::co_spawn(io, std::forward<Make>(make)(io.get_executor()), boost::asio::use_future);
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&io] { io.run_for(std::chrono::hours(1)); });
  io.run_for(timeout);
  io.stop();
  for (auto& t : extra) t.join();
  if (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready)
    throw std::runtime_error("run_coro: timed out");
  return fut.get();
}

}  // namespace tenantd::test

// pg_dump and pg_restore as child processes. They run on a worker thread and the coroutine
// only polls for completion, so no I/O thread blocks. The password reaches them only through
// PGPASSWORD in an environment that holds nothing else of ours.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <string>
#include <type_traits>
#include <vector>

#include "tenancy/pool_registry.hpp"

namespace tenantd::tenancy {

// The environment pg_dump and pg_restore run with: PATH, HOME, TMPDIR, TZ, LANG, LANGUAGE,
// LC_* and PG* from `parent` (a NULL-terminated environ array), then PGPASSWORD=`password`
// (a PGPASSWORD of the parent is dropped). Nothing else: no JWT_SECRET, no ADMIN_TOKEN.
std::vector<std::string> pg_tool_environment(const char* const* parent, const std::string& password);

// Path of a PostgreSQL client program: /usr/lib/postgresql/15/bin/<name> if present, else
// the first match on PATH, else <name> unchanged.
std::string find_pg_program(const std::string& name);

// pg_dump --format=custom of `database` into `archive_path` (which must exist: its mode is
// kept), connecting as `as` (its TLS settings included). Throws std::runtime_error holding pg_dump's stderr.
boost::asio::awaitable<void> pg_dump(const db::server_endpoint& as, const std::string& database,
                                     const std::string& archive_path);
// pg_restore --no-owner --exit-on-error --single-transaction of `archive_path` into the
// existing, empty `database`, connecting as `as` (who then owns every restored object).
// Throws std::runtime_error holding pg_restore's stderr.
boost::asio::awaitable<void> pg_restore(const db::server_endpoint& as, const std::string& database,
                                        const std::string& archive_path);

// Runs a blocking function on its own thread and returns (or throws) what it did; the
// coroutine polls for the result, so its executor stays free for other work.
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload(F f) {
  using namespace std::chrono_literals;
  auto done = std::async(std::launch::async, std::move(f));
  auto executor = co_await boost::asio::this_coro::executor;
  auto delay = 2ms;
  while (done.wait_for(0s) != std::future_status::ready) {
    boost::asio::steady_timer timer(executor, delay);
    co_await timer.async_wait(boost::asio::use_awaitable);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 50ms);
  }
  co_return done.get();
}

}  // namespace tenantd::tenancy

// The dispatcher's one retry of a member request that failed with the database unavailable:
// it runs again only when master shows the tenant placed elsewhere than this process last
// knew when the request started (a move's fence met), whether the move happened during the
// request or before it, unheard by this process; never for an outage of a tenant that did not
// move. Against a migrated master database; the handler stands for a repository call.
#include <boost/asio/awaitable.hpp>
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "api/dispatcher.hpp"
#include "api/router.hpp"
#include "db/connection.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::api {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

// What the handler saw (handlers are plain function pointers, so they report here).
struct attempts {
  std::vector<std::string> servers;  // the tenant's server as each attempt found it
  std::set<std::string> fenced;      // servers where the tenant's database is unavailable
  std::string move_to;               // when set, the first attempt moves the tenant there
  std::string master;                // the master database's name
};
attempts seen;

void place(const std::string& server) {
  test::admin_exec("UPDATE tenants SET db_server = '" + server + "' WHERE id = 'acme'", seen.master);
}

// Looks up the tenant's placement as a repository would, and fails on the fenced server.
net::awaitable<response> use_tenant_database(context& ctx) {
  const auto tenant = co_await ctx.svc.tenants->find(ctx.caller->tenant_id);
  const std::string server = tenant && tenant->db_server ? *tenant->db_server : "main";
  seen.servers.push_back(server);
  if (seen.servers.size() == 1 && !seen.move_to.empty()) place(seen.move_to);  // the cut-over, meanwhile
  if (seen.fenced.count(server) != 0) throw db::unavailable_error("the database of tenant acme refuses connections");
  response res;
  res.status = 200;
  co_return res;
}

const std::vector<route> routes = {
    {"GET", "/things", use_tenant_database, access_kind::member, std::nullopt, body_kind::none},
};

class dispatcher_retry : public testing::Test {
 protected:
  void SetUp() override {
    test::migrate_master(master_);
    test::admin_exec("INSERT INTO db_servers (name, host, port) VALUES ('b2', '127.0.0.1', 5999)", master_.name());
    test::admin_exec(
        "INSERT INTO tenants (id, name, status, database_name, schema_version, db_server) VALUES "
        "('acme', 'Acme', 'active', 'tenant_acme', 1, 'main')",
        master_.name());
    seen = {};
    seen.master = master_.name();
  }

  // GET /things as a member of acme, through a dispatcher whose directory has loaded the
  // tenant (so this process knows its placement), has seen `before` run and then looked the
  // tenant up again (it hears of what `before` changed only if `before` invalidates it).
  response send(const std::function<void(tenancy::directory&)>& before = {}) {
    return test::run_coro([&](auto ex) -> net::awaitable<response> {
      db::pool_options options;
      options.connection.conninfo = master_.conninfo();
      options.max_size = 2;
      tenancy::directory tenants(db::pool::create(ex, std::move(options)), 60s);
      (void)co_await tenants.find("acme");
      if (before) before(tenants);
      (void)co_await tenants.find("acme");
      services svc;
      svc.tenants = &tenants;
      dispatcher d(
          svc, [](const access_entry&) {}, routes,
          [](std::string_view) -> net::awaitable<result<principal>> {
            principal who;
            who.tenant_id = "acme";
            who.account_id = "user-1";
            who.role = "member";
            who.session_id = "session-1";
            co_return who;
          });
      request req;
      req.method = "GET";
      req.target = req.path = "/things";
      req.headers = {{"authorization", "Bearer any"}};
      req.remote_address = "127.0.0.1";
      auto res = co_await d.handle(req);
      co_return res;
    });
  }

  test::test_database master_;
};

TEST_F(dispatcher_retry, a_request_that_met_the_fence_of_a_move_during_it_runs_once_more_on_the_target) {
  seen.fenced = {"main"};
  seen.move_to = "b2";
  const auto res = send();
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(seen.servers, (std::vector<std::string>{"main", "b2"}));
}

// The process missed the move (its directory still says main) and the request starts after
// the flip: it meets the fence, and runs again on the target.
TEST_F(dispatcher_retry, a_request_of_a_process_that_missed_the_move_runs_once_more_on_the_target) {
  seen.fenced = {"main"};
  const auto res = send([](tenancy::directory&) { place("b2"); });
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(seen.servers, (std::vector<std::string>{"main", "b2"}));
}

TEST_F(dispatcher_retry, a_request_that_fails_without_a_move_is_not_run_again) {
  seen.fenced = {"main"};
  const auto res = send();
  EXPECT_EQ(res.status, 503u) << res.body;
  EXPECT_EQ(seen.servers, (std::vector<std::string>{"main"}));
}

// The tenant moved before the request, and this process knew it then: an outage of the new
// server is an outage, not a move.
TEST_F(dispatcher_retry, a_request_failing_after_a_move_this_process_already_knew_is_not_run_again) {
  seen.fenced = {"b2"};
  const auto res = send([](tenancy::directory& tenants) {
    place("b2");
    tenants.invalidate("acme");  // the move's notification, heard
  });
  EXPECT_EQ(res.status, 503u) << res.body;
  EXPECT_EQ(seen.servers, (std::vector<std::string>{"b2"}));
}

// The retry fails too (the target away as well): the request ends there, with a 503.
TEST_F(dispatcher_retry, a_request_is_run_again_once_at_most) {
  seen.fenced = {"main", "b2"};
  seen.move_to = "b2";
  const auto res = send();
  EXPECT_EQ(res.status, 503u) << res.body;
  EXPECT_EQ(seen.servers, (std::vector<std::string>{"main", "b2"}));
}

}  // namespace
}  // namespace tenantd::api

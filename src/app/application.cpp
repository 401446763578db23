// The serve command: builds every component, starts the server, waits for a signal.
#include "app/application.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "api/client_address.hpp"
#include "api/dispatcher.hpp"
#include "api/request_quota.hpp"
#include "app/logging.hpp"
#include "app/metrics.hpp"
#include "app/tenant_settings.hpp"
#include "auth/jwt.hpp"
#include "auth/password_hasher.hpp"
#include "auth/rate_limiter.hpp"
#include "auth/token_cache.hpp"
#include "db/login_attempts.hpp"
#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "db/pool.hpp"
#include "db/session_repository.hpp"
#include "http/server.hpp"
#include "identity/accounts.hpp"
#include "tenancy/access_cache.hpp"
#include "tenancy/cache_invalidation.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/invalidation_listener.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"

namespace tenantd::app {
namespace net = boost::asio;

// Master migrations run under this advisory lock, so several processes can start at once.
const db::migrate_options master_lock{.advisory_lock_key = 0x74656e616e7464, .target_version = std::nullopt};
using namespace std::chrono_literals;

namespace {

// Applies master migrations (under an advisory lock) and loads the role table; retries
// until the master database is reachable. `master` connects as the role that runs DDL; when
// that is a separate role, `runtime_role` (the MASTER_DATABASE_URL user) gets data access.
net::awaitable<void> prepare_master(std::shared_ptr<db::pool> master, std::string runtime_role, role_table& roles,
                                    tenancy::provisioner& provisioner, tenancy::lifecycle& lifecycle,
                                    std::atomic<bool>& ready, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  const auto migrations = db::parse_migrations(db::embedded_master_migrations());
  // Unreachable: retried at least every second, so the server is ready within about a second
  // of PostgreSQL coming back (ops expect full service within 5 s). A migration that fails
  // needs a person, so those retries back off further.
  auto delay = 250ms;
  auto longest = 1000ms;
  while (!stopping) {
    std::string failure;
    try {
      auto conn = co_await master->acquire();
      auto report = co_await db::apply_migrations(*conn, migrations, master_lock);
      if (!report.applied.empty())
        spdlog::info("master database migrated from version {} to {}", report.version_before, report.version_after);
      if (!runtime_role.empty()) co_await db::grant_data_access(*conn, runtime_role);
      roles = co_await db::master::load_roles(*conn);
      conn = {};
      if (provisioner.settings().use_template) {
        const int version = co_await provisioner.prepare_template();
        spdlog::info("tenant template {} at schema version {}", provisioner.template_name(), version);
      }
      const auto reconciled = co_await lifecycle.reconcile();
      if (!reconciled.rolled_back.empty() || !reconciled.deleted.empty())
        spdlog::warn("reconciled {} half-provisioned and {} half-deleted tenants", reconciled.rolled_back.size(),
                     reconciled.deleted.size());
      ready = true;
      co_return;
    } catch (const db::migration_error& e) {
      failure = e.what();
      spdlog::critical("master migrations cannot be applied: {}", failure);
      longest = 5000ms;
    } catch (const std::exception& e) {
      failure = e.what();
      spdlog::warn("master database not ready ({}); retrying", failure);
    }
    net::steady_timer timer(executor, delay);
    co_await timer.async_wait(net::use_awaitable);
    delay = std::min(delay * 2, longest);
  }
}

net::awaitable<void> sweep_pools(tenancy::pool_registry& pools, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  while (!stopping) {
    net::steady_timer timer(executor, 5s);
    co_await timer.async_wait(net::use_awaitable);
    pools.sweep();
  }
}

// glibc keeps memory freed by closed connections (Beast buffers, coroutine frames) in its
// arenas, so RSS stays at its peak. Every 5 s, when no request is in flight, the free pages
// go back to the kernel (malloc_trim also releases pages in the middle of the heap); at once
// when many connections have just closed.
net::awaitable<void> trim_memory(const http::server& server, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  std::size_t peak = server.open_connections();
  int ticks = 0;
  while (!stopping) {
    net::steady_timer timer(executor, 1s);
    co_await timer.async_wait(net::use_awaitable);
    const auto open = server.open_connections();
    peak = std::max(peak, open);
    ++ticks;
    const bool mass_close = peak >= open + 1000;
    if (mass_close || (ticks >= 5 && server.requests_in_flight() == 0)) {
      malloc_trim(0);
      peak = open;
      ticks = 0;
    }
  }
}

// A tenant creation that PostgreSQL interrupted could not roll itself back (the database was
// gone), so its 'provisioning' row would block the id until the next start-up reconcile.
// Every 3 s, once the master is ready, this looks for 'provisioning' rows; one that was
// already there on the previous look is handed to the reconciler, which leaves a creation
// still in progress alone (its advisory lock is held) and rolls back the others. Deletions
// are left to the start-up reconcile and to DELETE's own retry: one in progress holds no lock.
net::awaitable<void> reconcile_interrupted(tenancy::lifecycle& lifecycle, const std::atomic<bool>& ready,
                                           const std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  const std::optional<tenant_status> provisioning = tenant_status::provisioning;
  std::vector<std::string> seen_before;
  while (!stopping) {
    net::steady_timer timer(executor, 3s);
    co_await timer.async_wait(net::use_awaitable);
    if (!ready || stopping) continue;
    try {
      const auto rows = co_await lifecycle.list(provisioning);
      std::vector<std::string> seen;
      for (const auto& t : rows) seen.push_back(t.id);
      const bool lingering = std::any_of(seen.begin(), seen.end(), [&](const std::string& id) {
        return std::find(seen_before.begin(), seen_before.end(), id) != seen_before.end();
      });
      seen_before = std::move(seen);
      if (!lingering) continue;
      const auto report = co_await lifecycle.reconcile(false);
      if (!report.rolled_back.empty())
        spdlog::warn("reconciled {} interrupted tenant creations", report.rolled_back.size());
    } catch (const std::exception& e) {  // the database is away again: try on the next round
      spdlog::debug("reconciler: {}", e.what());
    }
  }
}

// Ended and expired sessions (with their refresh tokens) and old login attempts are
// deleted every 10 minutes, in batches, once the master is ready. Any process may run it:
// the deletes are idempotent.
net::awaitable<void> purge_expired(std::shared_ptr<db::pool> master, const std::atomic<bool>& ready,
                                   const std::atomic<bool>& stopping) {
  constexpr std::int64_t batch = 1000;
  constexpr std::int64_t retention_seconds = 24 * 3600;  // an ended session stays a day for the record
  auto executor = co_await net::this_coro::executor;
  while (!stopping) {
    net::steady_timer timer(executor, 10min);
    co_await timer.async_wait(net::use_awaitable);
    if (!ready || stopping) continue;
    try {
      std::int64_t purged = 0;
      for (std::int64_t n = batch; n == batch && !stopping;) {
        auto conn = co_await master->acquire();
        n = co_await db::sessions::purge(*conn, retention_seconds, batch);
        purged += n;
      }
      for (std::int64_t n = batch; n >= batch && !stopping;) {
        auto conn = co_await master->acquire();
        n = co_await db::login_attempts::purge(*conn, batch);
      }
      if (purged > 0) spdlog::info("purged {} ended or expired sessions", purged);
    } catch (const std::exception& e) {  // the database is away: try on the next round
      spdlog::debug("session purge: {}", e.what());
    }
  }
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string master_conninfo(const config& cfg) { return master_conninfo(cfg, cfg.statement_timeout); }

namespace {

std::string conninfo_for(const config& cfg, const database_endpoint& endpoint,
                         std::chrono::milliseconds statement_timeout) {
  const std::vector<std::pair<std::string, std::string>> keywords{
      {"host", endpoint.host},
      {"port", endpoint.port},
      {"user", endpoint.user},
      {"password", endpoint.password},
      {"dbname", cfg.master_database_name},
      {"application_name", "tenantd"},
      {"options",
       "-c statement_timeout=" + std::to_string(statement_timeout.count()) + " -c TimeZone=UTC -c search_path=public"},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
  };
  return db::make_conninfo(keywords);
}

}  // namespace

std::string master_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout) {
  return conninfo_for(cfg, cfg.master, statement_timeout);
}

std::string migration_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout) {
  return conninfo_for(cfg, cfg.migration.value_or(cfg.master), statement_timeout);
}

int serve(const config& cfg) {
  const unsigned threads = cfg.threads != 0 ? cfg.threads : std::max(1U, std::thread::hardware_concurrency());
  net::io_context io(static_cast<int>(threads));

  db::pool_options master_options;
  master_options.connection.conninfo = master_conninfo(cfg);
  // Connects are the pool's background work; a request waits POOL_ACQUIRE_TIMEOUT_MS at most
  // for whichever connection comes first, and a slower connect still feeds the pool.
  master_options.connection.connect_timeout = std::max(cfg.pool_acquire_timeout, std::chrono::milliseconds(10000));
  master_options.connection.query_timeout = cfg.statement_timeout + 1s;
  master_options.max_size = cfg.master_pool_size;
  master_options.acquire_timeout = cfg.pool_acquire_timeout;
  master_options.idle_timeout = cfg.pool_idle_timeout;
  master_options.connection.slow_query_threshold = cfg.slow_query;
  master_options.connection.label = "master";
  auto master = db::pool::create(io.get_executor(), master_options);
  // CREATE/DROP DATABASE and template maintenance run on their own small pool without the
  // request statement timeout: under I/O load a DROP DATABASE can take longer than 5 s.
  db::pool_options ddl_options = master_options;
  // With MIGRATION_DATABASE_URL it connects as the DDL role, which also runs the migrations.
  ddl_options.connection.conninfo = migration_conninfo(cfg, std::chrono::minutes(10));
  ddl_options.connection.query_timeout = std::chrono::minutes(10);
  ddl_options.max_size = 4;
  auto ddl = db::pool::create(io.get_executor(), ddl_options);

  tenancy::tenant_connection_settings tenant_settings{
      cfg.tenant.host,          cfg.tenant.port,       cfg.tenant.user,
      cfg.tenant.password,      cfg.tenant_pool_size,  cfg.tenant_pool_max_connections,
      cfg.pool_acquire_timeout, cfg.pool_idle_timeout, cfg.statement_timeout};
  tenant_settings.slow_query_threshold = cfg.slow_query;
  tenancy::pool_registry pools(io.get_executor(), tenant_settings);
  tenancy::directory tenants(master, 30s);
  // Invalidations are pushed (LISTEN/NOTIFY), so entries may live long while the listener is
  // connected; while it is not, a change could be missed, so they live a second.
  tenancy::access_cache access(master, 10min, 1s);
  auth::token_cache verified_tokens;
  auto tenant_migrations = app::tenant_migrations(cfg);  // TENANT_MIGRATIONS_DIR or built-in
  auto provisioning = app::provisioning(cfg);            // with the DDL role of MIGRATION_DATABASE_URL, if any
  provisioning.tenant = tenant_settings;
  provisioning.fault_point = cfg.fault_point;
  tenancy::provisioner provisioner(ddl, provisioning, tenant_migrations);

  auth::password_hasher hasher({cfg.argon2_iterations, cfg.argon2_memory_kib * 1024U}, cfg.argon2_threads,
                               cfg.argon2_max_queue);
  auth::jwt_codec jwt({cfg.jwt_secret, cfg.jwt_key_id, "tenantd", "tenantd-api", 60, 8192});
  role_table roles = role_table::defaults();

  identity::dependencies deps;
  deps.master = master;
  deps.pools = &pools;
  deps.tenants = &tenants;
  deps.access = &access;
  deps.hasher = &hasher;
  deps.jwt = &jwt;
  deps.token_cache = &verified_tokens;
  deps.roles = &roles;
  deps.access_token_ttl = cfg.jwt_expiration;
  deps.invitation_ttl = cfg.invitation_ttl_hours * 3600;
  deps.latest_tenant_schema = provisioner.latest_version();
  deps.now = unix_now;
  identity::accounts accounts(deps);

  auth::rate_limiter login_per_client(cfg.login_max_failures_per_client, std::chrono::minutes(1));
  auth::rate_limiter successes_per_account(cfg.login_successes_per_account, std::chrono::minutes(1));
  auth::rate_limiter successes_per_client(cfg.login_successes_per_client, std::chrono::minutes(1));
  auth::rate_limiter creates_per_client(cfg.tenant_creates_per_client, std::chrono::hours(1));
  auth::rate_limiter registrations_per_client(cfg.registrations_per_client, std::chrono::hours(1));
  api::quota_settings quotas;
  quotas.tenant_rate = static_cast<double>(cfg.tenant_requests_per_second);
  quotas.tenant_burst = static_cast<double>(cfg.tenant_request_burst);
  quotas.session_rate = static_cast<double>(cfg.session_requests_per_second);
  quotas.session_burst = static_cast<double>(cfg.session_request_burst);
  api::request_quota quota(quotas);

  const auto invalidate_caches = [&](const invalidation& change) {
    tenancy::apply_invalidation(change, access, tenants);
  };
  tenancy::lifecycle lifecycle(master, provisioner, &pools, invalidate_caches);

  std::atomic<bool> master_ready{false};
  std::atomic<bool> draining{false};
  std::atomic<bool> stopping{false};

  api::services svc;
  svc.master = master;
  svc.pools = &pools;
  svc.tenants = &tenants;
  svc.provisioner = &provisioner;
  svc.lifecycle = &lifecycle;
  svc.accounts = &accounts;
  svc.login_failures_per_account =
      db::login_attempts::limits{cfg.login_max_failures_per_account, cfg.login_max_failures_per_account_per_hour};
  svc.login_failures_per_client = &login_per_client;
  svc.login_successes_per_account = &successes_per_account;
  svc.login_successes_per_client = &successes_per_client;
  svc.tenant_creates_per_client = &creates_per_client;
  svc.registrations_per_client = &registrations_per_client;
  svc.quota = &quota;
  svc.settings = {TENANTD_VERSION, cfg.tenant_signup_open, cfg.admin_token, cfg.cors_origins};
  svc.settings.backup_dir = cfg.backup_dir;
  svc.settings.trusted_proxies = cfg.trusted_proxies;
  svc.master_ready = &master_ready;
  svc.check_readiness = [&]() -> net::awaitable<api::readiness> {
    api::readiness r;
    r.migrated = master_ready.load();
    r.draining = draining.load();
    try {
      auto conn = co_await master->acquire();
      co_await conn->exec("SELECT 1");
      r.master_reachable = true;
    } catch (const std::exception&) {
      r.master_reachable = false;
    }
    co_return r;
  };
  const http::server* main_server = nullptr;  // set below; read by the in-flight gauge
  metrics_sources metric_sources;
  metric_sources.master = master;
  metric_sources.pools = &pools;
  metric_sources.hasher = &hasher;
  metric_sources.quota = &quota;
  metric_sources.requests_in_flight = [&main_server] { return main_server ? main_server->requests_in_flight() : 0; };
  metric_sources.open_connections = [&main_server] { return main_server ? main_server->open_connections() : 0; };
  metric_sources.version = TENANTD_VERSION;
  metrics telemetry(std::move(metric_sources));
  api::dispatcher dispatcher(svc, [&telemetry](const api::access_entry& entry) {
    log_access(entry);
    telemetry.observe(entry);
  });

  http::server_options server_options;
  server_options.host = cfg.host;
  server_options.port = cfg.port;
  // GET /metrics is answered here, outside the route table, unless METRICS_PORT moves it.
  const bool metrics_on_main_port = !cfg.metrics_port.has_value();
  http::server server(
      io, server_options,
      [&dispatcher, &telemetry, metrics_on_main_port](api::request& req) {
        // It lists tenant database names: loopback peers only (the TCP peer, never X-Forwarded-For);
        // others fall through to the router, which knows no /metrics (404).
        if (metrics_on_main_port && req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD") &&
            api::is_loopback(req.remote_address))
          return telemetry.respond();
        return dispatcher.handle(req);
      },
      [&dispatcher](unsigned status, errc code, std::string_view detail, const api::request& partial) {
        return dispatcher.reject(status, code, detail, partial);
      });
  main_server = &server;
  // With METRICS_PORT, a second server on the same HOST answers only GET /metrics.
  std::optional<http::server> metrics_server;
  if (cfg.metrics_port) {
    http::server_options metrics_options;
    metrics_options.host = cfg.host;
    metrics_options.port = *cfg.metrics_port;
    metrics_options.max_connections = 64;
    metrics_server.emplace(
        io, metrics_options,
        [&telemetry](api::request& req) -> net::awaitable<api::response> {
          if (req.path == "/metrics" && (req.method == "GET" || req.method == "HEAD"))
            co_return co_await telemetry.respond();
          api::response res;
          res.status = 404;
          res.content_type = "text/plain; charset=utf-8";
          res.body = "only GET /metrics is served on this port\n";
          co_return res;
        },
        [](unsigned status, errc, std::string_view detail, const api::request&) {
          api::response res;
          res.status = status;
          res.content_type = "text/plain; charset=utf-8";
          res.body = std::string(detail) + "\n";
          res.close = true;
          return res;
        });
  }
  try {
    server.start();
    if (metrics_server) metrics_server->start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}:{} (METRICS_PORT {}): {}", cfg.host, cfg.port,
                     cfg.metrics_port ? std::to_string(*cfg.metrics_port) : std::string("unset"), e.what());
    return 1;
  }
  std::cout << "tenantd listening on " << cfg.host << ":" << server.port() << std::endl;
  if (metrics_server) {
    std::cout << "tenantd metrics on " << cfg.host << ":" << metrics_server->port() << std::endl;
    spdlog::info("metrics served on {}:{}", cfg.host, metrics_server->port());
  }
  spdlog::info("tenantd {} listening on {}:{} with {} threads", TENANTD_VERSION, cfg.host, server.port(), threads);

  db::connection_options listener_options = master_options.connection;
  tenancy::invalidation_listener listener(listener_options, invalidate_caches);
  listener.on_connection([&](bool connected) { access.set_listening(connected); });

  const auto log_failure = [](const char* what) {
    return [what](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{} stopped: {}", what, ex.what());
      }
    };
  };
  // Migrations and DDL as the DDL role (MIGRATION_DATABASE_URL) when there is one.
  std::string runtime_role = cfg.migration ? cfg.master.user : std::string();
  net::co_spawn(io, prepare_master(ddl, std::move(runtime_role), roles, provisioner, lifecycle, master_ready, stopping),
                log_failure("master preparation"));
  net::co_spawn(io, listener.run(), log_failure("invalidation listener"));
  net::co_spawn(io, sweep_pools(pools, stopping), log_failure("pool sweeper"));
  net::co_spawn(io, trim_memory(server, stopping), log_failure("memory trimmer"));
  net::co_spawn(io, reconcile_interrupted(lifecycle, master_ready, stopping), log_failure("reconciler"));
  net::co_spawn(io, purge_expired(master, master_ready, stopping), log_failure("session purge"));

  net::signal_set signals(io, SIGINT, SIGTERM);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int signal_number) {
    if (ec) return;
    if (draining.exchange(true)) {
      spdlog::warn("second signal {}: exiting now", signal_number);
      std::_Exit(1);
    }
    spdlog::info("signal {}: draining (up to {} s)", signal_number, cfg.shutdown_timeout.count());
    spdlog::default_logger()->flush();
    server.stop_accepting();
    signals.async_wait(on_signal);
    net::co_spawn(
        io,
        [&]() -> net::awaitable<void> {
          auto executor = co_await net::this_coro::executor;
          // Sessions end after their current reply (sent with Connection: close); idle
          // keep-alive connections were closed by stop_accepting().
          const auto deadline = std::chrono::steady_clock::now() + cfg.shutdown_timeout;
          while ((server.open_connections() > 0 || server.requests_in_flight() > 0) &&
                 std::chrono::steady_clock::now() < deadline) {
            net::steady_timer timer(executor, 20ms);
            co_await timer.async_wait(net::use_awaitable);
          }
          if (server.open_connections() > 0)
            spdlog::warn("shutdown timeout: closing {} connections still open", server.open_connections());
          stopping = true;
          listener.stop();
          server.close_all();
          if (metrics_server) {
            metrics_server->stop_accepting();
            metrics_server->close_all();
          }
          pools.shutdown();
          master->shutdown();
          ddl->shutdown();
          io.stop();
        },
        net::detached);
  };
  signals.async_wait(on_signal);

  std::vector<std::thread> workers;
  for (unsigned i = 1; i < threads; ++i) workers.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : workers) t.join();
  spdlog::info("tenantd stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace tenantd::app

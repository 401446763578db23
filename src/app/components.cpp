// The serving process's components, built in dependency order from a configuration.
#include "app/components.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <iostream>
#include <string>

#include "api/client_address.hpp"
#include "app/logging.hpp"
#include "app/master_database.hpp"
#include "app/tenant_settings.hpp"
#include "tenancy/cache_invalidation.hpp"

namespace tenantd::app {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

tenancy::tenant_connection_settings tenant_pools(const config& cfg) {
  auto settings = tenant_connection(cfg);
  settings.slow_query_threshold = cfg.slow_query;
  return settings;
}

// The request path's tenant pools: as tenant_pools, with new connections' connect steps on
// the handshake thread.
tenancy::tenant_connection_settings request_pools(const config& cfg, boost::asio::thread_pool& handshakes,
                                                  const std::vector<net::io_context*>& lanes) {
  auto settings = tenant_pools(cfg);
  settings.handshake_executor = handshakes.get_executor();
  for (auto* lane : lanes) settings.lanes.emplace_back(lane->get_executor());
  return settings;
}

std::vector<net::io_context*> lanes_or_io(std::vector<net::io_context*> lanes, net::io_context& io) {
  if (lanes.empty()) lanes.push_back(&io);
  return lanes;
}

tenancy::provisioning_settings provisioning_for_serve(const config& cfg) {
  auto settings = provisioning(cfg);  // with the DDL role of MIGRATION_DATABASE_URL, if any
  settings.tenant = tenant_pools(cfg);
  settings.fault_point = cfg.fault_point;
  return settings;
}

identity::dependencies identity_dependencies(components& c) {
  identity::dependencies deps;
  deps.master = c.master;
  deps.pools = &c.pools;
  deps.tenants = &c.tenants;
  deps.servers = &c.db_servers;
  deps.gate = &c.gate;
  deps.access = &c.access;
  deps.hasher = &c.hasher;
  deps.jwt = &c.jwt;
  deps.token_cache = &c.verified_tokens;
  deps.roles = &c.roles;
  deps.access_token_ttl = c.cfg.jwt_expiration;
  deps.invitation_ttl = c.cfg.invitation_ttl_hours * 3600;
  deps.latest_tenant_schema = c.provisioner.latest_version();
  deps.now = unix_now;
  return deps;
}

api::quota_settings quota_settings(const config& cfg) {
  api::quota_settings quotas;
  quotas.tenant_rate = static_cast<double>(cfg.tenant_requests_per_second);
  quotas.tenant_burst = static_cast<double>(cfg.tenant_request_burst);
  quotas.session_rate = static_cast<double>(cfg.session_requests_per_second);
  quotas.session_burst = static_cast<double>(cfg.session_request_burst);
  return quotas;
}

http::server_options main_server_options(const config& cfg, const std::vector<net::io_context*>& lanes) {
  http::server_options options;
  options.host = cfg.host;
  options.port = cfg.port;
  options.lanes = lanes;
  return options;
}

// With METRICS_PORT, a second server on the same HOST answers only GET /metrics, to anyone.
void add_metrics_server(components& c) {
  if (!c.cfg.metrics_port) return;
  http::server_options options;
  options.host = c.cfg.host;
  options.port = *c.cfg.metrics_port;
  options.max_connections = 64;
  c.metrics_server.emplace(
      c.io, options,
      [&telemetry = c.telemetry](api::request& req) -> net::awaitable<api::response> {
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

}  // namespace

components::components(const config& config, net::io_context& io_context, std::vector<net::io_context*> io_lanes)
    : cfg(config),
      io(io_context),
      lanes(lanes_or_io(std::move(io_lanes), io_context)),
      master(db::pool::create(io.get_executor(), master_pool_options(cfg))),
      ddl(db::pool::create(io.get_executor(), ddl_pool_options(cfg))),
      db_servers(master, main_server(cfg), server_defaults(cfg)),
      pools(io.get_executor(), request_pools(cfg, handshakes, lanes),
            [this](const std::string& name) -> std::optional<db::server_endpoint> {
              auto found = db_servers.find(name);
              if (!found) return std::nullopt;
              return found->runtime;
            }),
      tenants(master, 30s),
      // Invalidations are pushed (LISTEN/NOTIFY), so entries may live long while the listener
      // is connected; while it is not, a change could be missed, so they live a second.
      access(master, 10min, 1s),
      usage(cfg.usage_enabled ? std::make_unique<tenancy::usage_recorder>(cfg.usage_max_tenants) : nullptr),
      databases(tenants, pools, usage.get(), &db_servers, &gate),
      provisioner(ddl, provisioning_for_serve(cfg), tenant_migrations(cfg), &db_servers),
      lifecycle(master, provisioner, &pools, [this](const invalidation& change) { invalidate(change); }),
      server_catalog(master, provisioner, db_servers, [this](const invalidation& change) { invalidate(change); }),
      mover(io.get_executor(), master, provisioner, move_settings(cfg),
            [this](const invalidation& change) { invalidate(change); }),
      listener(master_pool_options(cfg).connection, [this](const invalidation& change) { invalidate(change); }),
      hasher({cfg.argon2_iterations, cfg.argon2_memory_kib * 1024U}, cfg.argon2_threads, cfg.argon2_max_queue),
      jwt({cfg.jwt_secret, cfg.jwt_key_id, "tenantd", "tenantd-api", 60, 8192}),
      roles(role_table::defaults()),
      accounts(identity_dependencies(*this)),
      login_failures_per_client(cfg.login_max_failures_per_client, 1min),
      login_successes_per_account(cfg.login_successes_per_account, 1min),
      login_successes_per_client(cfg.login_successes_per_client, 1min),
      tenant_creates_per_client(cfg.tenant_creates_per_client, 1h),
      registrations_per_client(cfg.registrations_per_client, 1h),
      quota(quota_settings(cfg)),
      telemetry(make_metrics_sources()),
      services(make_services()),
      dispatcher(services,
                 [this](const api::access_entry& entry) {
                   log_access(entry);
                   telemetry.observe(entry);
                 }),
      server(
          io, main_server_options(cfg, lanes), [this](api::request& req) { return dispatcher.handle(req); },
          [this](unsigned status, errc code, std::string_view detail, const api::request& partial) {
            return dispatcher.reject(status, code, detail, partial);
          }) {
  listener.on_connection([this](bool connected) { access.set_listening(connected); });
  listener.set_fault_point(cfg.fault_point);
  add_metrics_server(*this);
}

void components::invalidate(const invalidation& change) {
  tenancy::apply_invalidation(change, access, tenants, &db_servers, &gate);
}

metrics_sources components::make_metrics_sources() {
  metrics_sources sources;
  sources.master = master;
  sources.pools = &pools;
  sources.hasher = &hasher;
  sources.quota = &quota;
  sources.usage = usage.get();
  sources.mover = &mover;
  sources.gate = &gate;
  // The server is built after the metrics; the page is rendered only once it serves.
  sources.requests_in_flight = [this] { return server.requests_in_flight(); };
  sources.open_connections = [this] { return server.open_connections(); };
  sources.version = TENANTD_VERSION;
  return sources;
}

api::services components::make_services() {
  api::services svc;
  svc.master = master;
  svc.databases = &databases;
  svc.tenants = &tenants;
  svc.provisioner = &provisioner;
  svc.lifecycle = &lifecycle;
  svc.servers = &server_catalog;
  svc.mover = &mover;
  svc.accounts = &accounts;
  svc.login_failures_per_account =
      db::login_attempts::limits{cfg.login_max_failures_per_account, cfg.login_max_failures_per_account_per_hour};
  svc.login_failures_per_client = &login_failures_per_client;
  svc.login_successes_per_account = &login_successes_per_account;
  svc.login_successes_per_client = &login_successes_per_client;
  svc.tenant_creates_per_client = &tenant_creates_per_client;
  svc.registrations_per_client = &registrations_per_client;
  svc.quota = &quota;
  svc.usage = usage.get();
  svc.settings = {TENANTD_VERSION, cfg.tenant_signup_open, cfg.admin_token, cfg.cors_origins};
  svc.settings.backup_dir = cfg.backup_dir;
  svc.settings.trusted_proxies = cfg.trusted_proxies;
  // GET /metrics goes through the route table on the main port unless METRICS_PORT moves it.
  svc.settings.loopback_routes = !cfg.metrics_port.has_value();
  svc.metrics_page = [this] { return telemetry.respond(); };
  svc.master_ready = &master_ready;
  svc.check_readiness = [this]() -> net::awaitable<api::readiness> {
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
  return svc;
}

bool components::listen() {
  try {
    server.start();
    if (metrics_server) metrics_server->start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen on {}:{} (METRICS_PORT {}): {}", cfg.host, cfg.port,
                     cfg.metrics_port ? std::to_string(*cfg.metrics_port) : std::string("unset"), e.what());
    return false;
  }
  std::cout << "tenantd listening on " << cfg.host << ":" << server.port() << std::endl;
  if (metrics_server) {
    std::cout << "tenantd metrics on " << cfg.host << ":" << metrics_server->port() << std::endl;
    spdlog::info("metrics served on {}:{}", cfg.host, metrics_server->port());
  }
  return true;
}

}  // namespace tenantd::app

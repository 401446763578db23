// What a handler sees: the request, the caller (on protected routes), the parsed JSON body,
// path parameters, and the services it may call. Handlers are coroutines returning a response.
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/client_address.hpp"
#include "api/message.hpp"
#include "auth/password_hasher.hpp"
#include "auth/rate_limiter.hpp"
#include "db/login_attempts.hpp"
#include "db/pool.hpp"
#include "domain/access.hpp"
#include "identity/accounts.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/mover.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_catalog.hpp"
#include "tenancy/tenant_databases.hpp"
#include "tenancy/usage_recorder.hpp"

namespace tenantd::api {

class request_quota;

struct readiness {
  bool master_reachable{false};
  bool migrated{false};
  bool draining{false};
  bool ok() const noexcept { return master_reachable && migrated && !draining; }
};

struct api_settings {
  std::string version;
  bool tenant_signup_open{true};
  std::string admin_token;
  std::vector<std::string> cors_origins;
  std::string backup_dir{"./backups"};     // BACKUP_DIR: admin backup/restore files
  api::trusted_proxies trusted_proxies{};  // TRUSTED_PROXIES: peers whose X-Forwarded-For counts
  // Routes of access_kind::loopback (GET /metrics) are served to loopback peers; off when
  // METRICS_PORT moves the metrics page to its own port.
  bool loopback_routes{false};
};

struct services {
  std::shared_ptr<db::pool> master;
  tenancy::tenant_databases* databases{nullptr};  // a tenant's connection or statement runner
  tenancy::directory* tenants{nullptr};
  tenancy::provisioner* provisioner{nullptr};
  tenancy::lifecycle* lifecycle{nullptr};
  tenancy::server_catalog* servers{nullptr};  // database servers (GET/POST/PUT/DELETE /admin/servers)
  tenancy::mover* mover{nullptr};             // tenant moves (POST /admin/tenants/:id/move, GET /admin/moves)
  identity::accounts* accounts{nullptr};
  // Login limits (api/login_limits.hpp). The per-account failure limit lives in the master
  // database (shared by every process); unset: no per-account failure limit.
  std::optional<db::login_attempts::limits> login_failures_per_account;
  auth::rate_limiter* login_failures_per_client{nullptr};    // optional
  auth::rate_limiter* login_successes_per_account{nullptr};  // optional
  auth::rate_limiter* login_successes_per_client{nullptr};   // optional
  auth::rate_limiter* tenant_creates_per_client{nullptr};
  auth::rate_limiter* registrations_per_client{nullptr};  // optional
  request_quota* quota{nullptr};                          // optional: per-tenant and per-session request quotas
  tenancy::usage_recorder* usage{nullptr};                // optional: per-tenant usage (USAGE_ENABLED)
  api_settings settings;
  const std::atomic<bool>* master_ready{nullptr};  // master migrated; until then only probes answer
  std::function<boost::asio::awaitable<readiness>()> check_readiness;
  std::function<boost::asio::awaitable<response>()> metrics_page;  // GET /metrics (Prometheus text)
};

struct context {
  const request& req;
  services& svc;
  std::string request_id;
  std::optional<principal> caller;  // set on protected routes
  boost::json::value body;          // a JSON object on routes that take a body
  std::vector<std::string> params;  // path parameters in pattern order
  std::string client_address;       // see client_address.hpp (X-Forwarded-For from trusted proxies)

  const principal& who() const { return *caller; }
};

using handler = boost::asio::awaitable<response> (*)(context&);

}  // namespace tenantd::api

// A tenant's connection or statement runner, from its record or its id, with its statements
// counted for the tenant's usage when a recorder is given.
#include "tenancy/tenant_databases.hpp"

#include "domain/server.hpp"

namespace tenantd::tenancy {
namespace {

using steady = std::chrono::steady_clock;
using db::param;
using db::result_set;
using db::statement;

// The pool as a runner, timing each statement for the tenant's usage. The time runs from the
// call to the answer, as the request waits for it (for a pipelined statement, with its wait
// behind the others in the pipeline). Statements that throw are not counted.
class metered_runner final : public db::statement_runner {
 public:
  metered_runner(std::shared_ptr<db::statement_runner> inner, usage_recorder& usage, std::string tenant_id)
      : inner_(std::move(inner)), usage_(usage), tenant_id_(std::move(tenant_id)) {}

  boost::asio::awaitable<result_set> exec_prepared(const statement& stmt, std::span<const param> params) override {
    const auto started = steady::now();
    auto result = co_await inner_->exec_prepared(stmt, params);
    usage_.record_statements(tenant_id_, 1,
                             std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started));
    co_return result;
  }

 private:
  std::shared_ptr<db::statement_runner> inner_;
  usage_recorder& usage_;
  std::string tenant_id_;
};

}  // namespace

struct tenant_connection::meter final : db::statement_observer {
  meter(usage_recorder& recorder, const std::string& tenant) : usage(recorder), tenant_id(tenant) {}
  void on_statement(std::chrono::microseconds took) noexcept override {
    ++statements;
    time += took;
  }
  usage_recorder& usage;
  std::string tenant_id;
  std::int64_t statements{0};
  std::chrono::microseconds time{0};
};

tenant_connection::tenant_connection(db::pooled_connection conn, usage_recorder* usage, const std::string& tenant_id)
    : conn_(std::move(conn)) {
  if (usage == nullptr || !conn_) return;
  meter_ = std::make_unique<meter>(*usage, tenant_id);
  conn_->observe_statements(meter_.get());
}

tenant_connection::tenant_connection() noexcept = default;

tenant_connection::tenant_connection(tenant_connection&& other) noexcept = default;

tenant_connection& tenant_connection::operator=(tenant_connection&& other) noexcept {
  if (this != &other) {
    finish();
    meter_ = std::move(other.meter_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

tenant_connection::~tenant_connection() { finish(); }

void tenant_connection::finish() noexcept {
  if (!meter_) return;
  if (conn_) conn_->observe_statements(nullptr);
  try {
    if (meter_->statements > 0) meter_->usage.record_statements(meter_->tenant_id, meter_->statements, meter_->time);
  } catch (const std::exception&) {  // out of memory for a new entry: the count is lost, not the request
  }
  meter_.reset();
}

boost::asio::awaitable<std::shared_ptr<const tenant_record>> tenant_databases::find(const std::string& tenant_id) {
  auto tenant = co_await tenants_.find(tenant_id);
  if (!tenant) throw tenant_gone_error(tenant_id);
  co_return tenant;
}

// Written without an early co_return and without co_await in a condition: GCC 12 miscompiles
// both in coroutines (docs/architecture.md).
boost::asio::awaitable<std::optional<db::server_endpoint>> tenant_databases::server_of(const tenant_record& tenant) {
  const bool elsewhere = servers_ != nullptr && tenant.db_server && *tenant.db_server != main_server_name;
  std::optional<server_connection> found;
  if (elsewhere) found = servers_->find(*tenant.db_server);
  if (elsewhere && !found) {
    // A server added since this process last loaded the directory (or a NOTIFY not seen yet).
    found = co_await servers_->lookup(*tenant.db_server);
  }
  if (elsewhere && !found)
    throw db::unavailable_error("database server " + *tenant.db_server + " of tenant " + tenant.id + " is unknown");
  std::optional<db::server_endpoint> endpoint;
  if (found) endpoint = found->runtime;
  co_return endpoint;
}

boost::asio::awaitable<bool> tenant_databases::pass_gate(const std::string& tenant_id, intent use) {
  std::chrono::microseconds waited{0};
  if (gate_ != nullptr && use == intent::write) waited = co_await gate_->pass(tenant_id);
  co_return waited.count() > 0;
}

boost::asio::awaitable<tenant_connection> tenant_databases::acquire(const tenant_record& tenant, intent use) {
  const bool held = co_await pass_gate(tenant.id, use);
  std::shared_ptr<const tenant_record> after;
  if (held) after = co_await find(tenant.id);  // the cut-over that held it may have moved it
  const tenant_record& current = after ? *after : tenant;
  // The servers directory is asked only for a pool not made yet: its answer is a copy of the
  // server's endpoints (a dozen strings), which every request of a tenant on a server other
  // than main paid for before (bench/servers.py: 8 % more CPU per request than on main).
  auto pool = pools_.existing_pool(current);
  if (!pool) {
    const auto endpoint = co_await server_of(current);
    pool = pools_.pool_for(current, endpoint);
  }
  auto conn = co_await pool->acquire();
  co_return tenant_connection(std::move(conn), usage_, current.id);
}

boost::asio::awaitable<tenant_connection> tenant_databases::acquire(const std::string& tenant_id, intent use) {
  (void)co_await pass_gate(tenant_id, use);
  const auto tenant = co_await find(tenant_id);
  co_return co_await acquire(*tenant, intent::read);  // the gate is passed
}

std::shared_ptr<db::statement_runner> tenant_databases::runner(const tenant_record& tenant,
                                                               const std::optional<db::server_endpoint>& endpoint) {
  auto pool = pools_.pool_for(tenant, endpoint);
  if (usage_ == nullptr) return pool;
  return std::make_shared<metered_runner>(std::move(pool), *usage_, tenant.id);
}

boost::asio::awaitable<std::shared_ptr<db::statement_runner>> tenant_databases::runner(const std::string& tenant_id,
                                                                                       intent use) {
  (void)co_await pass_gate(tenant_id, use);
  const auto tenant = co_await find(tenant_id);
  std::optional<db::server_endpoint> endpoint;  // only for a pool not made yet (see acquire)
  if (!pools_.existing_pool(*tenant)) endpoint = co_await server_of(*tenant);
  co_return runner(*tenant, endpoint);
}

}  // namespace tenantd::tenancy

// A tenant's connection or statement runner, from its record or its id.
#include "tenancy/tenant_databases.hpp"

namespace tenantd::tenancy {

boost::asio::awaitable<std::shared_ptr<const tenant_record>> tenant_databases::find(const std::string& tenant_id) {
  auto tenant = co_await tenants_.find(tenant_id);
  if (!tenant) throw tenant_gone_error(tenant_id);
  co_return tenant;
}

boost::asio::awaitable<db::pooled_connection> tenant_databases::acquire(const tenant_record& tenant) {
  co_return co_await pools_.pool_for(tenant)->acquire();
}

boost::asio::awaitable<db::pooled_connection> tenant_databases::acquire(const std::string& tenant_id) {
  const auto tenant = co_await find(tenant_id);
  co_return co_await acquire(*tenant);
}

std::shared_ptr<db::statement_runner> tenant_databases::runner(const tenant_record& tenant) {
  return pools_.pool_for(tenant);
}

boost::asio::awaitable<std::shared_ptr<db::statement_runner>> tenant_databases::runner(const std::string& tenant_id) {
  const auto tenant = co_await find(tenant_id);
  co_return runner(*tenant);
}

}  // namespace tenantd::tenancy

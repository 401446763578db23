// Applies one invalidation to this process's caches, whoever reports it: the invalidation
// listener (another process's change), the lifecycle or identity code (this process's own).
#pragma once
#include "domain/invalidation.hpp"
#include "tenancy/access_cache.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/server_directory.hpp"
#include "tenancy/write_gate.hpp"

namespace tenantd::tenancy {

// The access cache drops what the change touches; the directory drops the tenant's record on
// a tenant change and everything on `everything`; the servers directory (when given) reloads
// on its next lookup after a server change or `everything`; the write gate (when given) holds
// or releases a tenant's writes for a move's cut-over.
void apply_invalidation(const invalidation& change, access_cache& access, directory& tenants,
                        server_directory* servers = nullptr, write_gate* gate = nullptr);

}  // namespace tenantd::tenancy

// `tenantd doctor`: checks an installation and says what to fix. One line per check:
// "ok", "warn" or "FAIL", the check's name, what was found and, for problems, what to do.
#pragma once
#include <ostream>

#include "app/config.hpp"

namespace tenantd::cli {

// Runs every check against `env` (configuration, PostgreSQL reachability, role privileges,
// master migrations, tenant template, tenant schema versions, orphan and missing databases),
// printing to `out`. Returns 0 when no check failed, 1 otherwise.
int run_doctor(const app::environment& env, std::ostream& out);

}  // namespace tenantd::cli

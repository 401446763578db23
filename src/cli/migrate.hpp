// tenantd migrate: master migrations, then pending tenant migrations on every tenant in
// parallel (bounded), continuing past failures; prints a report, non-zero exit on failure.
#pragma once
#include <string>
#include <vector>

#include "app/config.hpp"

namespace tenantd::cli {

struct migrate_options {
  std::vector<std::string> tenants;
  unsigned jobs{0};
};

int run_migrate(const app::config& cfg, const migrate_options& options);

}  // namespace tenantd::cli

// Runs `tenantd <args...>` (migrate, tenants ...) as a child process with the environment an
// e2e_server gives its server (same master database, prefix, secrets), and captures its
// output, so CLI tests act on the same tenants as the running server.
#pragma once
#include "support/e2e_server.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace tenantd::test {

struct cli_result {
  int exit_code{-1};   // 128 + signal if killed
  std::string output;  // stdout and stderr together
};

// Blocks until the command ends (120 s deadline, then SIGKILL and a failed result).
cli_result run_cli(const e2e_server& server, const std::vector<std::string>& args, const env_overrides& extra = {});

// A temporary tenant migrations directory (for `migrate --migrations-dir`): the built-in
// V001 plus one more migration the test writes; removed with the object.
struct tenant_migrations_dir {
  tenant_migrations_dir(const std::string& v002_file_name, const std::string& v002_sql);
  ~tenant_migrations_dir();
  tenant_migrations_dir(const tenant_migrations_dir&) = delete;
  tenant_migrations_dir& operator=(const tenant_migrations_dir&) = delete;

  std::filesystem::path path;
};

}  // namespace tenantd::test

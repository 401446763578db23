// Runs `tenantd <args...>` (migrate, tenants ...) as a child process with the environment an
// e2e_server gives its server (same master database, prefix, secrets), and captures its
// output, so CLI tests act on the same tenants as the running server.
#pragma once
#include "support/e2e_server.hpp"

#include <string>
#include <vector>

namespace tenantd::test {

struct cli_result {
  int exit_code{-1};   // 128 + signal if killed
  std::string output;  // stdout and stderr together
};

// Blocks until the command ends (120 s deadline, then SIGKILL and a failed result).
cli_result run_cli(const e2e_server& server, const std::vector<std::string>& args, const env_overrides& extra = {});

}  // namespace tenantd::test

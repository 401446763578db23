// Command-line entry: subcommands serve (default), migrate, version.
#pragma once

namespace tenantd::cli {

int run(int argc, char** argv);

}  // namespace tenantd::cli

// tenantd entry point: argv -> subcommand.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return tenantd::cli::run(argc, argv); }

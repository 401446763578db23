// The serve command: wires configuration into a running server (app/components.hpp builds
// the parts, app/background_tasks.hpp runs what is not HTTP) and handles SIGINT/SIGTERM
// (drain, then exit; a second signal exits at once).
#pragma once

#include "app/config.hpp"

namespace tenantd::app {

// Runs the server until a signal stops it; returns the process exit code.
int serve(const config& cfg);

}  // namespace tenantd::app

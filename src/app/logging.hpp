// Logging set-up (spdlog): text or JSON lines on stdout, UTC times, CR/LF in messages escaped
// so a value can never forge a log line. Never log passwords, tokens or secrets.
#pragma once
#include <string>

#include "api/dispatcher.hpp"

namespace tenantd::app {

// format: "text" | "json"; level: trace, debug, info, warn, error, off.
void setup_logging(const std::string& format, const std::string& level);
// One access line per request.
void log_access(const api::access_entry& entry);

}  // namespace tenantd::app

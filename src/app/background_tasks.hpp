// The serving process's coroutines besides the HTTP server, all started at once on its
// io_context: master preparation (migrations, grants, role table, template, reconcile;
// retried until master answers), the invalidation listener, the tenant pool sweeper, the
// memory trimmer, the reconciler of interrupted creations, the purge of expired sessions and
// the usage task (flushes per-tenant usage to master, samples connections and database sizes).
// Each ends once `stopping` is set (the listener once stopped); a failure is logged.
#pragma once
#include <boost/asio/awaitable.hpp>

namespace tenantd::app {

class components;

void start_background_tasks(components& c);

// Adds this process's unflushed usage counts to master now (nothing with USAGE_ENABLED=off).
// If master cannot take them they are kept for the next flush; failures are logged, never
// thrown. The usage task calls it every USAGE_FLUSH_INTERVAL_S; a drain should call it once
// after the last request and before the pools shut down.
boost::asio::awaitable<void> flush_usage(components& c);

}  // namespace tenantd::app

// The serving process's coroutines besides the HTTP server, all started at once on its
// io_context: master preparation (migrations, grants, role table, template, reconcile;
// retried until master answers), the invalidation listener, the tenant pool sweeper, the
// memory trimmer, the reconciler of interrupted creations and the purge of expired sessions.
// Each ends once `stopping` is set (the listener once stopped); a failure is logged.
#pragma once

namespace tenantd::app {

class components;

void start_background_tasks(components& c);

}  // namespace tenantd::app

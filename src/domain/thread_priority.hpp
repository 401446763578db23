// Background threads (password hashing, the connect steps of new database connections) run
// at a lower priority than the I/O threads: under load, requests that need neither keep their
// latency, and the background work takes the CPU they leave.
#pragma once

namespace tenantd {

// Lowers the calling thread's priority once (nice +5 on Linux, per thread; later calls on the
// same thread do nothing). An unprivileged process may lower its own priority; failures are
// ignored (the thread then runs at the normal priority).
void lower_this_threads_priority() noexcept;

}  // namespace tenantd

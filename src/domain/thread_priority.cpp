// Lowering a thread's scheduling priority: setpriority() on the thread id, which Linux applies
// to that thread alone.
#include "domain/thread_priority.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace tenantd {

void lower_this_threads_priority() noexcept {
  thread_local const bool lowered = [] {
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    if (errno == 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), std::min(current + 5, 19));
    return true;
  }();
  (void)lowered;
}

}  // namespace tenantd

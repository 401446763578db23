// The calling thread's I/O thread number.
#include "domain/io_thread.hpp"

namespace tenantd::io_thread {
namespace {
thread_local std::size_t current = 0;
}  // namespace

void set_index(std::size_t index) noexcept { current = index; }
std::size_t index() noexcept { return current; }

}  // namespace tenantd::io_thread

#include "domain/lane.hpp"

namespace tenantd {
namespace {
thread_local std::size_t current_lane = no_lane;
}  // namespace

std::size_t this_threads_lane() noexcept { return current_lane; }

void set_this_threads_lane(std::size_t lane) noexcept { current_lane = lane; }

}  // namespace tenantd

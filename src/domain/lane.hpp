// An I/O lane: one io_context run by exactly one thread (app::serve makes one per I/O thread).
// A session, its handler and the pipelined tenant connection it uses all run on the lane the
// session was accepted onto, so a request wakes no other thread. Code that keeps one object
// per lane (db::pool's pipelined connections) asks which lane the calling thread runs.
#pragma once
#include <cstddef>
#include <limits>

namespace tenantd {

inline constexpr std::size_t no_lane = std::numeric_limits<std::size_t>::max();

// The lane the calling thread runs, or no_lane (a thread that is not a lane's: the handshake
// and hashing threads, tests' own threads).
std::size_t this_threads_lane() noexcept;
// Called once by a lane's thread before it runs its io_context.
void set_this_threads_lane(std::size_t lane) noexcept;

}  // namespace tenantd

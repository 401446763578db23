// Which I/O thread the caller runs on. serve() runs one io_context per thread and numbers its
// threads 0..n-1; every other thread (tests, password hashing, background workers) is 0.
// Per-thread shards (tenant pools, caches on the request path) are chosen by this number, so
// a request only touches the shard of the thread it runs on.
#pragma once
#include <cstddef>

namespace tenantd::io_thread {

// Numbers the calling thread; called once by each I/O thread before it runs its io_context.
void set_index(std::size_t index) noexcept;
// The calling thread's number (0 unless set_index was called on it).
std::size_t index() noexcept;
// index() folded onto `shards` shards (shards > 0): a thread numbered beyond them (a test
// with fewer shards than threads) shares the last ones instead of reading out of range.
inline std::size_t shard(std::size_t shards) noexcept { return index() % shards; }

}  // namespace tenantd::io_thread

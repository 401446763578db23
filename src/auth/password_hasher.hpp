// Argon2id password hashing (libsodium crypto_pwhash_str, PHC strings) on a bounded
// worker pool, so I/O threads never run a hash. The queue is shared fairly between clients:
// each has its own sub-queue, served round robin, with a cap on its jobs; when the queue or
// the caller's share is full, calls throw hasher_busy.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

namespace tenantd::auth {

struct argon2_params {
  unsigned long long opslimit{2};             // t
  std::size_t memlimit{19U * 1024U * 1024U};  // m in bytes (19 MiB)
};

// Thrown when the worker queue is full (maps to 503 with Retry-After).
class hasher_busy : public std::runtime_error {
 public:
  hasher_busy() : std::runtime_error("password hasher queue is full") {}
};

class password_hasher {
 public:
  // threads: worker threads (0 = hardware concurrency); max_queue: hashes waiting or running;
  // max_queue_per_client: hashes of one client waiting or running (0 = default_share).
  // Computes the dummy hash, so it costs one hash. Throws std::invalid_argument if max_queue
  // is 0, std::runtime_error if libsodium rejects the parameters. The destructor joins the pool.
  password_hasher(argon2_params params, std::size_t threads, std::size_t max_queue,
                  std::size_t max_queue_per_client = 0);
  // One client's share of a queue of max_queue: a quarter, at least 1.
  static constexpr std::size_t default_share(std::size_t max_queue) noexcept {
    return max_queue / 4 > 0 ? max_queue / 4 : 1;
  }
  ~password_hasher();
  password_hasher(const password_hasher&) = delete;
  password_hasher& operator=(const password_hasher&) = delete;

  // Calls `observer` on the hashing thread with the job's client as each job starts, in the
  // order the fair queue serves them (for tests and tracing). Set it before the first job.
  void on_job_start(std::function<void(const std::string& client)> observer);

  // `client` (every call below) names the caller's client for the fair queue (see
  // auth/client_key.hpp); empty: callers that name none, which share one sub-queue without
  // a per-client cap.
  // Returns a "$argon2id$v=19$m=...,t=...,p=1$..." string. Throws hasher_busy.
  boost::asio::awaitable<std::string> hash(std::string password, std::string client = {});
  // True if the password matches. A malformed stored hash is false, not an exception.
  // Throws hasher_busy.
  boost::asio::awaitable<bool> verify(std::string stored_hash, std::string password, std::string client = {});
  // Spends the same time as verify() against a fixed dummy hash; always false.
  // Used for unknown accounts so they cost what a wrong password costs.
  boost::asio::awaitable<bool> verify_dummy(std::string password, std::string client = {});
  // True if the stored hash uses other parameters than the current ones.
  bool needs_rehash(const std::string& stored_hash) const;

  std::size_t queue_depth() const noexcept;
  const argon2_params& params() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tenantd::auth

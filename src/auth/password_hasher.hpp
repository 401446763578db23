// Argon2id password hashing (libsodium crypto_pwhash_str, PHC strings) on a bounded
// worker pool, so I/O threads never run a hash. When the queue is full, calls throw busy.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstddef>
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
  // threads: worker threads (0 = hardware concurrency); max_queue: hashes waiting or running.
  // Computes the dummy hash, so it costs one hash. Throws std::invalid_argument if max_queue
  // is 0, std::runtime_error if libsodium rejects the parameters. The destructor joins the pool.
  password_hasher(argon2_params params, std::size_t threads, std::size_t max_queue);
  ~password_hasher();
  password_hasher(const password_hasher&) = delete;
  password_hasher& operator=(const password_hasher&) = delete;

  // Returns a "$argon2id$v=19$m=...,t=...,p=1$..." string. Throws hasher_busy.
  boost::asio::awaitable<std::string> hash(std::string password);
  // True if the password matches. A malformed stored hash is false, not an exception.
  // Throws hasher_busy.
  boost::asio::awaitable<bool> verify(std::string stored_hash, std::string password);
  // Spends the same time as verify() against a fixed dummy hash; always false.
  // Used for unknown accounts so they cost what a wrong password costs.
  boost::asio::awaitable<bool> verify_dummy(std::string password);
  // True if the stored hash uses other parameters than the current ones.
  bool needs_rehash(const std::string& stored_hash) const;

  std::size_t queue_depth() const noexcept;
  const argon2_params& params() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tenantd::auth

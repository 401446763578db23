// Argon2id hashing on a private thread pool. Each call reserves a slot (or throws hasher_busy),
// runs libsodium on the pool and resumes the awaiting coroutine on that coroutine's own executor.
#include "auth/password_hasher.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sodium.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <exception>
#include <memory>
#include <thread>
#include <utility>

namespace tenantd::auth {

namespace net = boost::asio;

struct password_hasher::impl {
  impl(argon2_params p, std::size_t threads, std::size_t queue_limit)
      : params(p), max_queue(queue_limit), pool(threads) {}

  argon2_params params;
  std::size_t max_queue;
  std::atomic<std::size_t> depth{0};
  net::thread_pool pool;
  std::string dummy_hash;
};

namespace {

constexpr std::string_view argon2id_prefix = "$argon2id$";

// A reserved place in the queue, given back when the job is done (or never started).
class queue_slot {
 public:
  explicit queue_slot(std::atomic<std::size_t>& depth) : depth_(&depth) {}
  queue_slot(queue_slot&& other) noexcept : depth_(std::exchange(other.depth_, nullptr)) {}
  queue_slot& operator=(queue_slot&&) = delete;
  ~queue_slot() { release(); }
  void release() noexcept {
    if (depth_ != nullptr) std::exchange(depth_, nullptr)->fetch_sub(1);
  }

 private:
  std::atomic<std::size_t>* depth_;
};

queue_slot reserve_slot(std::atomic<std::size_t>& depth, std::size_t max_queue) {
  std::size_t current = depth.load();
  do {
    if (current >= max_queue) throw hasher_busy();
  } while (!depth.compare_exchange_weak(current, current + 1));
  return queue_slot(depth);
}

std::string compute_hash(std::string_view password, const argon2_params& params) {
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), params.opslimit, params.memlimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("argon2id hashing failed (out of memory or bad parameters)");
  return std::string(out.data());
}

bool verify_hash(const std::string& stored_hash, std::string_view password) {
  if (stored_hash.find('\0') != std::string::npos || stored_hash.size() >= crypto_pwhash_STRBYTES) return false;
  return crypto_pwhash_str_verify(stored_hash.c_str(), password.data(), password.size()) == 0;
}

void wipe(std::string& secret) noexcept { sodium_memzero(secret.data(), secret.size()); }

// Runs job() on the pool; the awaiting coroutine resumes on its own executor with the result
// or the job's exception. The completion is posted (never run inline on a pool thread) and
// runs only once the pool thread has dropped its copy of the caller's executor: until then the
// work guard inside the completion keeps the caller's io_context running, so it cannot be
// destroyed while a pool thread still holds, e.g., one of its strands.
// The completion posted back to the caller. Until the pool thread has left post() and
// dropped its executor copy (handed_off), it re-posts itself instead of running: an I/O
// thread never blocks waiting for a pool thread that the scheduler has not run yet.
template <class Handler, class R, class WorkGuard>
struct hand_back {
  Handler handler;
  std::exception_ptr failure;
  R value;
  WorkGuard work;
  std::shared_ptr<std::atomic<bool>> handed_off;

  void operator()() {
    if (!handed_off->load(std::memory_order_acquire)) {
      const auto caller = work.get_executor();
      net::post(caller, std::move(*this));
      return;
    }
    std::move(handler)(failure, std::move(value));
  }
};

// Hashing threads run at a lower priority (nice +5 on Linux, per thread) than the I/O
// threads: during a login storm requests that need no hashing keep their latency, and
// hashing takes the CPU they leave. An unprivileged process may lower its own priority.
void lower_this_threads_priority() noexcept {
  thread_local const bool lowered = [] {
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    if (errno == 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), std::min(current + 5, 19));
    return true;
  }();
  (void)lowered;
}

template <class R, class Job>
net::awaitable<R> run_on_pool(net::thread_pool& pool, std::atomic<std::size_t>& depth, std::size_t max_queue, Job job) {
  queue_slot slot = reserve_slot(depth, max_queue);
  auto initiate = [&pool, &job, &slot](auto handler) {
    auto work = net::make_work_guard(net::get_associated_executor(handler));
    net::post(pool, [job = std::move(job), slot = std::move(slot), handler = std::move(handler),
                     work = std::move(work)]() mutable {
      lower_this_threads_priority();
      std::exception_ptr failure;
      R value{};
      try {
        value = job();
      } catch (...) {
        failure = std::current_exception();
      }
      slot.release();
      auto handed_off = std::make_shared<std::atomic<bool>>(false);
      {
        const auto caller = work.get_executor();
        net::post(caller, hand_back<decltype(handler), R, decltype(work)>{std::move(handler), failure, std::move(value),
                                                                          std::move(work), handed_off});
      }
      handed_off->store(true, std::memory_order_release);
    });
  };
  co_return co_await net::async_initiate<const net::use_awaitable_t<>, void(std::exception_ptr, R)>(std::move(initiate),
                                                                                                    net::use_awaitable);
}

}  // namespace

password_hasher::password_hasher(argon2_params params, std::size_t threads, std::size_t max_queue) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  if (max_queue == 0) throw std::invalid_argument("password hasher max_queue must be at least 1");
  const std::size_t workers = threads != 0 ? threads : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  impl_ = std::make_unique<impl>(params, workers, max_queue);
  std::array<unsigned char, 32> random_password{};
  randombytes_buf(random_password.data(), random_password.size());
  impl_->dummy_hash = compute_hash(
      std::string_view(reinterpret_cast<const char*>(random_password.data()), random_password.size()), params);
}

password_hasher::~password_hasher() { impl_->pool.join(); }

// These return run_on_pool's awaitable directly: no extra coroutine frame, and no lambda
// temporary inside a co_await expression (GCC 12 destroys such temporaries twice).
net::awaitable<std::string> password_hasher::hash(std::string password) {
  const impl* self = impl_.get();
  return run_on_pool<std::string>(impl_->pool, impl_->depth, impl_->max_queue,
                                  [self, password = std::move(password)]() mutable {
                                    std::string out = compute_hash(password, self->params);
                                    wipe(password);
                                    return out;
                                  });
}

net::awaitable<bool> password_hasher::verify(std::string stored_hash, std::string password) {
  return run_on_pool<bool>(impl_->pool, impl_->depth, impl_->max_queue,
                           [stored_hash = std::move(stored_hash), password = std::move(password)]() mutable {
                             const bool matches = verify_hash(stored_hash, password);
                             wipe(password);
                             return matches;
                           });
}

net::awaitable<bool> password_hasher::verify_dummy(std::string password) {
  const impl* self = impl_.get();
  return run_on_pool<bool>(impl_->pool, impl_->depth, impl_->max_queue,
                           [self, password = std::move(password)]() mutable {
                             verify_hash(self->dummy_hash, password);
                             wipe(password);
                             return false;
                           });
}

bool password_hasher::needs_rehash(const std::string& stored_hash) const {
  if (!stored_hash.starts_with(argon2id_prefix) || stored_hash.find('\0') != std::string::npos) return true;
  return crypto_pwhash_str_needs_rehash(stored_hash.c_str(), impl_->params.opslimit, impl_->params.memlimit) != 0;
}

std::size_t password_hasher::queue_depth() const noexcept { return impl_->depth.load(); }

const argon2_params& password_hasher::params() const noexcept { return impl_->params; }

}  // namespace tenantd::auth

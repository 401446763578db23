// Argon2id hashing on a private thread pool. Each call reserves a slot (or throws hasher_busy),
// waits in its client's queue, runs libsodium on the pool when its client's turn comes (round
// robin over clients) and resumes the awaiting coroutine on that coroutine's own executor.
#include "auth/password_hasher.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "domain/thread_priority.hpp"

namespace tenantd::auth {

namespace net = boost::asio;

namespace {

// A queued hash: the pool's next free thread runs the job of the next client in turn.
struct queued_job {
  virtual ~queued_job() = default;
  virtual void run() = 0;
};

template <class F>
struct job_of final : queued_job {
  explicit job_of(F f) : fn(std::move(f)) {}
  void run() override { fn(); }
  F fn;
};

// Jobs of one client waiting for a thread, and how many of its jobs are waiting or running.
struct client_queue {
  std::deque<std::unique_ptr<queued_job>> waiting;
  std::size_t in_use{0};
};

// The pool's queue, shared fairly: a bound on jobs waiting or running, a smaller bound per
// client, and clients served in turn (one job each per round). Clients are opaque keys; the
// empty key (callers that name none) is one client without a per-client bound.
class fair_queue {
 public:
  fair_queue(std::size_t threads, std::size_t queue_limit, std::size_t client_limit)
      : max_queue(queue_limit), max_per_client(client_limit), pool(threads) {}

  // Takes a place for one job of `client`, or throws hasher_busy.
  void admit(const std::string& client) {
    std::lock_guard lock(mutex);
    if (depth.load() >= max_queue) throw hasher_busy();
    auto& q = clients[client];
    if (!client.empty() && q.in_use >= max_per_client) {
      if (q.in_use == 0 && q.waiting.empty()) clients.erase(client);
      throw hasher_busy();
    }
    ++q.in_use;
    depth.fetch_add(1);
  }
  // Gives back the place of a job of `client` that ran (or never will).
  void release(const std::string& client) noexcept {
    std::lock_guard lock(mutex);
    depth.fetch_sub(1);
    auto it = clients.find(client);
    if (it == clients.end()) return;
    if (it->second.in_use > 0) --it->second.in_use;
    if (it->second.in_use == 0 && it->second.waiting.empty()) clients.erase(it);
  }
  // Queues an admitted job behind the client's earlier ones; one pool task per job.
  void enqueue(const std::string& client, std::unique_ptr<queued_job> job) {
    {
      std::lock_guard lock(mutex);
      auto& q = clients[client];
      if (q.waiting.empty()) turns.push_back(client);
      q.waiting.push_back(std::move(job));
    }
    net::post(pool, [this] { run_next(); });
  }
  // On a pool thread: runs the first waiting job of the client whose turn it is (round robin).
  void run_next() {
    std::unique_ptr<queued_job> job;
    std::string client;
    {
      std::lock_guard lock(mutex);
      if (turns.empty()) return;
      client = std::move(turns.front());
      turns.pop_front();
      auto& q = clients[client];
      job = std::move(q.waiting.front());
      q.waiting.pop_front();
      if (!q.waiting.empty()) turns.push_back(client);
    }
    if (on_job_start) on_job_start(client);
    job->run();
  }

  std::size_t max_queue;
  std::size_t max_per_client;
  std::atomic<std::size_t> depth{0};  // jobs waiting or running
  std::mutex mutex;
  std::unordered_map<std::string, client_queue> clients;
  std::deque<std::string> turns;                         // clients with waiting jobs, in the order they are served
  std::function<void(const std::string&)> on_job_start;  // set before the first job
  net::thread_pool pool;
};

}  // namespace

struct password_hasher::impl {
  impl(argon2_params p, std::size_t threads, std::size_t queue_limit, std::size_t client_limit)
      : params(p), queue(threads, queue_limit, client_limit) {}
  argon2_params params;
  fair_queue queue;
  std::string dummy_hash;
};

namespace {

constexpr std::string_view argon2id_prefix = "$argon2id$";

// A job's place in the queue, given back when the job is done (or never started).
class queue_slot {
 public:
  queue_slot(fair_queue& owner, std::string client) : owner_(&owner), client_(std::move(client)) {
    owner_->admit(client_);
  }
  queue_slot(queue_slot&& other) noexcept
      : owner_(std::exchange(other.owner_, nullptr)), client_(std::move(other.client_)) {}
  queue_slot& operator=(queue_slot&&) = delete;
  ~queue_slot() { release(); }
  void release() noexcept {
    if (owner_ != nullptr) std::exchange(owner_, nullptr)->release(client_);
  }
  const std::string& client() const noexcept { return client_; }

 private:
  fair_queue* owner_;
  std::string client_;
};

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

template <class R, class Job>
net::awaitable<R> run_on_pool(fair_queue& owner, std::string client, Job job) {
  queue_slot slot(owner, std::move(client));  // throws hasher_busy
  auto initiate = [&owner, &job, &slot](auto handler) {
    auto work = net::make_work_guard(net::get_associated_executor(handler));
    const std::string queued_for = slot.client();
    auto task = [job = std::move(job), slot = std::move(slot), handler = std::move(handler),
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
    };
    owner.enqueue(queued_for, std::make_unique<job_of<decltype(task)>>(std::move(task)));
  };
  co_return co_await net::async_initiate<const net::use_awaitable_t<>, void(std::exception_ptr, R)>(std::move(initiate),
                                                                                                    net::use_awaitable);
}

}  // namespace

password_hasher::password_hasher(argon2_params params, std::size_t threads, std::size_t max_queue,
                                 std::size_t max_queue_per_client) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  if (max_queue == 0) throw std::invalid_argument("password hasher max_queue must be at least 1");
  const std::size_t workers = threads != 0 ? threads : std::max<std::size_t>(1, std::thread::hardware_concurrency());
  const std::size_t per_client = max_queue_per_client != 0 ? max_queue_per_client : default_share(max_queue);
  impl_ = std::make_unique<impl>(params, workers, max_queue, per_client);
  std::array<unsigned char, 32> random_password{};
  randombytes_buf(random_password.data(), random_password.size());
  impl_->dummy_hash = compute_hash(
      std::string_view(reinterpret_cast<const char*>(random_password.data()), random_password.size()), params);
}

password_hasher::~password_hasher() { impl_->queue.pool.join(); }

void password_hasher::on_job_start(std::function<void(const std::string& client)> observer) {
  impl_->queue.on_job_start = std::move(observer);
}

// These return run_on_pool's awaitable directly: no extra coroutine frame, and no lambda
// temporary inside a co_await expression (GCC 12 destroys such temporaries twice).
net::awaitable<std::string> password_hasher::hash(std::string password, std::string client) {
  const impl* self = impl_.get();
  return run_on_pool<std::string>(impl_->queue, std::move(client), [self, password = std::move(password)]() mutable {
    std::string out = compute_hash(password, self->params);
    wipe(password);
    return out;
  });
}

net::awaitable<bool> password_hasher::verify(std::string stored_hash, std::string password, std::string client) {
  return run_on_pool<bool>(impl_->queue, std::move(client),
                           [stored_hash = std::move(stored_hash), password = std::move(password)]() mutable {
                             const bool matches = verify_hash(stored_hash, password);
                             wipe(password);
                             return matches;
                           });
}

net::awaitable<bool> password_hasher::verify_dummy(std::string password, std::string client) {
  const impl* self = impl_.get();
  return run_on_pool<bool>(impl_->queue, std::move(client), [self, password = std::move(password)]() mutable {
    verify_hash(self->dummy_hash, password);
    wipe(password);
    return false;
  });
}

bool password_hasher::needs_rehash(const std::string& stored_hash) const {
  if (!stored_hash.starts_with(argon2id_prefix) || stored_hash.find('\0') != std::string::npos) return true;
  return crypto_pwhash_str_needs_rehash(stored_hash.c_str(), impl_->params.opslimit, impl_->params.memlimit) != 0;
}

std::size_t password_hasher::queue_depth() const noexcept { return impl_->queue.depth.load(); }

const argon2_params& password_hasher::params() const noexcept { return impl_->params; }

}  // namespace tenantd::auth

// Client side of the fault tests: requests that never fail the test by themselves but record
// what happened (a response, a dropped connection, a timeout) and how long it took, and
// background loops that keep sending them while a test breaks PostgreSQL.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/e2e_http_client.hpp"

namespace tenantd::test {

struct timed_outcome {
  enum class kind { response, dropped, timeout, refused };
  kind what{kind::refused};
  http_response response;  // when what == response
  std::chrono::milliseconds took{0};
  std::chrono::steady_clock::time_point started;
  std::string method;
  std::string target;
  std::string request_text;

  bool ok() const noexcept { return what == kind::response && response.status >= 200 && response.status < 300; }
  unsigned status() const noexcept { return what == kind::response ? response.status : 0; }
  // "201", "dropped", "timeout" or "refused", plus the body for a response.
  std::string describe() const;
};

// Sends one request with `Connection: close` and reads the response within `timeout`.
// `body` set: a JSON POST/PUT. Never records a test failure.
timed_outcome timed_request(std::uint16_t port, std::string_view method, std::string_view target,
                            std::string_view token = {}, std::optional<std::string> body = std::nullopt,
                            std::chrono::milliseconds timeout = std::chrono::seconds(20));

// Problems with an outcome the fault contract forbids, or "" when it is acceptable:
// a 2xx, a definite 4xx in `allowed_4xx`, or 503 as problem+json with Retry-After, no internal
// text, request_id == X-Request-Id; never a 500, a dropped connection or a timeout, and never
// slower than `deadline`.
std::string contract_violation(const timed_outcome& o, std::chrono::milliseconds deadline,
                               const std::vector<unsigned>& allowed_4xx = {});

// Background loops: each of `threads` threads calls `step(thread_index, iteration)` until stop().
// The outcomes are kept (thread-safe) for the test to inspect.
class load_loop {
 public:
  using step_fn = std::function<timed_outcome(unsigned thread, std::uint64_t iteration)>;
  load_loop(unsigned threads, step_fn step);
  ~load_loop();
  load_loop(const load_loop&) = delete;
  load_loop& operator=(const load_loop&) = delete;

  void stop();
  // Everything recorded so far (a copy), and how many there are.
  std::vector<timed_outcome> outcomes() const;
  std::size_t count() const;

 private:
  step_fn step_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<timed_outcome> outcomes_;
  std::vector<std::thread> threads_;
};

// Polls `probe` every 50 ms until it returns true or `timeout` passes; the time it took, or
// nullopt on timeout.
std::optional<std::chrono::milliseconds> poll_until(const std::function<bool()>& probe,
                                                    std::chrono::milliseconds timeout);

}  // namespace tenantd::test

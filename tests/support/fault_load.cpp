// Recorded requests and background load for the fault tests.
#include "support/fault_load.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <stdexcept>

namespace tenantd::test {
namespace {
using clock_type = std::chrono::steady_clock;
}

std::string timed_outcome::describe() const {
  std::string out = method + " " + target + " after " + std::to_string(took.count()) + " ms: ";
  switch (what) {
    case kind::response: return out + response.describe();
    case kind::dropped: return out + "connection closed without a response";
    case kind::timeout: return out + "no response before the client timeout";
    case kind::refused: return out + "connection refused";
  }
  return out;
}

timed_outcome timed_request(std::uint16_t port, std::string_view method, std::string_view target,
                            std::string_view token, std::optional<std::string> body,
                            std::chrono::milliseconds timeout) {
  timed_outcome o;
  o.method = std::string(method);
  o.target = std::string(target);
  std::string& text = o.request_text;
  text.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  text += "Host: 127.0.0.1:" + std::to_string(port) + "\r\nConnection: close\r\n";
  if (!token.empty()) text += "Authorization: Bearer " + std::string(token) + "\r\n";
  if (body) text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body->size()) + "\r\n";
  text += "\r\n";
  if (body) text += *body;

  o.started = clock_type::now();
  try {
    const http_client client(port);
    const auto exchange = client.exchange_raw(text, timeout);
    if (auto parsed = exchange.first_response()) {
      o.what = timed_outcome::kind::response;
      o.response = std::move(*parsed);
    } else {
      o.what = exchange.closed ? timed_outcome::kind::dropped : timed_outcome::kind::timeout;
    }
  } catch (const std::exception&) {
    o.what = timed_outcome::kind::refused;
  }
  o.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - o.started);
  return o;
}

std::string contract_violation(const timed_outcome& o, std::chrono::milliseconds deadline,
                               const std::vector<unsigned>& allowed_4xx) {
  if (o.what != timed_outcome::kind::response) return "no response: " + o.describe();
  if (o.took > deadline) return "slower than the " + std::to_string(deadline.count()) + " ms deadline: " + o.describe();
  const unsigned status = o.response.status;
  if (status >= 200 && status < 300) return {};
  if (status >= 400 && status < 500 && std::find(allowed_4xx.begin(), allowed_4xx.end(), status) != allowed_4xx.end())
    return {};
  if (status != 503) return "neither 2xx nor 503: " + o.describe();
  if (!o.response.has_header("retry-after")) return "503 without Retry-After: " + o.describe();
  const bool probe = o.target.starts_with("/readyz");  // readiness answers plain JSON, not a problem
  if (!probe && !o.response.header_or_empty("content-type").starts_with("application/problem+json"))
    return "503 that is not problem+json: " + o.describe();
  boost::system::error_code ec;
  const auto v = boost::json::parse(o.response.body, ec);
  if (ec || !v.is_object()) return "503 whose body is not a JSON object: " + o.describe();
  if (!probe) {
    const auto* code = v.as_object().if_contains("code");
    if (code == nullptr || !code->is_string() || code->as_string() != "unavailable")
      return "503 whose code is not \"unavailable\": " + o.describe();
  }
  return {};
}

load_loop::load_loop(unsigned threads, step_fn step) : step_(std::move(step)) {
  for (unsigned t = 0; t < threads; ++t) {
    threads_.emplace_back([this, t] {
      for (std::uint64_t i = 0; !stopping_; ++i) {
        auto outcome = step_(t, i);
        std::lock_guard lock(mutex_);
        outcomes_.push_back(std::move(outcome));
      }
    });
  }
}

load_loop::~load_loop() { stop(); }

void load_loop::stop() {
  stopping_ = true;
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

std::vector<timed_outcome> load_loop::outcomes() const {
  std::lock_guard lock(mutex_);
  return outcomes_;
}

std::size_t load_loop::count() const {
  std::lock_guard lock(mutex_);
  return outcomes_.size();
}

std::optional<std::chrono::milliseconds> poll_until(const std::function<bool()>& probe,
                                                    std::chrono::milliseconds timeout) {
  const auto started = clock_type::now();
  for (;;) {
    if (probe()) return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
    if (clock_type::now() - started >= timeout) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling with a deadline
  }
}

}  // namespace tenantd::test

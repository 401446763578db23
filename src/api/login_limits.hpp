// The limits on every route that checks an account's password: login, registering an
// existing email, and POST /tenants with an existing email as owner. A password check is an
// attempt reserved before hashing: attempts still in flight count against the failure limits,
// so N concurrent guesses never get more than the limit's worth of password checks. The
// per-account failure limit is kept in the master database (every process shares it); the
// per-client failure limit and the success limits are per process.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "api/context.hpp"

namespace tenantd::api {

// What a password check came to.
enum class attempt_outcome {
  succeeded,  // right password, signed in: counts against the success limits (login only)
  failed,     // wrong password: a counted failure for the account and the client
  other,      // neither (right password but no sign-in, or no check at all): forgotten
};

// Which limits an attempt takes part in.
enum class attempt_kind {
  login,           // failures and successes
  password_proof,  // failures only (register or create a tenant with an existing email)
};

// One reserved password check. Movable; settle it with finish(); one that is destroyed
// unfinished (an exception) is released as attempt_outcome::other, its master row in the
// background.
class password_attempt {
 public:
  // Reserves the attempt for `account_key` (the normalized email) and the caller's client.
  // Throws db errors (-> 503).
  static boost::asio::awaitable<password_attempt> begin(const context& ctx, const std::string& account_key,
                                                        attempt_kind kind);

  password_attempt(password_attempt&& other) noexcept;
  password_attempt& operator=(password_attempt&&) = delete;
  ~password_attempt();

  // The 429 to answer instead of checking the password (too_many_attempts or
  // too_many_requests, with Retry-After); nullopt when the attempt was admitted.
  const std::optional<response>& refusal() const noexcept { return refusal_; }

  boost::asio::awaitable<void> finish(attempt_outcome outcome);

 private:
  password_attempt(const context& ctx, std::string account_key, attempt_kind kind);
  void settle_local(attempt_outcome outcome) noexcept;

  services* svc_;
  std::string account_key_;
  std::string client_key_;
  attempt_kind kind_;
  boost::asio::any_io_executor executor_;
  std::optional<std::int64_t> master_attempt_;  // the row in login_attempts
  bool client_failure_reserved_{false};
  bool account_success_reserved_{false};
  bool client_success_reserved_{false};
  bool finished_{true};
  std::optional<response> refusal_;
  std::string request_id_;
};

// 429 too_many_attempts with Retry-After.
response too_many_attempts(const std::string& request_id, std::int64_t retry_after);

}  // namespace tenantd::api

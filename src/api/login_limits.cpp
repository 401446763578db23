// Password-check reservations against the login limits.
#include "api/login_limits.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/problem.hpp"
#include "auth/client_key.hpp"
#include "identity/accounts.hpp"

namespace tenantd::api {
namespace net = boost::asio;

namespace {

response too_many(errc code, const char* detail, const std::string& request_id, std::int64_t retry_after) {
  auto res = problem(make_error(code, detail), request_id);
  res.set_header("Retry-After", std::to_string(retry_after));
  return res;
}

// Settles a master attempt row; failures are logged (the row then lapses after its lease).
net::awaitable<void> settle_master(std::shared_ptr<db::pool> master, std::int64_t id, bool failed) {
  try {
    auto conn = co_await master->acquire();
    if (failed)
      co_await db::login_attempts::record_failure(*conn, id);
    else
      co_await db::login_attempts::release(*conn, id);
  } catch (const std::exception& e) {
    spdlog::warn("login attempt {} could not be settled: {}", id, e.what());
  }
}

}  // namespace

response too_many_attempts(const std::string& request_id, std::int64_t retry_after) {
  return too_many(errc::too_many_attempts, "too many failed attempts; retry later", request_id, retry_after);
}

password_attempt::password_attempt(const context& ctx, std::string account_key, attempt_kind kind)
    : svc_(&ctx.svc),
      account_key_(std::move(account_key)),
      client_key_(auth::client_key(ctx.client_address)),
      kind_(kind),
      request_id_(ctx.request_id) {}

password_attempt::password_attempt(password_attempt&& other) noexcept
    : svc_(other.svc_),
      account_key_(std::move(other.account_key_)),
      client_key_(std::move(other.client_key_)),
      kind_(other.kind_),
      executor_(std::move(other.executor_)),
      master_attempt_(std::exchange(other.master_attempt_, std::nullopt)),
      client_failure_reserved_(std::exchange(other.client_failure_reserved_, false)),
      account_success_reserved_(std::exchange(other.account_success_reserved_, false)),
      client_success_reserved_(std::exchange(other.client_success_reserved_, false)),
      finished_(std::exchange(other.finished_, true)),
      refusal_(std::move(other.refusal_)),
      request_id_(std::move(other.request_id_)) {}

password_attempt::~password_attempt() {
  if (finished_) return;
  settle_local(attempt_outcome::other);
  if (master_attempt_ && svc_->master)
    net::co_spawn(executor_, settle_master(svc_->master, *master_attempt_, false), net::detached);
}

net::awaitable<password_attempt> password_attempt::begin(const context& ctx, const std::string& account_key,
                                                         attempt_kind kind) {
  password_attempt a(ctx, account_key, kind);
  a.executor_ = co_await net::this_coro::executor;
  a.finished_ = false;
  auto& svc = *a.svc_;
  const auto refuse = [&a](response res) {
    a.settle_local(attempt_outcome::other);
    a.refusal_ = std::move(res);
  };
  // Successful logins are limited per account and per client (per process).
  if (kind == attempt_kind::login) {
    if (auto* limiter = svc.login_successes_per_account) {
      if (auto wait = limiter->reserve(a.account_key_)) {
        refuse(
            too_many(errc::too_many_requests, "too many logins for this account; retry later", a.request_id_, *wait));
        co_return a;
      }
      a.account_success_reserved_ = true;
    }
    if (auto* limiter = svc.login_successes_per_client) {
      if (auto wait = limiter->reserve(a.client_key_)) {
        refuse(
            too_many(errc::too_many_requests, "too many logins from this client; retry later", a.request_id_, *wait));
        co_return a;
      }
      a.client_success_reserved_ = true;
    }
  }
  if (auto* limiter = svc.login_failures_per_client) {
    if (auto wait = limiter->reserve(a.client_key_)) {
      refuse(too_many_attempts(a.request_id_, *wait));
      co_return a;
    }
    a.client_failure_reserved_ = true;
  }
  if (svc.login_failures_per_account && svc.master) {
    db::login_attempts::reservation reserved;
    {
      const auto key = identity::sha256_hex(a.account_key_);  // the email itself is not stored
      auto conn = co_await svc.master->acquire();
      reserved = co_await db::login_attempts::reserve(*conn, key, *svc.login_failures_per_account);
    }
    if (!reserved.id) {
      refuse(too_many_attempts(a.request_id_, reserved.retry_after));
      co_return a;
    }
    a.master_attempt_ = reserved.id;
  }
  co_return a;
}

void password_attempt::settle_local(attempt_outcome outcome) noexcept {
  const bool failed = outcome == attempt_outcome::failed;
  const bool succeeded = outcome == attempt_outcome::succeeded;
  if (std::exchange(client_failure_reserved_, false)) svc_->login_failures_per_client->settle(client_key_, failed);
  if (std::exchange(account_success_reserved_, false))
    svc_->login_successes_per_account->settle(account_key_, succeeded);
  if (std::exchange(client_success_reserved_, false)) svc_->login_successes_per_client->settle(client_key_, succeeded);
}

net::awaitable<void> password_attempt::finish(attempt_outcome outcome) {
  if (std::exchange(finished_, true)) co_return;
  settle_local(outcome);
  if (auto id = std::exchange(master_attempt_, std::nullopt)) {
    auto conn = co_await svc_->master->acquire();
    if (outcome == attempt_outcome::failed)
      co_await db::login_attempts::record_failure(*conn, *id);
    else
      co_await db::login_attempts::release(*conn, *id);
  }
}

}  // namespace tenantd::api

// Error codes for failures caused by input or state. They are values (result<T>),
// mapped to HTTP in exactly one place (api/problem). Infrastructure failures throw instead.
#pragma once
#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tenantd {

enum class errc {
  invalid_input,           // 400: body or parameters fail validation (see error::fields)
  invalid_json,            // 400: body is not well-formed JSON (or duplicate keys, too deep)
  invalid_id,              // 400: a path id is not a UUID
  tenant_required,         // 400: no tenant given where one is needed
  unauthorized,            // 401: missing or invalid access token
  invalid_credentials,     // 401: unknown email or wrong password (indistinguishable)
  invalid_refresh_token,   // 401: refresh token unknown, used or expired
  forbidden,               // 403: authenticated, but the permission is missing
  tenant_suspended,        // 403: the tenant exists but is suspended
  registration_closed,     // 403: the tenant does not accept this registration
  signup_closed,           // 403: tenant creation needs the admin token
  not_found,               // 404: no such resource (in this tenant)
  tenant_not_found,        // 404: no active tenant with that id
  method_not_allowed,      // 405
  tenant_exists,           // 409: tenant id taken (or its database still exists)
  email_taken,             // 409: email already used (in this tenant / by another password)
  already_member,          // 409: account already belongs to the tenant
  last_owner,              // 409: the change would leave the tenant without an owner
  server_exists,           // 409: a database server with that name is registered already
  server_not_empty,        // 409: the database server still holds tenants
  server_unavailable,      // 409: the named database server is full or not active
  move_in_progress,        // 409: the tenant is being moved already
  move_unavailable,        // 409: a move cannot start (a setting or a server condition missing; the detail says which)
  payload_too_large,       // 413
  unsupported_media_type,  // 415
  too_many_requests,       // 429
  too_many_attempts,       // 429: login failures over the limit
  internal,                // 500: a bug; never caused by input
  unavailable,             // 503: database down, pool exhausted, server busy
  schema_too_new,          // 503: tenant schema is newer than this binary knows
};

// Stable machine-readable name, used as problem+json "code".
std::string_view to_string(errc code) noexcept;

struct field_error {
  std::string field;
  std::string message;
};

struct error {
  errc code{errc::internal};
  std::string detail;
  std::vector<field_error> fields;
};

inline error make_error(errc code, std::string detail = {}) { return error{code, std::move(detail), {}}; }

// result<T>: a value or an error. Deliberately small (std::expected is C++23).
template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  result(error e) : v_(std::move(e)) {}      // NOLINT(google-explicit-constructor)

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const error& err() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  error&& err() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, error> v_;
};

struct ok_t {};
using status = result<ok_t>;
inline status ok() { return ok_t{}; }

}  // namespace tenantd

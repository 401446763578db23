// Stable names for error codes.
#include "domain/error.hpp"

namespace tenantd {

std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::invalid_input: return "invalid_input";
    case errc::invalid_json: return "invalid_json";
    case errc::invalid_id: return "invalid_id";
    case errc::tenant_required: return "tenant_required";
    case errc::unauthorized: return "unauthorized";
    case errc::invalid_credentials: return "invalid_credentials";
    case errc::invalid_refresh_token: return "invalid_refresh_token";
    case errc::forbidden: return "forbidden";
    case errc::tenant_suspended: return "tenant_suspended";
    case errc::registration_closed: return "registration_closed";
    case errc::signup_closed: return "signup_closed";
    case errc::not_found: return "not_found";
    case errc::tenant_not_found: return "tenant_not_found";
    case errc::method_not_allowed: return "method_not_allowed";
    case errc::tenant_exists: return "tenant_exists";
    case errc::email_taken: return "email_taken";
    case errc::already_member: return "already_member";
    case errc::last_owner: return "last_owner";
    case errc::server_exists: return "server_exists";
    case errc::server_not_empty: return "server_not_empty";
    case errc::server_unavailable: return "server_unavailable";
    case errc::move_in_progress: return "move_in_progress";
    case errc::move_unavailable: return "move_unavailable";
    case errc::payload_too_large: return "payload_too_large";
    case errc::unsupported_media_type: return "unsupported_media_type";
    case errc::too_many_requests: return "too_many_requests";
    case errc::too_many_attempts: return "too_many_attempts";
    case errc::internal: return "internal";
    case errc::unavailable: return "unavailable";
    case errc::schema_too_new: return "schema_too_new";
  }
  return "internal";
}

}  // namespace tenantd

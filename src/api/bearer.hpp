// The one bearer-token extractor, for member access tokens and the admin token alike
// (RFC 6750 §2.1: `Authorization: Bearer <token>`).
#pragma once
#include <optional>
#include <string_view>

#include "api/message.hpp"

namespace tenantd::api {

// The token from exactly one Authorization header whose scheme is "Bearer" (any case),
// separated from it by one or more spaces; spaces after the token are ignored. nullopt when
// the header is missing or repeated, the scheme is another one, or the token is empty or has
// whitespace inside it.
std::optional<std::string_view> bearer_token(const request& req);

}  // namespace tenantd::api

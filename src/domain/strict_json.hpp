// JSON parsing that rejects what API.md forbids: syntax errors, duplicate object keys,
// nesting deeper than a limit, invalid UTF-8 and lone surrogates.
#pragma once
#include <boost/json/value.hpp>

#include <string>
#include <string_view>

#include "domain/error.hpp"

namespace tenantd {

// The detail of the error returned for a repeated object key (callers may tell it apart).
inline constexpr std::string_view duplicate_key_detail{"duplicate object key"};

// On failure the error is errc::invalid_json with a short, library-free detail.
// max_depth is capped at 256 (the parser recurses once per level).
result<boost::json::value> parse_strict_json(std::string_view text, std::size_t max_depth = 32);

}  // namespace tenantd

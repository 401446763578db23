// Pure framing rules for HTTP/1.1 requests (RFC 9112 §3.2, §6) and the response headers a
// handler may set. No Beast here: the session applies these after parsing the header.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tenantd::http {

struct framing_error {
  unsigned status;          // 400 for every framing fault
  std::string_view detail;  // client-safe text
};

// Checks a parsed request header: `version` as 10/11, `headers` with lower-cased names in
// arrival order. Rejects a version other than 1.0/1.1, Content-Length with Transfer-Encoding,
// a Transfer-Encoding other than exactly one "chunked" (any case; none at all in HTTP/1.0),
// several or non-decimal Content-Lengths, and a missing (HTTP/1.1) or repeated Host.
// A request that fails must be answered with `status` and its connection closed.
std::optional<framing_error> check_framing(unsigned version,
                                           const std::vector<std::pair<std::string, std::string>>& headers);

// True if the raw header section (request line through the CRLF of the last field line)
// continues a line with obs-fold (CRLF followed by SP or HTAB). Beast silently unfolds it;
// RFC 9112 §5.2 lets a server reject it, and we do, since proxies may split it differently.
bool has_obs_fold(std::string_view header_section) noexcept;

// True if a handler may put this header on a response: the name is an RFC 9110 token, the
// value holds no CR, LF or NUL, and the name is not one the session owns (Content-Length,
// Transfer-Encoding, Connection, Keep-Alive, Upgrade, Server, X-Content-Type-Options).
bool is_settable_response_header(std::string_view name, std::string_view value) noexcept;

}  // namespace tenantd::http

// The key under which per-client limits (login failures and successes, registrations,
// tenant creation, the password-hashing queue) count a client address.
#pragma once
#include <string>
#include <string_view>

namespace tenantd::auth {

// IPv4 (and IPv4-mapped IPv6) addresses as themselves; IPv6 addresses by their /64 network
// ("2001:db8:1:2::/64"), since one subscriber usually holds a whole /64. Text that is not an
// address is returned unchanged.
std::string client_key(std::string_view address);

}  // namespace tenantd::auth

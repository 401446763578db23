// The breached-password list (security catalogue S13): zxcvbn's 30,000 most common
// passwords from breaches, the entries of 8 characters or more, lower-cased. The list is
// generated at build time (cmake/generate_breached_passwords.py) and lives in read-only data.
#pragma once
#include <span>
#include <string_view>

namespace tenantd::validation {

// True when the password, lower-cased (ASCII letters only), is on the list. Binary search;
// no allocation.
bool is_breached_password(std::string_view password) noexcept;

// The whole list, sorted by byte (generated source).
std::span<const std::string_view> breached_password_list() noexcept;

}  // namespace tenantd::validation

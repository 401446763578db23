// Pure validation and normalisation rules for input fields (API.md "Conventions").
// No I/O; each rule has a unit test.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace tenantd::validation {

// Valid UTF-8 with no NUL character.
bool is_clean_utf8(std::string_view s) noexcept;
// Number of Unicode code points (assumes valid UTF-8).
std::size_t code_points(std::string_view s) noexcept;
// Trims ASCII and Unicode white space at both ends.
std::string trim(std::string_view s);

// Each returns an error message for the field, or nullopt when valid.
// Tenant id: ^[a-z][a-z0-9_]{2,39}$, not starting with "pg_", not a reserved name.
std::optional<std::string> check_tenant_id(std::string_view id);
// A database server's name: ^[a-z][a-z0-9_-]{0,39}$.
std::optional<std::string> check_server_name(std::string_view name);
// Email after trimming and lower-casing: syntactically valid, <= 254 chars.
std::optional<std::string> check_email(std::string_view normalized_email);
// Password: 8-256 code points (not trimmed), not on the breached-password list
// (breached_passwords.hpp, case-insensitive).
std::optional<std::string> check_password(std::string_view password);
// A trimmed name of min..max code points.
std::optional<std::string> check_name(std::string_view trimmed, std::size_t min_len, std::size_t max_len);

// Trims and lower-cases (ASCII) an email.
std::string normalize_email(std::string_view email);
// An 8-4-4-4-12 hex UUID (either case; callers lower-case it before use).
bool is_uuid(std::string_view s) noexcept;
// Random version-4 UUID (libsodium randombytes).
std::string new_uuid();

}  // namespace tenantd::validation

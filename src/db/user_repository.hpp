// SQL against a tenant database's users table. The connection passed in must come from
// that tenant's pool: the tenant is chosen by the caller, visibly, at acquisition.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

#include "db/connection.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"

namespace tenantd::db::users {

using boost::asio::awaitable;

// errc::email_taken when the email is already used in this tenant.
awaitable<result<user_record>> insert(connection& tenant_db, const user_record& user);
awaitable<std::optional<user_record>> find(connection& tenant_db, const std::string& id);
awaitable<std::optional<user_record>> find_by_email(connection& tenant_db, const std::string& email);
awaitable<user_page> list(connection& tenant_db, const user_query& query);
// errc::not_found or errc::email_taken.
awaitable<result<user_record>> update(connection& tenant_db, const std::string& id, const user_changes& changes);
awaitable<bool> remove(connection& tenant_db, const std::string& id);
// A person joining the tenant takes over the directory entry with their email: its id becomes
// their account id, its names stay. nullopt if there is no such entry (or the id is in use).
awaitable<std::optional<user_record>> adopt(connection& tenant_db, const std::string& email,
                                            const std::string& account_id);

// Escapes % _ and \ for a LIKE pattern and wraps it in %...%.
std::string contains_pattern(std::string_view needle);

}  // namespace tenantd::db::users

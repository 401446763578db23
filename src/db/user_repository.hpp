// SQL against a tenant database's users table. The runner passed in is that tenant's pool or
// a connection from it: the tenant is chosen by the caller, visibly. Every function here runs
// single statements, each its own implicit transaction, so a pool may pipeline them.
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
awaitable<result<user_record>> insert(statement_runner& tenant_db, const user_record& user);
awaitable<std::optional<user_record>> find(statement_runner& tenant_db, const std::string& id);
awaitable<std::optional<user_record>> find_by_email(statement_runner& tenant_db, const std::string& email);
awaitable<user_page> list(statement_runner& tenant_db, const user_query& query);
// errc::not_found or errc::email_taken.
awaitable<result<user_record>> update(statement_runner& tenant_db, const std::string& id, const user_changes& changes);
awaitable<bool> remove(statement_runner& tenant_db, const std::string& id);
// A person joining the tenant takes over the directory entry with their email: its id becomes
// their account id, its names stay. nullopt if there is no such entry (or the id is in use).
awaitable<std::optional<user_record>> adopt(statement_runner& tenant_db, const std::string& email,
                                            const std::string& account_id);

// Escapes % _ and \ for a LIKE pattern and wraps it in %...%.
std::string contains_pattern(std::string_view needle);

}  // namespace tenantd::db::users

// SQL on the tenant databases themselves, run on a master connection: CREATE/DROP DATABASE,
// who may connect, the template database's state. Names are validated by the caller (tenant id
// rule) and quoted here with PQescapeIdentifier. Throws pg_error / unavailable_error.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

#include "db/connection.hpp"

namespace tenantd::db::databases {

using boost::asio::awaitable;

// CREATE DATABASE "<name>" TEMPLATE "<source>" ENCODING 'UTF8' [OWNER "<owner>"]. pg_error
// 42P04 when it exists already, 55006 while another session uses the source.
awaitable<void> create(connection& c, const std::string& name, const std::string& source,
                       const std::optional<std::string>& owner);
// REVOKE CONNECT, TEMPORARY ... FROM PUBLIC, then GRANT CONNECT (and TEMPORARY when
// `temporary`) ... TO `role`: only that role (and superusers and the owner) may connect.
awaitable<void> restrict_connect(connection& c, const std::string& name, const std::string& role, bool temporary);
// DROP DATABASE IF EXISTS ... WITH (FORCE): terminates the database's connections first.
awaitable<void> drop(connection& c, const std::string& name);

// The template between migrations: connections allowed while it is migrated, then closed
// again and marked IS_TEMPLATE.
awaitable<void> open_template(connection& c, const std::string& name);
awaitable<void> close_template(connection& c, const std::string& name);
// The schema version recorded (in master's template_state) for the template database `name`
// on database server `server`, if any. `c` is a master connection.
awaitable<std::optional<int>> template_version(connection& c, const std::string& server, const std::string& name);
awaitable<void> record_template_version(connection& c, const std::string& server, const std::string& name, int version);

}  // namespace tenantd::db::databases

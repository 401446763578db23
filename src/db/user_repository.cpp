// Tenant users SQL. Statements are prepared once per connection.
#include "db/user_repository.hpp"

#include <array>

namespace tenantd::db::users {
namespace {

#define TENANTD_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define USER_COLUMNS "id, email, first_name, last_name, " TENANTD_UTC("created_at") ", " TENANTD_UTC("updated_at")

user_record user_from(const result_set& r, int row) {
  return user_record{r.string(row, 0), r.string(row, 1), r.string(row, 2),
                     r.string(row, 3), r.string(row, 4), r.string(row, 5)};
}

constexpr statement insert_sql{"u_insert",
                               "INSERT INTO users (id, email, first_name, last_name) VALUES ($1, $2, $3, $4) "
                               "RETURNING " USER_COLUMNS};
constexpr statement find_sql{"u_find", "SELECT " USER_COLUMNS " FROM users WHERE id = $1"};
constexpr statement find_by_email_sql{"u_find_by_email", "SELECT " USER_COLUMNS " FROM users WHERE email = $1"};
constexpr statement list_sql{"u_list",
                             "SELECT " USER_COLUMNS
                             ", count(*) OVER () FROM users "
                             "WHERE ($1::text IS NULL OR email ILIKE $1) "
                             "  AND ($2::text IS NULL OR email ILIKE $2 OR first_name ILIKE $2 OR last_name ILIKE $2 "
                             "       OR (first_name || ' ' || last_name) ILIKE $2) "
                             "ORDER BY created_at DESC, id DESC LIMIT $3::bigint OFFSET $4::bigint"};
constexpr statement count_sql{"u_count",
                              "SELECT count(*) FROM users WHERE ($1::text IS NULL OR email ILIKE $1) "
                              "  AND ($2::text IS NULL OR email ILIKE $2 OR first_name ILIKE $2 OR last_name ILIKE $2 "
                              "       OR (first_name || ' ' || last_name) ILIKE $2)"};
constexpr statement update_sql{
    "u_update",
    "UPDATE users SET email = COALESCE($2, email), first_name = COALESCE($3, first_name), "
    "last_name = COALESCE($4, last_name), updated_at = clock_timestamp() WHERE id = $1 RETURNING " USER_COLUMNS};
constexpr statement delete_sql{"u_delete", "DELETE FROM users WHERE id = $1"};
constexpr statement adopt_sql{"u_adopt",
                              "UPDATE users SET id = $2, updated_at = clock_timestamp() WHERE email = $1 "
                              "AND NOT EXISTS (SELECT 1 FROM users WHERE id = $2) RETURNING " USER_COLUMNS};

param opt(const std::optional<std::string>& v) { return v ? param(*v) : param(); }

}  // namespace

std::string contains_pattern(std::string_view needle) {
  std::string out = "%";
  for (char ch : needle) {
    if (ch == '%' || ch == '_' || ch == '\\') out += '\\';
    out += ch;
  }
  out += '%';
  return out;
}

awaitable<result<user_record>> insert(statement_runner& tenant_db, const user_record& user) {
  try {
    std::array<param, 4> p{param(user.id), param(user.email), param(user.first_name), param(user.last_name)};
    auto r = co_await tenant_db.exec_prepared(insert_sql, p);
    co_return user_from(r, 0);
  } catch (const pg_error& e) {
    if (!e.is_unique_violation()) throw;
  }
  co_return make_error(errc::email_taken, "a user with this email already exists in this tenant");
}

awaitable<std::optional<user_record>> find(statement_runner& tenant_db, const std::string& id) {
  std::array<param, 1> p{param(id)};
  auto r = co_await tenant_db.exec_prepared(find_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return user_from(r, 0);
}

awaitable<std::optional<user_record>> find_by_email(statement_runner& tenant_db, const std::string& email) {
  std::array<param, 1> p{param(email)};
  auto r = co_await tenant_db.exec_prepared(find_by_email_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return user_from(r, 0);
}

awaitable<user_page> list(statement_runner& tenant_db, const user_query& query) {
  std::optional<std::string> email_pattern, q_pattern;
  if (query.email) email_pattern = contains_pattern(*query.email);
  if (query.q) q_pattern = contains_pattern(*query.q);
  const auto limit = std::to_string(query.page_size);
  const auto offset = std::to_string((query.page - 1) * query.page_size);
  std::array<param, 4> p{opt(email_pattern), opt(q_pattern), param(limit), param(offset)};
  auto r = co_await tenant_db.exec_prepared(list_sql, p);
  user_page page;
  for (int i = 0; i < r.rows(); ++i) page.items.push_back(user_from(r, i));
  if (!page.items.empty()) {
    page.total = r.int64(0, 6);
  } else {
    std::array<param, 2> cp{opt(email_pattern), opt(q_pattern)};
    auto c = co_await tenant_db.exec_prepared(count_sql, cp);
    page.total = c.int64(0, 0);
  }
  co_return page;
}

awaitable<result<user_record>> update(statement_runner& tenant_db, const std::string& id, const user_changes& changes) {
  if (changes.empty()) {
    // Nothing to change: answer with the user as it is, without touching updated_at.
    auto current = co_await find(tenant_db, id);
    if (!current) co_return make_error(errc::not_found, "no such user");
    co_return *current;
  }
  try {
    std::array<param, 4> p{param(id), opt(changes.email), opt(changes.first_name), opt(changes.last_name)};
    auto r = co_await tenant_db.exec_prepared(update_sql, p);
    if (r.empty()) co_return make_error(errc::not_found, "no such user");
    co_return user_from(r, 0);
  } catch (const pg_error& e) {
    if (!e.is_unique_violation()) throw;
  }
  co_return make_error(errc::email_taken, "a user with this email already exists in this tenant");
}

awaitable<std::optional<user_record>> adopt(statement_runner& tenant_db, const std::string& email,
                                            const std::string& account_id) {
  std::array<param, 2> p{param(email), param(account_id)};
  auto r = co_await tenant_db.exec_prepared(adopt_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return user_from(r, 0);
}

awaitable<bool> remove(statement_runner& tenant_db, const std::string& id) {
  std::array<param, 1> p{param(id)};
  auto r = co_await tenant_db.exec_prepared(delete_sql, p);
  co_return r.affected_rows() > 0;
}

}  // namespace tenantd::db::users

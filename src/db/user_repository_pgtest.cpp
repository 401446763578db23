// Tenant users repository against a fresh database with the real tenant migrations:
// insert/find/update/remove, unique emails, pagination, and the email and q filters.
#include "db/user_repository.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include "db/migrator.hpp"
#include "domain/validation.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using test::run_coro;

// A connection to `db` with the tenant migrations applied.
net::awaitable<std::unique_ptr<connection>> migrated_tenant(const test::test_database& db) {
  connection_options options;
  options.conninfo = db.conninfo();
  auto conn = co_await connection::connect(co_await net::this_coro::executor, options);
  const auto migrations = parse_migrations(embedded_tenant_migrations());
  const migrate_options migrate;
  (void)co_await apply_migrations(*conn, migrations, migrate);
  co_return conn;
}

user_record user_with(const std::string& email, const std::string& first = "Ada",
                      const std::string& last = "Lovelace") {
  return user_record{validation::new_uuid(), email, first, last, {}, {}};
}

// Inserts and expects success; returns the stored row.
net::awaitable<user_record> must_insert(connection& c, const user_record& user) {
  auto inserted = co_await users::insert(c, user);
  EXPECT_TRUE(inserted) << user.email;
  if (!inserted) throw std::runtime_error("insert failed: " + user.email);
  co_return std::move(inserted).value();
}

std::vector<std::string> emails_of(const user_page& page) {
  std::vector<std::string> out;
  for (const auto& u : page.items) out.push_back(u.email);
  return out;
}

TEST(user_repository, contains_pattern_escapes_like_metacharacters) {
  EXPECT_EQ(users::contains_pattern("abc"), "%abc%");
  EXPECT_EQ(users::contains_pattern(""), "%%");
  EXPECT_EQ(users::contains_pattern("50%_off"), "%50\\%\\_off%");
  EXPECT_EQ(users::contains_pattern("a\\b"), "%a\\\\b%");
}

TEST(user_repository, insert_find_update_remove) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    const auto ada = user_with("ada@example.com");
    const auto stored = co_await must_insert(*c, ada);
    EXPECT_EQ(stored.id, ada.id);
    EXPECT_EQ(stored.email, ada.email);
    EXPECT_EQ(stored.first_name, "Ada");
    EXPECT_EQ(stored.last_name, "Lovelace");
    EXPECT_EQ(stored.created_at.size(), 20U) << stored.created_at;
    EXPECT_EQ(stored.created_at.back(), 'Z');
    EXPECT_FALSE(stored.updated_at.empty());

    const auto by_id = co_await users::find(*c, ada.id);
    EXPECT_TRUE(by_id);
    if (by_id) {
      EXPECT_EQ(by_id->email, ada.email);
    }
    const auto by_email = co_await users::find_by_email(*c, ada.email);
    EXPECT_TRUE(by_email);
    if (by_email) {
      EXPECT_EQ(by_email->id, ada.id);
    }
    const auto unknown = validation::new_uuid();
    const auto got1 = co_await users::find(*c, unknown);
    EXPECT_FALSE(got1);
    const std::string nobody = "nobody@example.com";
    const auto got2 = co_await users::find_by_email(*c, nobody);
    EXPECT_FALSE(got2);

    // Partial update: only the given fields change.
    user_changes rename;
    rename.first_name = "Augusta";
    auto updated = co_await users::update(*c, ada.id, rename);
    EXPECT_TRUE(updated);
    if (!updated) co_return;
    EXPECT_EQ(updated->first_name, "Augusta");
    EXPECT_EQ(updated->last_name, "Lovelace");
    EXPECT_EQ(updated->email, ada.email);
    EXPECT_EQ(updated->created_at, stored.created_at);

    user_changes new_email;
    new_email.email = "augusta@example.com";
    new_email.last_name = "King";
    updated = co_await users::update(*c, ada.id, new_email);
    EXPECT_TRUE(updated);
    EXPECT_EQ(updated->email, "augusta@example.com");
    EXPECT_EQ(updated->last_name, "King");
    EXPECT_EQ(updated->first_name, "Augusta");
    const auto after = co_await users::find(*c, ada.id);
    EXPECT_EQ(after->email, "augusta@example.com");

    const auto got3 = co_await users::remove(*c, ada.id);
    EXPECT_TRUE(got3);
    const auto got4 = co_await users::remove(*c, ada.id);
    EXPECT_FALSE(got4);
    const auto got5 = co_await users::find(*c, ada.id);
    EXPECT_FALSE(got5);
  });
}

TEST(user_repository, unique_email_is_email_taken_on_insert_and_update) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    const auto row1 = user_with("ada@example.com");
    const auto ada = co_await must_insert(*c, row1);
    const auto row2 = user_with("bob@example.com", "Bob", "Builder");
    const auto bob = co_await must_insert(*c, row2);

    const auto twin = user_with("ada@example.com", "Other", "Person");
    const auto duplicate = co_await users::insert(*c, twin);
    EXPECT_FALSE(duplicate);
    if (!duplicate) {
      EXPECT_EQ(duplicate.err().code, errc::email_taken);
    }
    const auto got6 = co_await users::find(*c, twin.id);
    EXPECT_FALSE(got6) << "nothing was stored";

    user_changes steal;
    steal.email = ada.email;
    const auto clash = co_await users::update(*c, bob.id, steal);
    EXPECT_FALSE(clash);
    if (!clash) {
      EXPECT_EQ(clash.err().code, errc::email_taken);
    }
    const auto unchanged = co_await users::find(*c, bob.id);
    EXPECT_EQ(unchanged->email, "bob@example.com");

    // Setting one's own email again is not a clash.
    user_changes same;
    same.email = bob.email;
    const auto own = co_await users::update(*c, bob.id, same);
    EXPECT_TRUE(own);

    // The connection is still usable after the unique violations.
    const auto row3 = user_with("carl@example.com");
    const auto carl = co_await must_insert(*c, row3);
    EXPECT_EQ(carl.email, "carl@example.com");
  });
}

TEST(user_repository, update_of_missing_id_is_not_found) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    user_changes changes;
    changes.first_name = "Nobody";
    const auto missing = validation::new_uuid();
    const auto updated = co_await users::update(*c, missing, changes);
    EXPECT_FALSE(updated);
    if (!updated) {
      EXPECT_EQ(updated.err().code, errc::not_found);
    }
  });
}

TEST(user_repository, list_is_newest_first_with_pagination_and_total) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    for (int i = 0; i < 7; ++i) {
      const auto user = user_with("user" + std::to_string(i) + "@example.com");
      (void)co_await must_insert(*c, user);
    }

    user_query query;
    query.page_size = 3;
    auto page = co_await users::list(*c, query);
    EXPECT_EQ(page.total, 7);
    EXPECT_EQ(emails_of(page),
              (std::vector<std::string>{"user6@example.com", "user5@example.com", "user4@example.com"}));
    query.page = 2;
    page = co_await users::list(*c, query);
    EXPECT_EQ(page.total, 7);
    EXPECT_EQ(emails_of(page),
              (std::vector<std::string>{"user3@example.com", "user2@example.com", "user1@example.com"}));
    query.page = 3;
    page = co_await users::list(*c, query);
    EXPECT_EQ(page.total, 7);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"user0@example.com"}));
    query.page = 4;
    page = co_await users::list(*c, query);
    EXPECT_TRUE(page.items.empty());
    EXPECT_EQ(page.total, 7) << "total is known past the last page";

    // Same created_at: the id breaks the tie (descending), so pages never overlap.
    test::admin_exec("UPDATE users SET created_at = '2024-01-01T00:00:00Z'", db.name());
    user_query all;
    all.page_size = 100;
    const auto everything = co_await users::list(*c, all);
    EXPECT_EQ(everything.items.size(), 7U);
    for (std::size_t i = 1; i < everything.items.size(); ++i)
      EXPECT_GT(everything.items[i - 1].id, everything.items[i].id);
    std::vector<std::string> paged;
    user_query two;
    two.page_size = 2;
    for (two.page = 1; two.page <= 4; ++two.page) {
      const auto part = co_await users::list(*c, two);
      for (const auto& u : part.items) paged.push_back(u.id);
    }
    std::vector<std::string> ids;
    for (const auto& u : everything.items) ids.push_back(u.id);
    EXPECT_EQ(paged, ids);
  });
}

TEST(user_repository, list_of_an_empty_table_has_total_zero) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    const user_query query;
    const auto page = co_await users::list(*c, query);
    EXPECT_TRUE(page.items.empty());
    EXPECT_EQ(page.total, 0);
  });
}

TEST(user_repository, email_and_q_filters_are_case_insensitive_and_literal) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_tenant(db);
    const auto row4 = user_with("ada@example.com", "Ada", "Lovelace");
    (void)co_await must_insert(*c, row4);
    const auto row5 = user_with("grace@navy.mil", "Grace", "Hopper");
    (void)co_await must_insert(*c, row5);
    const auto row6 = user_with("100%sure@example.com", "Percy", "Cent");
    (void)co_await must_insert(*c, row6);
    const auto row7 = user_with("under_score@example.com", "Under", "Score");
    (void)co_await must_insert(*c, row7);
    const auto row8 = user_with("underxscore@example.com", "Other", "Person");
    (void)co_await must_insert(*c, row8);
    const auto row9 = user_with("back\\slash@example.com", "Back", "Slash");
    (void)co_await must_insert(*c, row9);

    // nullptr: no filter (plain pointers keep class temporaries out of co_await expressions).
    const auto filtered = [&](const char* email, const char* q) -> net::awaitable<user_page> {
      user_query query;
      query.page_size = 50;
      if (email) query.email = email;
      if (q) query.q = q;
      co_return co_await users::list(*c, query);
    };
    const char* const none = nullptr;

    // email: substring, case-insensitive.
    auto page = co_await filtered("EXAMPLE.COM", none);
    EXPECT_EQ(page.total, 5);
    EXPECT_EQ(page.items.size(), 5U);
    page = co_await filtered("NAVY", none);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"grace@navy.mil"}));

    // % and _ are literal characters, not wildcards.
    page = co_await filtered("%", none);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"100%sure@example.com"}));
    EXPECT_EQ(page.total, 1);
    page = co_await filtered("under_", none);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"under_score@example.com"}));
    page = co_await filtered("_", none);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"under_score@example.com"}));
    page = co_await filtered("\\", none);
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"back\\slash@example.com"}));

    // q: email or first/last name or "first last", case-insensitive.
    page = co_await filtered(none, "hopper");
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"grace@navy.mil"}));
    page = co_await filtered(none, "GRACE H");
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"grace@navy.mil"}));
    page = co_await filtered(none, "lOvElAcE");
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"ada@example.com"}));
    page = co_await filtered(none, "%");
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"100%sure@example.com"}));
    page = co_await filtered(none, "r_s");
    EXPECT_EQ(emails_of(page), (std::vector<std::string>{"under_score@example.com"}))
        << "'_' must not match the 'x' of underxscore";
    EXPECT_EQ(page.total, 1);

    // Both filters together.
    page = co_await filtered("example", "under");
    EXPECT_EQ(page.total, 2);
    page = co_await filtered("navy", "ada");
    EXPECT_EQ(page.total, 0);

    // Filtered total with pagination.
    user_query paged;
    paged.page_size = 2;
    paged.email = "Example";
    paged.page = 3;
    page = co_await users::list(*c, paged);
    EXPECT_EQ(page.items.size(), 1U);
    EXPECT_EQ(page.total, 5);
  });
}

}  // namespace
}  // namespace tenantd::db

// Migration runner: validates versioned SQL files, checks recorded checksums and applies
// pending versions one transaction each, optionally under a session advisory lock.
#include "db/migrator.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "db/advisory_lock.hpp"
#include "db/transaction.hpp"

namespace tenantd::db {
namespace net = boost::asio;

namespace {

std::string sha256_hex(std::string_view content) {
  static const int initialized = sodium_init();
  if (initialized < 0) throw std::runtime_error("libsodium failed to initialize");
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(content.data()), content.size());
  static constexpr char hex[] = "0123456789abcdef";
  std::string text;
  text.reserve(digest.size() * 2);
  for (const unsigned char byte : digest) {
    text += hex[byte >> 4];
    text += hex[byte & 0x0f];
  }
  return text;
}

bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

migration parse_file(const embedded_file& file) {
  const std::string_view name = file.file_name;
  const auto bad = [&](const std::string& why) {
    return migration_error("bad migration file name '" + std::string(name) + "': " + why +
                           " (expected V<digits>__<name>.sql)");
  };
  if (name.size() < 2 || name.front() != 'V') throw bad("must start with V");
  const auto separator = name.find("__");
  if (separator == std::string_view::npos) throw bad("no '__' after the version");
  const auto digits = name.substr(1, separator - 1);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    throw bad("the version is not a number");
  int version = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), version);
  if (ec != std::errc{} || end != digits.data() + digits.size()) throw bad("the version is out of range");
  if (!name.ends_with(".sql")) throw bad("must end in .sql");
  const auto label = name.substr(separator + 2, name.size() - separator - 2 - 4);
  if (label.empty() || !std::all_of(label.begin(), label.end(), is_name_char))
    throw bad("the name must be letters, digits, '_' or '-'");
  return {version, std::string(label), std::string(file.content), sha256_hex(file.content)};
}

std::string describe(const migration& m) { return "V" + std::to_string(m.version) + " (" + m.name + ")"; }

}  // namespace

std::vector<migration> parse_migrations(const std::vector<embedded_file>& files) {
  std::vector<migration> migrations;
  migrations.reserve(files.size());
  for (const auto& file : files) migrations.push_back(parse_file(file));
  std::sort(migrations.begin(), migrations.end(),
            [](const migration& a, const migration& b) { return a.version < b.version; });
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    const int expected = static_cast<int>(i) + 1;
    const auto& m = migrations[i];
    if (i > 0 && m.version == migrations[i - 1].version)
      throw migration_error("duplicate migration version " + std::to_string(m.version));
    if (m.version != expected)
      throw migration_error("migration versions must run 1.." + std::to_string(migrations.size()) +
                            " without gaps: expected version " + std::to_string(expected) + ", found " + describe(m));
  }
  return migrations;
}

std::vector<migration> load_migrations(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(directory, ec);
  if (ec) throw migration_error("cannot read migration directory '" + directory + "': " + ec.message());
  std::vector<std::pair<std::string, std::string>> contents;
  for (const auto& entry : it) {
    if (!entry.is_regular_file() || entry.path().extension() != ".sql") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw migration_error("cannot read migration file " + entry.path().string());
    contents.emplace_back(entry.path().filename().string(), text.str());
  }
  std::vector<embedded_file> files;
  files.reserve(contents.size());
  for (const auto& [name, content] : contents) files.push_back({name, content});
  return parse_migrations(files);
}

namespace {

constexpr std::string_view create_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, "
    "applied_at timestamptz NOT NULL DEFAULT now())";

// Applied versions with their recorded checksums.
std::map<int, std::string> read_applied(const result_set& rows) {
  std::map<int, std::string> applied;
  for (int row = 0; row < rows.rows(); ++row)
    applied.emplace(static_cast<int>(rows.int64(row, 0)), rows.string(row, 1));
  return applied;
}

void verify_applied(const std::map<int, std::string>& applied, const std::vector<migration>& migrations) {
  for (const auto& [version, checksum] : applied) {
    const auto known = std::find_if(migrations.begin(), migrations.end(),
                                    [v = version](const migration& m) { return m.version == v; });
    if (known == migrations.end())
      throw migration_error("database has migration version " + std::to_string(version) +
                            " applied, which this binary does not know (it knows up to " +
                            std::to_string(migrations.size()) + "): database is newer than this binary");
    if (known->checksum != checksum)
      throw migration_error("checksum mismatch for applied migration " + describe(*known) +
                            ": the file changed after it was applied");
  }
}

net::awaitable<void> apply_one(connection& conn, const migration& m) {
  std::exception_ptr failure;
  {
    auto tx = co_await transaction::begin(conn);
    try {
      co_await conn.exec(m.sql);
      const auto version = std::to_string(m.version);
      const std::array<param, 3> params{version, m.name, m.checksum};
      co_await conn.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", params);
      co_await tx.commit();
      co_return;
    } catch (const pg_error& e) {
      failure = std::make_exception_ptr(
          migration_error("migration " + describe(m) + " failed [" + e.sqlstate() + "]: " + e.what()));
    } catch (...) {
      failure = std::current_exception();
    }
    co_await tx.rollback();  // before the error reaches a caller that may go on using the connection
  }
  std::rethrow_exception(failure);
}

net::awaitable<migrate_report> run_migrations(connection& conn, const std::vector<migration>& migrations,
                                              const migrate_options& options) {
  co_await conn.exec(create_table_sql);
  const auto applied =
      read_applied(co_await conn.exec("SELECT version, checksum FROM schema_migrations ORDER BY version"));
  verify_applied(applied, migrations);
  migrate_report report;
  report.version_before = applied.empty() ? 0 : applied.rbegin()->first;
  report.version_after = report.version_before;
  for (const auto& m : migrations) {
    if (options.target_version && m.version > *options.target_version) break;
    if (applied.contains(m.version)) continue;
    co_await apply_one(conn, m);
    report.applied.push_back(m.version);
    report.version_after = std::max(report.version_after, m.version);
  }
  co_return report;
}

}  // namespace

net::awaitable<migrate_report> apply_migrations(connection& conn, const std::vector<migration>& migrations,
                                                migrate_options options) {
  if (!options.advisory_lock_key) co_return co_await run_migrations(conn, migrations, options);

  auto lock = co_await advisory_lock::acquire(conn, *options.advisory_lock_key);
  auto report = co_await run_migrations(conn, migrations, options);
  co_await lock.release();  // on an exception the lock object leaves the unlock to the connection
  co_return report;
}

net::awaitable<void> grant_data_access(connection& conn, const std::string& role) {
  const auto r = conn.escape_identifier(role);
  const std::string statements[] = {
      "GRANT USAGE ON SCHEMA public TO " + r,
      "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + r,
      "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + r,
      "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + r,
      "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + r,
  };
  for (const auto& sql : statements) co_await conn.exec(sql);
  const auto history = co_await conn.exec("SELECT to_regclass('public.schema_migrations') IS NOT NULL");
  if (history.boolean(0, 0)) {
    const std::string read_only = "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.schema_migrations FROM " + r;
    co_await conn.exec(read_only);
  }
}

net::awaitable<int> current_version(connection& conn) {
  const auto exists = co_await conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists.boolean(0, 0)) co_return 0;
  const auto version = co_await conn.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  co_return static_cast<int>(version.int64(0, 0));
}

}  // namespace tenantd::db

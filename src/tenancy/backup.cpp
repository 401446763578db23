// One tenant's backup (pg_dump -Fc + master rows) and restore (template0 + pg_restore + rows).
#include "tenancy/backup.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <type_traits>

#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "db/session_repository.hpp"
#include "domain/validation.hpp"

extern char** environ;

namespace tenantd::tenancy {
namespace net = boost::asio;
namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<std::string> pg_tool_environment(const char* const* parent, const std::string& password) {
  const auto needed = [](std::string_view entry) {
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) return false;
    const auto name = entry.substr(0, eq);
    if (name == "PGPASSWORD") return false;  // ours replaces it
    if (name.starts_with("PG") || name.starts_with("LC_")) return true;
    for (const std::string_view kept : {"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ"})
      if (name == kept) return true;
    return false;
  };
  std::vector<std::string> out;
  for (const char* const* e = parent; e != nullptr && *e != nullptr; ++e)
    if (needed(*e)) out.emplace_back(*e);
  out.push_back("PGPASSWORD=" + password);
  return out;
}

void prepare_backup_directory(const std::string& dir) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
}

namespace {

constexpr char magic[8] = {'T', 'N', 'T', 'D', 'B', 'K', '0', '1'};
constexpr std::uint64_t max_json_bytes = 512ULL * 1024 * 1024;
constexpr int format_version = 1;

// Runs a blocking function on its own thread; the coroutine polls for the result, so its
// executor stays free for other work.
template <class F>
net::awaitable<std::invoke_result_t<F>> offload(F f) {
  auto done = std::async(std::launch::async, std::move(f));
  auto executor = co_await net::this_coro::executor;
  auto delay = 2ms;
  while (done.wait_for(0s) != std::future_status::ready) {
    net::steady_timer timer(executor, delay);
    co_await timer.async_wait(net::use_awaitable);
    delay = std::min<std::chrono::milliseconds>(delay * 2, 50ms);
  }
  co_return done.get();
}

std::string now_rfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

struct program_run {
  int exit_code{-1};
  std::string errors;  // what the program wrote on stderr
};

// posix_spawn + waitpid (blocking: call it from a worker thread). The password reaches the
// child only through PGPASSWORD in its environment, which holds nothing else of ours (see
// pg_tool_environment); stdin and stdout are /dev/null, stderr is captured; no descriptor of
// ours leaks into the child.
program_run run_program(const std::string& program, const std::vector<std::string>& args, const std::string& password) {
  char err_path[] = "/tmp/tenantd-pgtool-XXXXXX";
  const int err_fd = ::mkostemp(err_path, O_CLOEXEC);
  if (err_fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::unlink(err_path);

  std::vector<std::string> env_strings = pg_tool_environment(environ, password);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings{program};
  arg_strings.insert(arg_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    ::close(err_fd);
    throw std::runtime_error("cannot run " + program + ": " + std::strerror(spawned));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  program_run run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ::lseek(err_fd, 0, SEEK_SET);
  char buffer[4096];
  for (ssize_t n; (n = ::read(err_fd, buffer, sizeof buffer)) > 0 && run.errors.size() < 16384;)
    run.errors.append(buffer, static_cast<std::size_t>(n));
  ::close(err_fd);
  while (!run.errors.empty() && (run.errors.back() == '\n' || run.errors.back() == ' ')) run.errors.pop_back();
  return run;
}

std::vector<std::string> connection_args(const tenant_connection_settings& s) {
  std::vector<std::string> args{"--no-password"};
  if (!s.host.empty()) args.insert(args.end(), {"--host", s.host});
  if (!s.port.empty()) args.insert(args.end(), {"--port", s.port});
  if (!s.user.empty()) args.insert(args.end(), {"--username", s.user});
  return args;
}

// Creates (or truncates) `path` with mode 0600 exactly.
void create_private_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  const int changed = ::fchmod(fd, 0600);
  ::close(fd);
  if (changed != 0) throw std::runtime_error("cannot set the mode of " + path + ": " + std::strerror(errno));
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

// Removes a temporary file when it goes out of scope.
struct temporary_file {
  std::string path;
  ~temporary_file() {
    if (!path.empty()) remove_quietly(path);
  }
};

// pg_dump into `path`.dump.partial, then header + JSON + dump into `path`.partial, renamed
// to `path`. Returns the size of the file.
std::uintmax_t write_backup(const std::string& path, const std::string& rows_json,
                            const tenant_connection_settings& settings, const std::string& database) {
  temporary_file dump{path + ".dump.partial"};
  temporary_file bundle{path + ".partial"};
  // Both files hold every member's password hash: created 0600 before anything writes them
  // (pg_dump reopens its file without changing the mode), whatever the umask.
  create_private_file(dump.path);
  create_private_file(bundle.path);
  auto args = connection_args(settings);
  args.insert(args.end(), {"--format=custom", "--file", dump.path, "--dbname", database});
  const auto dumped = run_program(find_pg_program("pg_dump"), args, settings.password);
  if (dumped.exit_code != 0)
    throw std::runtime_error("pg_dump of " + database + " failed (exit " + std::to_string(dumped.exit_code) +
                             "): " + dumped.errors);
  {
    std::ofstream out(bundle.path, std::ios::binary | std::ios::trunc);
    std::ifstream in(dump.path, std::ios::binary);
    if (!out || !in) throw std::runtime_error("cannot write " + bundle.path);
    out.write(magic, sizeof magic);
    std::array<char, 8> length{};
    const auto n = static_cast<std::uint64_t>(rows_json.size());
    for (std::size_t i = 0; i < 8; ++i) length[i] = static_cast<char>((n >> (56 - 8 * i)) & 0xff);
    out.write(length.data(), length.size());
    out.write(rows_json.data(), static_cast<std::streamsize>(rows_json.size()));
    out << in.rdbuf();
    out.flush();
    if (!out) throw std::runtime_error("cannot write " + bundle.path + " (disk full?)");
  }
  fs::rename(bundle.path, path);
  bundle.path.clear();
  return fs::file_size(path);
}

struct loaded_backup {
  std::optional<error> refused;
  json::value rows;
  std::string dump_path;  // temporary file with the pg_dump archive
};

// Reads the header and the JSON and copies the archive into a temporary file.
loaded_backup read_backup(const std::string& path) {
  loaded_backup out;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    out.refused = make_error(errc::not_found, "no such backup");
    return out;
  }
  std::ifstream in(path, std::ios::binary);
  char head[16];
  if (!in.read(head, sizeof head) || std::memcmp(head, magic, sizeof magic) != 0) {
    out.refused = make_error(errc::invalid_input, "the file is not a tenantd backup");
    return out;
  }
  std::uint64_t n = 0;
  for (std::size_t i = 8; i < 16; ++i) n = (n << 8) | static_cast<unsigned char>(head[i]);
  if (n == 0 || n > max_json_bytes) {
    out.refused = make_error(errc::invalid_input, "the backup has a damaged header");
    return out;
  }
  std::string text(static_cast<std::size_t>(n), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(n))) {
    out.refused = make_error(errc::invalid_input, "the backup is truncated");
    return out;
  }
  boost::system::error_code parse_error;
  out.rows = json::parse(text, parse_error);
  if (parse_error || !out.rows.is_object()) {
    out.refused = make_error(errc::invalid_input, "the backup holds damaged metadata");
    return out;
  }
  char dump_path[] = "/tmp/tenantd-restore-XXXXXX";
  const int fd = ::mkostemp(dump_path, O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(std::string("mkstemp: ") + std::strerror(errno));
  ::close(fd);
  out.dump_path = dump_path;
  std::ofstream dump(out.dump_path, std::ios::binary | std::ios::trunc);
  dump << in.rdbuf();
  dump.flush();
  if (!dump) {
    remove_quietly(out.dump_path);
    throw std::runtime_error("cannot write " + out.dump_path + " (disk full?)");
  }
  return out;
}

// The master rows of a backup, as read back from its JSON.
struct backup_rows {
  std::string id;
  std::string name;
  std::string registration;
  struct member {
    std::string id, email, password_hash, first_name, last_name, role, joined_at;
  };
  std::vector<member> members;
  struct invitation {
    std::string id, email, role, token_hash, invited_by, created_at, expires_at;
  };
  std::vector<invitation> invitations;
};

std::string text_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return {};
  return std::string(std::string_view(v->as_string()));  // throws for a non-string
}

std::optional<backup_rows> decode_rows(const json::value& doc) {
  try {
    const auto& o = doc.as_object();
    if (o.at("format").to_number<int>() != format_version) return std::nullopt;
    const auto& t = o.at("tenant").as_object();
    backup_rows rows{text_of(t, "id"), text_of(t, "name"), text_of(t, "registration"), {}, {}};
    for (const auto& m : o.at("members").as_array()) {
      const auto& mo = m.as_object();
      rows.members.push_back({text_of(mo, "account_id"), text_of(mo, "email"), text_of(mo, "password_hash"),
                              text_of(mo, "first_name"), text_of(mo, "last_name"), text_of(mo, "role"),
                              text_of(mo, "joined_at")});
    }
    for (const auto& i : o.at("invitations").as_array()) {
      const auto& io = i.as_object();
      rows.invitations.push_back({text_of(io, "id"), text_of(io, "email"), text_of(io, "role"),
                                  text_of(io, "token_hash"), text_of(io, "invited_by"), text_of(io, "created_at"),
                                  text_of(io, "expires_at")});
    }
    if (rows.id.empty() || rows.name.empty()) return std::nullopt;
    if (rows.registration.empty()) rows.registration = "invite";
    return rows;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

constexpr const char* members_sql =
    "SELECT a.id, a.email, a.password_hash, a.first_name, a.last_name, m.role, m.created_at "
    "FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.tenant_id = $1 ORDER BY m.created_at, a.id";
constexpr const char* invitations_sql =
    "SELECT id, email, role, encode(token_hash, 'hex'), invited_by, created_at, expires_at FROM invitations "
    "WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() "
    "ORDER BY created_at, id";

template <class... Args>
std::vector<db::param> params(const Args&... args) {
  return {db::param(std::string_view(args))...};
}

}  // namespace

std::string find_pg_program(const std::string& name) {
  const fs::path debian = fs::path("/usr/lib/postgresql/15/bin") / name;
  std::error_code ec;
  if (fs::exists(debian, ec)) return debian.string();
  if (const char* path = std::getenv("PATH")) {
    std::string_view rest = path;
    while (!rest.empty()) {
      const auto colon = rest.find(':');
      const auto dir = rest.substr(0, colon);
      if (!dir.empty()) {
        const fs::path candidate = fs::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
      }
      rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    }
  }
  return name;
}

net::awaitable<result<backup_summary>> backup_tenant(std::shared_ptr<db::pool> master, provisioner& provisioning,
                                                     const std::string& tenant_id, const std::string& path) {
  backup_summary summary;
  summary.tenant_id = tenant_id;
  summary.path = path;
  summary.created_at = now_rfc3339();
  json::object doc;
  std::string database;
  {
    auto conn = co_await master->acquire();
    auto tenant = co_await db::master::find_tenant(*conn, tenant_id);
    if (!tenant || (tenant->status != "active" && tenant->status != "suspended"))
      co_return make_error(errc::not_found, "no active or suspended tenant with this id");
    database = tenant->database_name;
    doc["format"] = format_version;
    doc["created_at"] = summary.created_at;
    doc["tenant"] = json::object{{"id", tenant->id},
                                 {"name", tenant->name},
                                 {"status", tenant->status},
                                 {"registration", tenant->registration},
                                 {"schema_version", tenant->schema_version},
                                 {"created_at", tenant->created_at}};
    const auto id_param = params(tenant_id);
    auto members = co_await conn->exec_params(members_sql, id_param);
    json::array member_rows;
    for (int i = 0; i < members.rows(); ++i)
      member_rows.push_back(json::object{{"account_id", members.string(i, 0)},
                                         {"email", members.string(i, 1)},
                                         {"password_hash", members.string(i, 2)},
                                         {"first_name", members.string(i, 3)},
                                         {"last_name", members.string(i, 4)},
                                         {"role", members.string(i, 5)},
                                         {"joined_at", members.string(i, 6)}});
    auto invitations = co_await conn->exec_params(invitations_sql, id_param);
    json::array invitation_rows;
    for (int i = 0; i < invitations.rows(); ++i) {
      json::object row{{"id", invitations.string(i, 0)},         {"email", invitations.string(i, 1)},
                       {"role", invitations.string(i, 2)},       {"token_hash", invitations.string(i, 3)},
                       {"created_at", invitations.string(i, 5)}, {"expires_at", invitations.string(i, 6)}};
      row["invited_by"] = invitations.is_null(i, 4) ? json::value(nullptr) : json::value(invitations.string(i, 4));
      invitation_rows.push_back(std::move(row));
    }
    summary.members = member_rows.size();
    summary.invitations = invitation_rows.size();
    doc["members"] = std::move(member_rows);
    doc["invitations"] = std::move(invitation_rows);
  }
  const std::string rows_json = json::serialize(doc);
  const auto settings = provisioning.settings().ddl_connection();  // the role that owns every object
  auto write = [=] { return write_backup(path, rows_json, settings, database); };
  summary.bytes = co_await offload(std::move(write));
  spdlog::info("tenant {}: backup written to {} ({} bytes, {} members)", tenant_id, path, summary.bytes,
               summary.members);
  co_return summary;
}

net::awaitable<result<restore_report>> restore_tenant(std::shared_ptr<db::pool> master, provisioner& provisioning,
                                                      const std::string& path,
                                                      const std::optional<std::string>& as_id) {
  auto read = [path] { return read_backup(path); };
  auto loaded = co_await offload(std::move(read));
  if (loaded.refused) co_return std::move(*loaded.refused);
  temporary_file dump{loaded.dump_path};
  const auto rows = decode_rows(loaded.rows);
  if (!rows) co_return make_error(errc::invalid_input, "the backup holds metadata this version cannot read");
  const std::string id = as_id.value_or(rows->id);
  if (auto problem = validation::check_tenant_id(id))
    co_return make_error(errc::invalid_input, "tenant id: " + *problem);
  const std::string database = provisioning.database_name(id);
  const auto& settings = provisioning.settings();

  // The provisioning lock makes this restore a live provisioning for reconcile(): if this
  // process dies, the 'provisioning' row and the database are rolled back. It runs on the
  // DDL pool: CREATE DATABASE needs the DDL role when one is configured.
  auto lock_conn = co_await provisioning.ddl_pool()->acquire();
  const std::string key = std::to_string(provisioning_lock_key(id));
  const std::string lock_statement = "SELECT pg_advisory_lock(" + key + ")";
  const std::string unlock_statement = "SELECT pg_advisory_unlock(" + key + ")";
  co_await lock_conn->exec(lock_statement);

  std::optional<error> refused;
  bool reused_row = false;  // the id belonged to a 'deleted' tenant
  if (auto existing = co_await db::master::find_tenant(*lock_conn, id)) {
    if (existing->status != "deleted") {
      refused = make_error(errc::tenant_exists, "tenant " + id + " exists (" + existing->status + ")");
    } else if (co_await db::master::database_exists(*lock_conn, database) ||
               co_await db::master::database_exists(*lock_conn, existing->database_name)) {
      refused = make_error(errc::tenant_exists, "the database of deleted tenant " + id + " still exists");
    } else {
      const auto p = params(id, rows->name, database);
      co_await lock_conn->exec_params(
          "UPDATE tenants SET status = 'provisioning', name = $2, database_name = $3, status_reason = NULL, "
          "status_changed_at = now(), updated_at = now() WHERE id = $1 AND status = 'deleted'",
          p);
      reused_row = true;
    }
  } else if (co_await db::master::database_exists(*lock_conn, database)) {
    refused = make_error(errc::tenant_exists, "database " + database + " exists without a tenant; not reused");
  } else if (!co_await db::master::insert_provisioning_tenant(*lock_conn, id, rows->name, database)) {
    refused = make_error(errc::tenant_exists, "tenant " + id + " exists");
  }
  if (refused) {
    co_await lock_conn->exec(unlock_statement);
    co_return std::move(*refused);
  }

  restore_report report;
  std::exception_ptr failure;
  bool database_created = false;
  bool database_foreign = false;
  try {
    const auto quoted = lock_conn->escape_identifier(database);
    std::string create = "CREATE DATABASE " + quoted + " TEMPLATE template0 ENCODING 'UTF8'";
    create += provisioning.owner_clause(*lock_conn);
    try {
      co_await lock_conn->exec(create);
    } catch (const db::pg_error& e) {
      database_foreign = e.sqlstate() == "42P04";  // duplicate_database: not ours to drop
      throw;
    }
    database_created = true;
    co_await lock_conn->exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + quoted + " FROM PUBLIC");
    co_await lock_conn->exec("GRANT CONNECT, TEMPORARY ON DATABASE " + quoted + " TO " +
                             lock_conn->escape_identifier(settings.tenant.user));

    // As the DDL role (which then owns every restored object), like migrations.
    auto args = connection_args(settings.ddl_connection());
    args.insert(args.end(), {"--no-owner", "--exit-on-error", "--single-transaction", "--dbname", database, dump.path});
    const auto tenant_settings = settings.ddl_connection();
    const auto program = find_pg_program("pg_restore");
    auto run = [=] { return run_program(program, args, tenant_settings.password); };
    const auto restored = co_await offload(std::move(run));
    if (restored.exit_code != 0)
      throw std::runtime_error("pg_restore into " + database + " failed (exit " + std::to_string(restored.exit_code) +
                               "): " + restored.errors);

    int version = 0;
    {
      db::connection_options options;
      options.conninfo = tenant_conninfo(settings.ddl_connection(), database, std::chrono::minutes(1));
      auto tenant_conn = co_await db::connection::connect(co_await net::this_coro::executor, options);
      version = co_await db::current_version(*tenant_conn);
      co_await provisioning.grant_runtime_access(*tenant_conn);
    }

    auto conn = co_await master->acquire();
    co_await conn->exec("BEGIN");
    const auto id_param = params(id);
    co_await conn->exec_params("DELETE FROM memberships WHERE tenant_id = $1", id_param);
    co_await conn->exec_params("DELETE FROM invitations WHERE tenant_id = $1", id_param);
    (void)co_await db::sessions::delete_tenant_sessions(*conn, id);  // a restored tenant starts with no session
    for (const auto& m : rows->members) {
      if (!co_await db::master::find_account(*conn, m.id)) {
        if (co_await db::master::find_account_by_email(*conn, m.email)) {
          report.skipped_members.push_back(m.email);
          continue;
        }
        const auto p = params(m.id, m.email, m.password_hash, m.first_name, m.last_name);
        co_await conn->exec_params(
            "INSERT INTO accounts (id, email, password_hash, first_name, last_name) VALUES ($1, $2, $3, $4, $5)", p);
      }
      const auto p = params(id, m.id, m.role, m.joined_at);
      co_await conn->exec_params(
          "INSERT INTO memberships (tenant_id, account_id, role, created_at) VALUES ($1, $2, $3, $4::timestamptz)", p);
      ++report.members;
    }
    for (const auto& i : rows->invitations) {
      const std::array<db::param, 7> p{
          db::param(i.id),        db::param(id),           db::param(i.email),
          db::param(i.role),      db::param(i.token_hash), i.invited_by.empty() ? db::param() : db::param(i.invited_by),
          db::param(i.expires_at)};
      auto inserted = co_await conn->exec_params(
          "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) "
          "VALUES ($1, $2, $3, $4, decode($5, 'hex'), (SELECT a.id FROM accounts a WHERE a.id = $6::uuid), "
          "$7::timestamptz) ON CONFLICT DO NOTHING",
          p);
      report.invitations += static_cast<std::size_t>(inserted.affected_rows());
    }
    const auto version_text = std::to_string(version);
    const auto p = params(id, rows->name, rows->registration, version_text);
    co_await conn->exec_params(
        "UPDATE tenants SET status = 'active', name = $2, registration = $3, schema_version = $4::integer, "
        "last_migration_error = NULL, status_reason = NULL, status_changed_at = now(), updated_at = now() "
        "WHERE id = $1",
        p);
    const std::string payload = "tenant:" + id;
    co_await db::master::notify_invalidation(*conn, payload);
    co_await conn->exec("COMMIT");
    auto restored_row = co_await db::master::find_tenant(*conn, id);
    if (!restored_row) throw std::runtime_error("tenant row vanished during restore");
    report.tenant = std::move(*restored_row);
  } catch (...) {
    failure = std::current_exception();
  }

  if (failure) {
    try {
      if (database_created || !database_foreign) co_await provisioning.drop_database(database);
      auto conn = co_await master->acquire();
      if (reused_row) {
        const auto p = params(id);
        co_await conn->exec_params("UPDATE tenants SET status = 'deleted', updated_at = now() WHERE id = $1", p);
      } else {
        co_await db::master::delete_tenant_row(*conn, id);
      }
    } catch (const std::exception& e) {
      spdlog::error("tenant {}: rollback after a failed restore did not finish: {}", id, e.what());
    }
  }
  if (!lock_conn->broken()) co_await lock_conn->exec(unlock_statement);
  if (failure) std::rethrow_exception(failure);
  spdlog::info("tenant {}: restored from {} ({} members, {} skipped)", id, path, report.members,
               report.skipped_members.size());
  co_return report;
}

}  // namespace tenantd::tenancy

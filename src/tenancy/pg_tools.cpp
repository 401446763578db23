// pg_dump / pg_restore child processes: posix_spawn with a minimal environment, stderr captured.
#include "tenancy/pg_tools.hpp"

#include "db/conninfo.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>

extern char** environ;

namespace tenantd::tenancy {
namespace net = boost::asio;
namespace fs = std::filesystem;

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

namespace {

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
  envp.reserve(env_strings.size() + 1);
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

std::vector<std::string> connection_args(const db::server_endpoint& s) {
  std::vector<std::string> args{"--no-password"};
  if (!s.host.empty()) args.insert(args.end(), {"--host", s.host});
  if (!s.port.empty()) args.insert(args.end(), {"--port", s.port});
  if (!s.user.empty()) args.insert(args.end(), {"--username", s.user});
  return args;
}

// --dbname's value: the database's name, or a conninfo when the server's URL asked for TLS.
std::string dbname_arg(const db::server_endpoint& s, const std::string& database) {
  if (s.sslmode.empty() && s.sslrootcert.empty()) return database;
  std::vector<std::pair<std::string, std::string>> keywords{{"dbname", database}};
  if (!s.sslmode.empty()) keywords.emplace_back("sslmode", s.sslmode);
  if (!s.sslrootcert.empty()) keywords.emplace_back("sslrootcert", s.sslrootcert);
  return db::make_conninfo(keywords);
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

net::awaitable<void> pg_dump(const db::server_endpoint& as, const std::string& database,
                             const std::string& archive_path) {
  auto args = connection_args(as);
  args.insert(args.end(), {"--format=custom", "--file", archive_path, "--dbname", dbname_arg(as, database)});
  const auto program = find_pg_program("pg_dump");
  const auto password = as.password;
  auto run = [program, args, password] { return run_program(program, args, password); };
  const auto dumped = co_await offload(std::move(run));
  if (dumped.exit_code != 0)
    throw std::runtime_error("pg_dump of " + database + " failed (exit " + std::to_string(dumped.exit_code) +
                             "): " + dumped.errors);
}

net::awaitable<void> pg_restore(const db::server_endpoint& as, const std::string& database,
                                const std::string& archive_path) {
  auto args = connection_args(as);
  args.insert(args.end(), {"--no-owner", "--exit-on-error", "--single-transaction", "--dbname",
                           dbname_arg(as, database), archive_path});
  const auto program = find_pg_program("pg_restore");
  const auto password = as.password;
  auto run = [program, args, password] { return run_program(program, args, password); };
  const auto restored = co_await offload(std::move(run));
  if (restored.exit_code != 0)
    throw std::runtime_error("pg_restore into " + database + " failed (exit " + std::to_string(restored.exit_code) +
                             "): " + restored.errors);
}

}  // namespace tenantd::tenancy

// CLI runner for e2e tests: posix_spawn with a controlled environment, output to a file.
#include "support/e2e_cli.hpp"

#include "support/pg_cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace tenantd::test {

cli_result run_cli(const e2e_server& server, const std::vector<std::string>& args, const env_overrides& extra) {
  std::map<std::string, std::string> env;
  for (const char* inherited : {"PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"})
    if (const char* v = std::getenv(inherited)) env[inherited] = v;
  env["MASTER_DATABASE_URL"] = app_url(server.master_database());
  env["JWT_SECRET"] = server.jwt_secret();
  env["ADMIN_TOKEN"] = server.admin_token();
  env["TENANT_DB_PREFIX"] = server.tenant_db_prefix();
  env["LOG_LEVEL"] = "warn";
  env["LOG_FORMAT"] = "text";
  for (const auto& [k, v] : extra) {
    if (v)
      env[k] = *v;
    else
      env.erase(k);
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const char* other_binary = std::getenv("TENANTD_E2E_BINARY");
  std::string binary = other_binary != nullptr && *other_binary != '\0' ? other_binary : TENANTD_BINARY;
  std::vector<std::string> arg_strings{"tenantd"};
  arg_strings.insert(arg_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  char out_path[] = "/tmp/tenantd-cli-XXXXXX";
  const int out_fd = ::mkostemp(out_path, O_CLOEXEC);
  if (out_fd < 0) throw std::runtime_error("mkstemp failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDERR_FILENO);
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_fd);
  if (spawned != 0) {
    ::unlink(out_path);
    throw std::runtime_error("cannot run " + binary);
  }
  cli_result result;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling with a deadline
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  std::ifstream in(out_path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  result.output = text.str();
  ::unlink(out_path);
  return result;
}

tenant_migrations_dir::tenant_migrations_dir(const std::string& v002_file_name, const std::string& v002_sql) {
  namespace fs = std::filesystem;
  path = fs::temp_directory_path() / ("tenantd-mig-" + unique_name("d"));
  fs::create_directories(path);
  fs::copy_file(fs::path(TENANTD_SOURCE_DIR) / "db/migrations/tenant/V001__users.sql", path / "V001__users.sql");
  std::ofstream(path / v002_file_name) << v002_sql;
}

tenant_migrations_dir::~tenant_migrations_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace tenantd::test

// Child-process launcher for tenantd: fork/exec with a controlled environment and working
// directory, port discovery from the log, orderly stop, and database clean-up.
#include "support/e2e_server.hpp"

#include "support/e2e_http_client.hpp"
#include "support/pg_cluster.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#ifndef TENANTD_BINARY
#error "TENANTD_BINARY must name the built tenantd executable"
#endif

namespace tenantd::test {
namespace {

using clock_type = std::chrono::steady_clock;

// Waits for the child up to `timeout`; the wait status, or nullopt if it is still running.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (clock_type::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling with a deadline
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

std::string random_token(std::size_t n) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
  return out;
}

e2e_server::e2e_server()
    : master_(unique_name("m_")),
      prefix_(unique_name("t") + "_"),
      jwt_secret_(random_token(48)),
      admin_token_(random_token(40)) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tenantd-e2e-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  work_dir_ = tmpl;
  log_path_ = work_dir_ + "/server.log";
}

e2e_server::e2e_server(const pg_cluster_info& cluster) : e2e_server() { cluster_ = cluster; }

e2e_server::~e2e_server() {
  if (pid_ > 0) (void)stop();
  if (owns_databases_) drop_databases();
  std::error_code ec;
  if (std::getenv("TENANTD_E2E_KEEP") == nullptr) std::filesystem::remove_all(work_dir_, ec);
}

void e2e_server::create_master_database() {
  if (master_created_) return;
  const std::string owner = master_owner_.empty() ? cluster().app_user : master_owner_;
  admin_exec(cluster(), "CREATE DATABASE " + master_ + " OWNER " + owner);
  master_created_ = true;
}

void e2e_server::share_databases_with(const e2e_server& primary) {
  cluster_ = primary.cluster_;
  master_ = primary.master_;
  prefix_ = primary.prefix_;
  jwt_secret_ = primary.jwt_secret_;
  admin_token_ = primary.admin_token_;
  master_created_ = true;
  owns_databases_ = false;
}

void e2e_server::start(const env_overrides& overrides) {
  exited_on_its_own_.reset();
  create_master_database();
  std::map<std::string, std::string> env;
  for (const char* inherited : {"PATH", "HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"})
    if (const char* v = std::getenv(inherited)) env[inherited] = v;
  env["MASTER_DATABASE_URL"] = app_url(cluster(), master_);
  env["JWT_SECRET"] = jwt_secret_;
  env["HOST"] = "127.0.0.1";
  env["PORT"] = "0";
  env["LOG_LEVEL"] = "info";
  env["LOG_FORMAT"] = "text";
  env["TENANT_DB_PREFIX"] = prefix_;
  env["TENANT_SIGNUP"] = "open";
  env["ADMIN_TOKEN"] = admin_token_;
  env["LOGIN_MAX_FAILURES_PER_ACCOUNT"] = "1000";
  env["LOGIN_MAX_FAILURES_PER_CLIENT"] = "1000";
  env["TENANT_CREATES_PER_CLIENT"] = "1000";
  env["LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR"] = "1000";
  env["REGISTER_PER_CLIENT"] = "1000";
  // Request quotas off: a test's request rate depends on the machine's speed, so a default
  // quota would make a test pass or fail by it (a TSan run once got 429s this way). Tests of
  // the quotas set their own rates in server_env().
  env["TENANT_REQUESTS_PER_SECOND"] = "0";
  env["SESSION_REQUESTS_PER_SECOND"] = "0";
  env["LOGIN_SUCCESSES_PER_ACCOUNT"] = "1000";
  env["LOGIN_SUCCESSES_PER_CLIENT"] = "1000";
  for (const auto& [k, v] : overrides) {
    if (v)
      env[k] = *v;
    else
      env.erase(k);
  }
  if (const auto it = env.find("JWT_SECRET"); it != env.end()) jwt_secret_ = it->second;
  if (const auto it = env.find("ADMIN_TOKEN"); it != env.end()) admin_token_ = it->second;

  // Everything the child needs is prepared before fork(): it only calls async-signal-safe functions.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  // TENANTD_E2E_BINARY runs the suite against another build of the server.
  const char* other_binary = std::getenv("TENANTD_E2E_BINARY");
  std::string binary = other_binary != nullptr && *other_binary != '\0' ? other_binary : TENANTD_BINARY;
  std::string arg0 = "tenantd";
  std::string arg1 = "serve";
  std::vector<char*> argv{arg0.data(), arg1.data(), nullptr};

  // A restarted server appends to the same log: look for its listening line after this point.
  const std::size_t log_offset = log_text().size();
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path_);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
    if (::getppid() != parent) ::_exit(127);
    if (::chdir(work_dir_.c_str()) != 0) ::_exit(126);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::execve(binary.c_str(), argv.data(), envp.data());
    ::_exit(125);
  }
  ::close(log_fd);
  pid_ = pid;

  // HOST is 127.0.0.1 unless a test binds another address (0.0.0.0 is reachable on 127.0.0.1 too).
  static const std::regex listening(R"(tenantd listening on \S+:([0-9]+))");
  const auto deadline = clock_type::now() + std::chrono::seconds(30);
  for (;;) {
    std::smatch m;
    const std::string full = log_text();
    const std::string text = full.size() > log_offset ? full.substr(log_offset) : std::string();
    if (std::regex_search(text, m, listening)) {
      port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
      return;
    }
    if (const auto status = wait_child(pid_, std::chrono::milliseconds(20))) {
      pid_ = -1;
      throw std::runtime_error("tenantd " + describe_status(*status) + " before listening; log:\n" + log_tail());
    }
    if (clock_type::now() >= deadline) {
      kill();
      throw std::runtime_error("tenantd did not print its listening line within 30 s; log:\n" + log_tail());
    }
  }
}

bool e2e_server::wait_ready(std::chrono::milliseconds timeout) const {
  http_client client(port_);
  client.set_checks(false);
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    try {
      if (client.get("/readyz").status == 200) return true;
    } catch (const std::exception&) {  // not accepting yet
    }
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling with a deadline
  }
}

std::optional<int> e2e_server::stop() {
  if (pid_ <= 0) return std::nullopt;
  ::kill(pid_, SIGTERM);
  auto status = wait_child(pid_, std::chrono::seconds(10));
  if (!status) {
    ::kill(pid_, SIGKILL);
    status = wait_child(pid_, std::chrono::seconds(10));
  }
  pid_ = -1;
  return status;
}

void e2e_server::kill(int signal) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  if (wait_child(pid_, std::chrono::seconds(10))) pid_ = -1;
}

bool e2e_server::running() {
  if (pid_ <= 0) return false;
  if (const auto status = wait_child(pid_, std::chrono::milliseconds(0))) {
    if (*status >= 0) exited_on_its_own_ = status;  // -1: reaped by the test itself
    pid_ = -1;
    return false;
  }
  return true;
}

std::string e2e_server::describe_exit(int status) { return describe_status(status); }

std::string e2e_server::unclean_exit(int status) {
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  return "tenantd " + describe_status(status);
}

std::string e2e_server::log_text() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string e2e_server::log_tail(std::size_t lines) const {
  const std::string text = log_text();
  std::size_t pos = text.size();
  for (std::size_t n = 0; n <= lines && pos > 0; ++n) {
    const auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      pos = 0;
      break;
    }
    pos = nl;
  }
  return text.substr(pos);
}

void e2e_server::drop_databases() noexcept {
  if (!master_created_) return;
  try {
    const auto rows = admin_query(cluster(), "SELECT datname FROM pg_database WHERE datname = '" + master_ +
                                                 "' OR starts_with(datname, '" + prefix_ + "')");
    for (const auto& row : rows) {
      try {
        admin_exec(cluster(), "ALTER DATABASE \"" + row[0] + "\" IS_TEMPLATE false");
      } catch (...) {  // not a template, or already gone
      }
      try {
        admin_exec(cluster(), "DROP DATABASE IF EXISTS \"" + row[0] + "\" WITH (FORCE)");
      } catch (...) {  // the cluster is thrown away after the run anyway
      }
    }
    for (const auto& row :
         admin_query(cluster(), "SELECT rolname FROM pg_roles WHERE starts_with(rolname, '" + prefix_ + "')")) {
      try {
        admin_exec(cluster(), "DROP ROLE IF EXISTS \"" + row[0] + "\"");
      } catch (...) {  // still owns something elsewhere
      }
    }
  } catch (...) {  // clean-up must never fail a test
  }
}

void end_server_checked(e2e_server& server, std::size_t log_lines) {
  if (server.running()) {
    const auto status = server.stop();
    if (status) {
      EXPECT_EQ(e2e_server::unclean_exit(*status), "") << "at shutdown";
    }
  } else if (const auto status = server.exited_on_its_own()) {
    ADD_FAILURE() << "tenantd " << e2e_server::describe_exit(*status)
                  << " during the test, without being asked to stop";
  }
  const std::string log = server.log_text();
  for (const char* marker :
       {"AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "ThreadSanitizer"}) {
    EXPECT_EQ(log.find(marker), std::string::npos) << "tenantd log reports " << marker << ":\n" << server.log_tail(200);
  }
  if (testing::Test::HasFailure())
    std::cerr << "---- tenantd log tail (" << server.log_path() << ") ----\n" << server.log_tail(log_lines) << "\n";
}

}  // namespace tenantd::test

// Private fault-test clusters driven through pg_cluster.sh, and /proc readings.
#include "support/fault_cluster.hpp"

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#ifndef TENANTD_SOURCE_DIR
#error "TENANTD_SOURCE_DIR must name the source tree (for tests/support/pg_cluster.sh)"
#endif

namespace tenantd::test {
namespace {

std::string script() { return std::string(TENANTD_SOURCE_DIR) + "/tests/support/pg_cluster.sh"; }

std::string shell_quoted(std::string_view word) {
  std::string out = "'";
  for (const char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace

command_result run_command(const std::string& command_line) {
  command_result result;
  const std::string with_stderr = command_line + " 2>&1";
  FILE* pipe = ::popen(with_stderr.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed for: " + command_line);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

fault_cluster::fault_cluster(fault_cluster_options options) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "tenantd-fault-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl + "/cluster";
  const std::string command = "PG_MAX_CONNECTIONS=" + std::to_string(options.max_connections) +
                              " PG_LOG_CONNECTIONS=" + (options.log_connections ? "on" : "off") +
                              " PG_TLS=" + (options.tls ? "on" : "off") + " " + shell_quoted(script()) + " start " +
                              shell_quoted(dir_);
  const auto r = run_command(command);
  if (r.status != 0) throw std::runtime_error("cannot start a private PostgreSQL cluster:\n" + r.output);
  info_ = read_pg_cluster_env(dir_ + "/env");
  started_ = true;
}

fault_cluster::~fault_cluster() {
  try {
    if (paused_) resume();  // a stopped postmaster would not hear pg_ctl stop
    // Immediate: nothing in it is worth a checkpoint. `stop` removes the data directory.
    (void)run_command(shell_quoted(script()) + " ctl " + shell_quoted(dir_) + " stop -m immediate");
    (void)run_command(shell_quoted(script()) + " stop " + shell_quoted(dir_));
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ec);
  } catch (...) {  // clean-up must never end the test run
  }
}

void fault_cluster::ctl(const std::vector<std::string>& args) {
  std::string command = shell_quoted(script()) + " ctl " + shell_quoted(dir_);
  for (const auto& a : args) command += " " + shell_quoted(a);
  const auto r = run_command(command);
  if (r.status != 0) throw std::runtime_error("pg_ctl failed: " + command + "\n" + r.output);
}

void fault_cluster::stop(std::string_view mode) { ctl({"stop", "-m", std::string(mode)}); }

void fault_cluster::start() { ctl({"start"}); }

void fault_cluster::restart(std::string_view mode) { ctl({"restart", "-m", std::string(mode)}); }

namespace {
// The postmaster (first line of postmaster.pid) and every process whose parent it is.
std::vector<pid_t> cluster_processes(const std::string& data_dir) {
  std::ifstream pid_file(data_dir + "/postmaster.pid");
  long postmaster = 0;
  if (!(pid_file >> postmaster) || postmaster <= 0)
    throw std::runtime_error("no postmaster.pid in " + data_dir + ": is the cluster running?");
  std::vector<pid_t> pids{static_cast<pid_t>(postmaster)};
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const auto name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    const auto close = line.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    long parent = 0;
    if (rest >> state >> parent && parent == postmaster) pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}
}  // namespace

void fault_cluster::pause() {
  paused_ = true;
  for (const auto pid : cluster_processes(info_.data_dir)) ::kill(pid, SIGSTOP);
}

void fault_cluster::resume() {
  for (const auto pid : cluster_processes(info_.data_dir)) ::kill(pid, SIGCONT);
  paused_ = false;
}

std::vector<std::vector<std::string>> fault_cluster::query(const std::string& sql, const std::string& dbname) const {
  return admin_query(info_, sql, dbname);
}

std::string fault_cluster::log_text() const {
  std::ifstream in(info_.log_path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::size_t fault_cluster::count_lines(std::string_view text, std::string_view needle, std::size_t from) {
  std::size_t count = 0;
  for (std::size_t pos = text.find(needle, std::min(from, text.size())); pos != std::string_view::npos;
       pos = text.find(needle, pos + needle.size()))
    ++count;
  return count;
}

held_session::held_session(const pg_cluster_info& cluster, const std::string& user, const std::string& dbname)
    : conn_(nullptr) {
  const std::string conninfo = "host=" + cluster.socket_dir + " port=" + std::to_string(cluster.port) +
                               " user=" + user + " dbname=" + dbname + " connect_timeout=5";
  conn_ = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    throw std::runtime_error(message);
  }
}

held_session::~held_session() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void held_session::exec(const std::string& sql) {
  PGresult* res = PQexec(conn_, sql.c_str());
  const auto st = PQresultStatus(res);
  const std::string message = PQresultErrorMessage(res);
  PQclear(res);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) throw std::runtime_error(message + " in: " + sql);
}

process_usage usage_of(pid_t pid) {
  process_usage usage;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) usage.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++usage.fds;
  return usage;
}

}  // namespace tenantd::test

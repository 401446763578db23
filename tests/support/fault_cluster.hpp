// A private PostgreSQL cluster for one fault test (tests/support/pg_cluster.sh in a temporary
// directory), which the test may stop, crash, restart or fill up without disturbing the ctest
// fixture cluster other tests share. Also: the resource usage of a process, from /proc.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/pg_cluster.hpp"

typedef struct pg_conn PGconn;

namespace tenantd::test {

struct fault_cluster_options {
  int max_connections{100};     // postgresql.conf max_connections (3 are reserved for superusers)
  bool log_connections{false};  // "connection received" lines in the server log, to count attempts
  bool tls{false};              // ssl = on, with a certificate for 127.0.0.1 from a CA of its own (info().ca_file)
};

class fault_cluster {
 public:
  // initdb + start (up to 60 s); throws std::runtime_error with the script's output on failure.
  explicit fault_cluster(fault_cluster_options options = {});
  // Stops the cluster (immediate) and removes its files.
  ~fault_cluster();
  fault_cluster(const fault_cluster&) = delete;
  fault_cluster& operator=(const fault_cluster&) = delete;

  const pg_cluster_info& info() const noexcept { return info_; }

  // pg_ctl stop -m <mode> (smart|fast|immediate), waiting until it is down.
  void stop(std::string_view mode = "fast");
  // pg_ctl start, waiting until it accepts connections.
  void start();
  // pg_ctl restart -m <mode>, waiting until it accepts connections again.
  void restart(std::string_view mode = "fast");
  // SIGSTOP / SIGCONT to the postmaster and every process it started: a server that stops
  // answering without closing a connection (a paused VM, a hung host), and comes back.
  void pause();
  void resume();

  // Superuser SQL over the unix socket (never counted as a TCP connection attempt).
  std::vector<std::vector<std::string>> query(const std::string& sql, const std::string& dbname = "postgres") const;
  void exec(const std::string& sql, const std::string& dbname = "postgres") const { (void)query(sql, dbname); }

  // The server log so far (pg_ctl -l); with log_connections, one "connection received:
  // host=127.0.0.1" line per TCP connection attempt (tenantd connects over TCP, tests over the socket).
  std::string log_text() const;
  // Lines of the log that contain `needle`, counted from byte `from` of the log.
  static std::size_t count_lines(std::string_view text, std::string_view needle, std::size_t from = 0);

 private:
  void ctl(const std::vector<std::string>& args);
  std::string dir_;
  pg_cluster_info info_;
  bool started_{false};
  bool paused_{false};
};

// One blocking libpq session over the unix socket (trust), kept open to hold locks or
// connection slots. Throws std::runtime_error with PostgreSQL's message when refused.
class held_session {
 public:
  held_session(const pg_cluster_info& cluster, const std::string& user, const std::string& dbname);
  ~held_session();
  held_session(held_session&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  held_session& operator=(held_session&&) = delete;
  held_session(const held_session&) = delete;
  held_session& operator=(const held_session&) = delete;
  // Runs SQL (may hold several statements); throws std::runtime_error on an error.
  void exec(const std::string& sql);

 private:
  PGconn* conn_;
};

// A process's resident memory and open file descriptors, from /proc/<pid>.
struct process_usage {
  long rss_kib{0};
  std::size_t fds{0};
};
process_usage usage_of(pid_t pid);

// Runs a command line through /bin/sh; its exit status and combined output.
struct command_result {
  int status{-1};
  std::string output;
};
command_result run_command(const std::string& command_line);

}  // namespace tenantd::test

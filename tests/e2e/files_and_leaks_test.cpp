// What the server writes and shows beyond the API: backup files readable by their owner only
// whatever the umask, no server path in any answer, `tenantd doctor` warning about a .env
// others can read, and /metrics on the main port only for loopback peers.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace tenantd::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

unsigned mode_of(const fs::path& p) {
  struct ::stat info {};
  if (::stat(p.c_str(), &info) != 0) return 07777;
  return static_cast<unsigned>(info.st_mode) & 07777U;
}

// ---- backups ---------------------------------------------------------------------------

class backup_files : public e2e_test {
 protected:
  backup_files() : dir_(fs::temp_directory_path() / unique_name("backups_")) {
    fs::create_directories(dir_);
    fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);  // 0755, as a default mkdir
  }

 public:
  ~backup_files() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 protected:
  env_overrides server_env() const override { return {{"BACKUP_DIR", dir_.string()}}; }
  // The server inherits an umask that lets everyone read what it creates.
  void prepare_server(e2e_server&) override { saved_umask_ = ::umask(0); }
  void SetUp() override {
    e2e_test::SetUp();
    ::umask(saved_umask_);
  }

  fs::path dir_;
  mode_t saved_umask_{022};
};

TEST_F(backup_files, backups_are_0600_in_a_0700_directory_whatever_the_umask) {
  (void)tenant_with_owner("safe_co");
  const auto r =
      client().send_json("POST", "/admin/tenants/safe_co/backup", json::object{}, bearer(server().admin_token()));
  ASSERT_EQ(r.status, 201u) << r.describe();
  const auto file = dir_ / json_string(r.json(), "backup");
  ASSERT_TRUE(fs::exists(file)) << file;
  EXPECT_EQ(mode_of(file), 0600U) << "the backup holds every member's password hash";
  EXPECT_EQ(mode_of(dir_), 0700U);
  for (const auto& entry : fs::directory_iterator(dir_))
    EXPECT_EQ(entry.path(), file) << "a temporary file was left behind";
}

TEST_F(backup_files, restoring_an_unknown_backup_names_no_server_path) {
  const auto r = client().send_json("POST", "/admin/tenants/lost_co/restore",
                                    json::object{{"backup", "lost_co-20260101T000000Z-abcdef.tenantd-backup"}},
                                    bearer(server().admin_token()));
  expect_problem(r, 404, "not_found");
  const auto detail = json_string(r.json(), "detail");
  EXPECT_EQ(detail.find('/'), std::string::npos) << detail;
  EXPECT_EQ(r.body.find(dir_.string()), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("backups"), std::string::npos) << r.body;
}

TEST_F(backup_files, restoring_a_file_that_is_not_a_backup_names_no_server_path) {
  std::ofstream(dir_ / "junk.tenantd-backup") << "not a backup at all";
  const auto r = client().send_json("POST", "/admin/tenants/junk_co/restore",
                                    json::object{{"backup", "junk.tenantd-backup"}}, bearer(server().admin_token()));
  expect_problem(r, 400);
  EXPECT_EQ(json_string(r.json(), "detail").find('/'), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(dir_.string()), std::string::npos) << r.body;
}

// ---- doctor and .env ---------------------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `tenantd doctor` in `dir` with only PATH (and sanitizer options) in its environment.
std::string doctor_output(const fs::path& dir) {
  std::string command = "cd " + shell_quote(dir.string()) + " && env -i";
  for (const char* inherited : {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"})
    if (const char* v = std::getenv(inherited)) command += std::string(" ") + inherited + "=" + shell_quote(v);
  command += " " + shell_quote(TENANTD_BINARY) + " doctor 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buf[4096];
  while (const auto n = std::fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  (void)::pclose(pipe);
  return output;
}

bool has_line(const std::string& output, std::string_view prefix) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with(prefix)) return true;
  return false;
}

class doctor_dotenv : public e2e_test {};

TEST_F(doctor_dotenv, warns_when_others_can_read_the_dotenv_file) {
  const auto dir = fs::temp_directory_path() / unique_name("dotenv_");
  fs::create_directories(dir);
  const auto dotenv = dir / ".env";
  std::ofstream(dotenv) << "MASTER_DATABASE_URL=" << app_url(server().master_database()) << "\n"
                        << "JWT_SECRET=" << server().jwt_secret() << "\n"
                        << "TENANT_DB_PREFIX=" << server().tenant_db_prefix() << "\n";
  fs::permissions(
      dotenv, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);  // 0644
  const auto loose = doctor_output(dir);
  EXPECT_TRUE(has_line(loose, "warn  .env:")) << loose;
  EXPECT_NE(loose.find("chmod 600 .env"), std::string::npos) << loose;

  fs::permissions(dotenv, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace);
  const auto tight = doctor_output(dir);
  EXPECT_FALSE(has_line(tight, "warn  .env:")) << tight;
  EXPECT_TRUE(has_line(tight, "ok    .env:")) << tight;
  fs::remove_all(dir);
}

// ---- /metrics on the main port -------------------------------------------------------------

// A local IPv4 address that is not loopback, or nullopt when the machine has none.
std::optional<std::string> non_loopback_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (auto* a = list; a != nullptr && !found; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if ((ntohl(in->sin_addr.s_addr) >> 24) == 127) continue;
    char text[INET_ADDRSTRLEN];
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

// GET `target` from `address`:`port` (so the server sees `address` as the peer); the status.
unsigned status_via(const std::string& address, std::uint16_t port, const std::string& target,
                    const std::string& extra_headers = {}) {
  namespace net = boost::asio;
  net::io_context io;
  net::ip::tcp::socket socket(io);
  socket.connect({net::ip::make_address(address), port});
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: tenantd\r\nConnection: close\r\n" + extra_headers + "\r\n";
  net::write(socket, net::buffer(request));
  std::string reply;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(reply), ec);  // until the server closes
  if (reply.size() < 12 || !reply.starts_with("HTTP/1.1 ")) return 0;
  return static_cast<unsigned>(std::stoi(reply.substr(9, 3)));
}

class metrics_on_main_port : public e2e_test {
 protected:
  env_overrides server_env() const override {
    return {{"HOST", "0.0.0.0"}, {"METRICS_PORT", std::nullopt}, {"TRUSTED_PROXIES", "0.0.0.0/0"}};
  }
};

TEST_F(metrics_on_main_port, loopback_clients_get_metrics) {
  EXPECT_EQ(status_via("127.0.0.1", server().port(), "/metrics"), 200u);
  http_client plain(server().port());
  plain.set_checks(false);  // Prometheus text, not the API's JSON
  const auto r = plain.get("/metrics");
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_NE(r.body.find("tenantd_"), std::string::npos) << r.body.substr(0, 400);
}

TEST_F(metrics_on_main_port, other_peers_get_404_whatever_they_forward) {
  const auto address = non_loopback_address();
  if (!address) GTEST_SKIP() << "this machine has no non-loopback IPv4 address to connect from";
  EXPECT_EQ(status_via(*address, server().port(), "/metrics"), 404u) << "peer " << *address;
  EXPECT_EQ(status_via(*address, server().port(), "/metrics", "X-Forwarded-For: 127.0.0.1\r\n"), 404u)
      << "X-Forwarded-For must not make a peer loopback";
  EXPECT_EQ(status_via(*address, server().port(), "/healthz"), 200u) << "the server does answer that peer";
}

}  // namespace
}  // namespace tenantd::test

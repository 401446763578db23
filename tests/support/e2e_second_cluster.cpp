// A second private PostgreSQL cluster for tests of several database servers.
#include "support/e2e_second_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace tenantd::test {

second_cluster::second_cluster(fault_cluster_options options)
    : cluster_(std::make_unique<fault_cluster>(options)), role_(unique_name("srv_")), password_(unique_name("pw-")) {
  cluster_->exec("CREATE ROLE " + role_ + " LOGIN CREATEDB PASSWORD '" + password_ + "'");
}

std::string second_cluster::url() const {
  return "postgresql://" + role_ + ":" + password_ + "@" + info().host + ":" + std::to_string(info().port);
}

bool second_cluster::has_database(const std::string& name) const {
  return !query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'").empty();
}

int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace tenantd::test

// Blocking HTTP/1.1 client over POSIX sockets with poll() deadlines; Beast's parser reads
// the responses. Every response goes through check_response_hygiene.
#include "support/e2e_http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tenantd::test {
namespace {

namespace http = boost::beast::http;
using clock_type = std::chrono::steady_clock;

constexpr auto io_timeout = std::chrono::seconds(30);

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool iequals(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

// Owns one connected socket.
class socket_handle {
 public:
  explicit socket_handle(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed: " + std::strerror(err));
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~socket_handle() { ::close(fd_); }
  socket_handle(const socket_handle&) = delete;
  socket_handle& operator=(const socket_handle&) = delete;

  // Sends everything; false if the peer stopped accepting (closed or reset) or the deadline passed.
  bool send_all(std::string_view data, clock_type::time_point deadline) const {
    while (!data.empty()) {
      if (!wait_for(POLLOUT, deadline)) return false;
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Receives some bytes: >0 count, 0 on orderly close or reset, -1 on timeout.
  long receive(char* out, std::size_t size, clock_type::time_point deadline) const {
    for (;;) {
      if (!wait_for(POLLIN, deadline)) return -1;
      const auto n = ::recv(fd_, out, size, 0);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) return 0;  // reset: treat like a close
      return static_cast<long>(n);
    }
  }

  void shutdown_write() const { ::shutdown(fd_, SHUT_WR); }

 private:
  bool wait_for(short events, clock_type::time_point deadline) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  }

  int fd_{-1};
};

http_response to_response(const http::response<http::string_body>& msg) {
  http_response out;
  out.status = msg.result_int();
  for (const auto& field : msg) out.headers.emplace_back(lower(field.name_string()), std::string(field.value()));
  out.body = msg.body();
  return out;
}

// Parses one response from `data`, consuming what it used. nullopt if incomplete/invalid.
std::optional<http_response> parse_response(std::string& data, bool head, bool eof) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(64u * 1024u * 1024u);
  parser.header_limit(1024u * 1024u);
  if (head) parser.skip(true);
  boost::beast::error_code ec;
  std::size_t used = 0;
  while (used < data.size() && !parser.is_done()) {
    const auto n = parser.put(boost::asio::const_buffer(data.data() + used, data.size() - used), ec);
    used += n;
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) return std::nullopt;
  }
  if (!parser.is_done() && eof) {
    parser.put_eof(ec);
    if (ec) return std::nullopt;
  }
  if (!parser.is_done()) return std::nullopt;
  data.erase(0, used);
  return to_response(parser.get());
}

std::string read_response_bytes_and_parse(const socket_handle& sock, bool head, http_response& out,
                                          clock_type::time_point deadline) {
  std::string data;
  std::array<char, 16384> chunk{};
  bool eof = false;
  for (;;) {
    std::string copy = data;
    if (auto parsed = parse_response(copy, head, eof)) {
      out = std::move(*parsed);
      return {};
    }
    if (eof) return "connection closed before a complete response; received: " + data.substr(0, 2000);
    const auto n = sock.receive(chunk.data(), chunk.size(), deadline);
    if (n < 0) return "timed out waiting for the response; received: " + data.substr(0, 2000);
    if (n == 0) {
      eof = true;
      if (data.empty()) return "connection closed without a response";
      continue;
    }
    data.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

// Text that betrays SQL or PostgreSQL internals when it appears in a response body.
constexpr std::array<std::string_view, 13> leak_markers = {
    "SELECT ",      "INSERT ",  "UPDATE ",       "DELETE FROM", "ERROR:",     "duplicate key", "violates",
    "syntax error", "SQLSTATE", "postgresql://", "libpq",       "constraint", "relation \""};

bool has_pg_identifier(std::string_view text) {
  for (std::size_t i = text.find("pg_"); i != std::string_view::npos; i = text.find("pg_", i + 1)) {
    if (i + 3 < text.size() && std::islower(static_cast<unsigned char>(text[i + 3]))) return true;
  }
  return false;
}

}  // namespace

std::optional<std::string> http_response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::vector<std::string> http_response::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) out.push_back(v);
  return out;
}

boost::json::value http_response::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) {
    ADD_FAILURE() << "response body is not JSON: " << describe();
    return nullptr;
  }
  return v;
}

std::string http_response::describe() const {
  std::string out = "HTTP " + std::to_string(status) + "\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\n";
  out += "\n" + body.substr(0, 4000);
  return out;
}

std::optional<http_response> raw_exchange_result::first_response() const {
  std::string copy = bytes;
  return parse_response(copy, false, true);
}

http_response http_client::request(std::string_view method, std::string_view target, const header_list& headers,
                                   std::optional<std::string> body) const {
  const auto named = [&](std::string_view name) {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return iequals(h.first, name); });
  };
  std::string text;
  text.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!named("Host")) text += "Host: 127.0.0.1:" + std::to_string(port_) + "\r\n";
  for (const auto& [k, v] : headers) text += k + ": " + v + "\r\n";
  if (body && !named("Content-Length") && !named("Transfer-Encoding"))
    text += "Content-Length: " + std::to_string(body->size()) + "\r\n";
  text += "\r\n";
  if (body) text += *body;

  const auto deadline = clock_type::now() + io_timeout;
  socket_handle sock(port_);
  (void)sock.send_all(text, deadline);  // a server may answer (413, 431) before reading it all
  http_response response;
  const auto failure = read_response_bytes_and_parse(sock, method == "HEAD", response, deadline);
  if (!failure.empty()) {
    ADD_FAILURE() << std::string(method) << " " << std::string(target) << ": " << failure;
    return response;
  }
  if (checks_) check_response_hygiene(method, target, text, response);
  return response;
}

http_response http_client::send_json(std::string_view method, std::string_view target, const boost::json::value& body,
                                     const header_list& headers) const {
  header_list all = headers;
  const bool typed =
      std::any_of(all.begin(), all.end(), [](const auto& h) { return iequals(h.first, "Content-Type"); });
  if (!typed) all.emplace_back("Content-Type", "application/json");
  return request(method, target, all, boost::json::serialize(body));
}

raw_exchange_result http_client::exchange_raw(std::string_view bytes, std::chrono::milliseconds timeout) const {
  const auto deadline = clock_type::now() + timeout;
  socket_handle sock(port_);
  (void)sock.send_all(bytes, deadline);
  raw_exchange_result out;
  std::array<char, 16384> chunk{};
  for (;;) {
    const auto n = sock.receive(chunk.data(), chunk.size(), deadline);
    if (n < 0) break;
    if (n == 0) {
      out.closed = true;
      break;
    }
    out.bytes.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return out;
}

void check_response_hygiene(std::string_view method, std::string_view target, std::string_view request_text,
                            const http_response& r, bool allow_server_error) {
  const std::string where = std::string(method) + " " + std::string(target);
  EXPECT_TRUE(allow_server_error || (r.status != 500 && (r.status < 500 || r.status == 503)))
      << where << " answered a server error:\n"
      << r.describe();
  EXPECT_TRUE(r.has_header("x-request-id")) << where << " has no X-Request-Id:\n" << r.describe();
  if (const auto server = r.header("server")) {
    EXPECT_TRUE(std::none_of(server->begin(), server->end(), [](unsigned char c) { return std::isdigit(c); }))
        << where << " Server header names a version: " << *server;
  }
  for (const auto marker : leak_markers) {
    if (r.body.find(marker) != std::string::npos && request_text.find(marker) == std::string_view::npos)
      ADD_FAILURE() << where << " leaks internal text \"" << marker << "\":\n" << r.describe();
  }
  // Only error bodies: a success body carries random tokens (base64url), which can contain
  // "pg_" followed by a letter by chance.
  if (r.status >= 400 && has_pg_identifier(r.body) && !has_pg_identifier(request_text))
    ADD_FAILURE() << where << " leaks a pg_ identifier:\n" << r.describe();

  if (method == "HEAD" || r.status < 400 || target.starts_with("/readyz")) {
    if (!r.body.empty() && r.status < 400) {
      EXPECT_TRUE(r.header_or_empty("content-type").starts_with("application/json"))
          << where << " 2xx body is not application/json:\n"
          << r.describe();
    }
    return;
  }
  // Errors are RFC 9457 problem details whose request_id is the X-Request-Id.
  EXPECT_TRUE(r.header_or_empty("content-type").starts_with("application/problem+json"))
      << where << " error is not application/problem+json:\n"
      << r.describe();
  boost::system::error_code ec;
  const auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << where << " error body is not a JSON object:\n" << r.describe();
    return;
  }
  const auto& o = v.as_object();
  for (const char* key : {"type", "title", "code", "detail", "request_id"}) {
    const auto* f = o.if_contains(key);
    EXPECT_TRUE(f != nullptr && f->is_string()) << where << " problem lacks string \"" << key << "\":\n"
                                                << r.describe();
  }
  const auto* st = o.if_contains("status");
  EXPECT_TRUE(st != nullptr && st->is_int64() && st->as_int64() == static_cast<std::int64_t>(r.status))
      << where << " problem status differs from the HTTP status:\n"
      << r.describe();
  const auto* rid = o.if_contains("request_id");
  if (rid != nullptr && rid->is_string()) {
    EXPECT_EQ(std::string(rid->as_string()), r.header_or_empty("x-request-id"))
        << where << " problem request_id differs from X-Request-Id";
  }
}

void expect_problem(const http_response& r, unsigned status, std::string_view code) {
  EXPECT_EQ(r.status, status) << r.describe();
  EXPECT_TRUE(r.header_or_empty("content-type").starts_with("application/problem+json")) << r.describe();
  boost::system::error_code ec;
  const auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a problem+json body:\n" << r.describe();
    return;
  }
  if (!code.empty()) {
    const auto* c = v.as_object().if_contains("code");
    EXPECT_TRUE(c != nullptr && c->is_string() && c->as_string() == code) << "expected code " << code << ":\n"
                                                                          << r.describe();
  }
}

}  // namespace tenantd::test

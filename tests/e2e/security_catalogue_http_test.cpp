// Security catalogue, HTTP surface (S22-S40): path variants with a token, field types and
// path ids, NUL and surrogates, methods, injection payloads in every field, size limits,
// smuggling variants, Host, slow clients, security headers on every status, and the
// audit trail of auth failures. Complements http_protocol, error_hygiene and users tests.
#include "e2e/security_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
using namespace security;
using clock_type = std::chrono::steady_clock;
using security_http = e2e_test;

std::string percent_encode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::size_t count_responses(const std::string& bytes) {
  std::size_t n = 0;
  for (auto pos = bytes.find("HTTP/1."); pos != std::string::npos; pos = bytes.find("HTTP/1.", pos + 1)) ++n;
  return n;
}

// The set of field names in a validation problem.
std::vector<std::string> error_fields(const http_response& r) {
  std::vector<std::string> out;
  const auto errors = json_field(r.json(), "errors");
  if (errors.is_array())
    for (const auto& e : errors.as_array()) out.push_back(json_string(e, "field"));
  return out;
}

bool names_field(const http_response& r, const std::string& field) {
  const auto f = error_fields(r);
  return std::find(f.begin(), f.end(), field) != f.end();
}

TEST_F(security_http, s22_path_variants_with_a_valid_token_reach_no_other_route) {
  const auto owner = tenant_with_owner("path_co");
  const std::string id = owner.user_id;
  for (const std::string& target :
       {std::string("/api/users/"), std::string("//api/users"), std::string("/API/users"), std::string("/api/./users"),
        "/api/users%2F" + id, std::string("/api/users;x=1"), "/api/users/" + id + "/..", "/api/users/" + id + "/",
        "/api/users/./" + id, std::string("/api/%2e%2e/api/users"), std::string("/api/users/..%2f..%2fadmin")}) {
    const auto r = get(target, owner.token);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << target << ":\n" << r.describe();
  }
}

TEST_F(security_http, s24_types_sizes_duplicates_and_path_ids_are_400) {
  const auto owner = tenant_with_owner("schema_co");
  const auto reg = [&](std::string_view raw) {
    return client().request("POST", "/auth/register", {{"Content-Type", "application/json"}}, std::string(raw));
  };
  const std::string tail = R"(,"first_name":"A","last_name":"B","tenant_id":"schema_co"})";
  const auto null_password = reg(R"({"email":"n@schema.example","password":null)" + tail);
  expect_problem(null_password, 400, "invalid_input");
  EXPECT_TRUE(names_field(null_password, "password")) << null_password.body;
  const auto numeric_email = reg(R"({"email":123,"password":"long-enough-pw")" + tail);
  EXPECT_TRUE(names_field(numeric_email, "email")) << numeric_email.body;
  const auto huge_email =
      reg(R"({"email":")" + std::string(10 * 1024, 'e') + R"(@x.example","password":"long-enough-pw")" + tail);
  expect_problem(huge_email, 400, "invalid_input");
  EXPECT_TRUE(names_field(huge_email, "email")) << huge_email.body;

  expect_problem(reg(R"({"email":"a@schema.example","email":"b@schema.example","password":"long-enough-pw")" + tail),
                 400, "invalid_json");
  expect_problem(client().request("POST", "/auth/login", {{"Content-Type", "application/json"}},
                                  R"({"email":"a@x.example","password":"p1","password":"p2"})"),
                 400, "invalid_json");
  expect_problem(client().request("POST", "/api/users",
                                  {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + owner.token}},
                                  R"({"email":"d@schema.example","first_name":"A","first_name":"B","last_name":"C"})"),
                 400, "invalid_json");
  expect_problem(client().request("PUT", "/api/users/" + owner.user_id,
                                  {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + owner.token}},
                                  R"({"email":"x@schema.example","email":"y@schema.example"})"),
                 400, "invalid_json");

  for (const char* id : {"01", "1e3", "99999999999999999999", "-1", "0", "%00", "abc", "+1", "0x1",
                         "3F1C2A9E-8D7B-4C6A-9E5F-0A1B2C3D4E5F%00", "1;DROP"}) {
    expect_problem(get(std::string("/api/users/") + id, owner.token), 400, "invalid_id");
    expect_problem(put(std::string("/api/members/") + id, json::object{{"role", "viewer"}}, owner.token), 400,
                   "invalid_id");
    expect_problem(del(std::string("/api/members/") + id, owner.token), 400, "invalid_id");
  }
}

TEST_F(security_http, s25_nul_and_lone_surrogates_are_400_and_never_truncated) {
  const auto owner = tenant_with_owner("nul_co", "victim@nul.example");
  (void)create_tenant("nul_other", "Other");
  const auto send_raw = [&](std::string_view method, std::string_view target, std::string body,
                            std::string_view token = {}) {
    header_list h{{"Content-Type", "application/json"}};
    if (!token.empty()) h.emplace_back("Authorization", "Bearer " + std::string(token));
    return client().request(method, target, h, std::move(body));
  };
  const std::string pw = R"("password":"long-enough-pw")";
  struct input {
    std::string label, target, body, field;
    bool authed;
  };
  const std::vector<input> inputs = {
      {"register email NUL", "/auth/register",
       R"({"email":"victim@nul.example\u0000evil",)" + pw +
           R"(,"first_name":"A","last_name":"B","tenant_id":"nul_other"})",
       "email", false},
      {"register email surrogate", "/auth/register",
       R"({"email":"victim@nul.example\ud800",)" + pw + R"(,"first_name":"A","last_name":"B","tenant_id":"nul_other"})",
       "email", false},
      {"register password NUL", "/auth/register",
       R"({"email":"p@nul.example","password":"long-enough\u0000pw","first_name":"A","last_name":"B","tenant_id":"nul_other"})",
       "password", false},
      {"register tenant NUL", "/auth/register",
       R"({"email":"t@nul.example",)" + pw + R"(,"first_name":"A","last_name":"B","tenant_id":"nul_co\u0000x"})",
       "tenant_id", false},
      {"login email NUL", "/auth/login", R"({"email":"victim@nul.example\u0000x",)" + pw + "}", "email", false},
      {"user name NUL", "/api/users", R"({"email":"u@nul.example","first_name":"A\u0000B","last_name":"C"})",
       "first_name", true},
      {"user name surrogate", "/api/users", R"({"email":"s@nul.example","first_name":"\udfff","last_name":"C"})",
       "first_name", true},
  };
  for (const auto& in : inputs) {
    const auto r = send_raw("POST", in.target, in.body, in.authed ? owner.token : std::string());
    EXPECT_EQ(r.status, 400u) << in.label << ":\n" << r.describe();
    if (r.status == 400 && json_string(r.json(), "code") == "invalid_input") {
      EXPECT_TRUE(names_field(r, in.field)) << in.label << ": " << r.body;
    }
  }
  // Nothing was truncated into the victim's account or a new one.
  EXPECT_EQ(login("victim@nul.example").tenant_id, "nul_co");
  const auto accounts = admin_query("SELECT email FROM accounts ORDER BY email", server().master_database());
  ASSERT_EQ(accounts.size(), 1u);
  EXPECT_EQ(accounts[0][0], "victim@nul.example");
  EXPECT_EQ(json_field(get("/api/users", owner.token).json(), "total"), json::value(1));
}

TEST_F(security_http, s27_connect_and_unknown_methods_are_refused) {
  const auto owner = tenant_with_owner("method_co");
  for (const char* line : {"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
                           "FOO / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                           "get / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"}) {
    const auto out = client().exchange_raw(line);
    const auto first = out.first_response();
    ASSERT_TRUE(first.has_value()) << line << "[" << out.bytes << "]";
    EXPECT_TRUE(first->status == 400 || first->status == 404 || first->status == 405 || first->status == 501)
        << line << first->describe();
  }
  expect_problem(client().send_json("PATCH", "/api/users/1", json::object{{"first_name", "X"}}, bearer(owner.token)),
                 400, "invalid_id");
}

TEST_F(security_http, s28_injection_payloads_are_plain_data_everywhere) {
  const auto owner = tenant_with_owner("inj_co", "known@inj.example");
  const std::filesystem::path marker = "/tmp/tenantd-s28-" + random_token(8);
  const std::vector<std::string> payloads = {
      "' OR '1'='1",
      "' OR 1=1--",
      "\"; DROP TABLE users; --",
      "'; DROP DATABASE postgres; --",
      "1; SELECT pg_sleep(5)--",
      "' || pg_sleep(5) || '",
      "' UNION SELECT password_hash FROM accounts--",
      "$1",
      "%' AND 1=1 --",
      "'; COPY users TO PROGRAM 'touch " + marker.string() + "'--",
      "admin'/*",
  };
  const auto timed = [](auto&& call) {
    const auto started = clock_type::now();
    auto r = call();
    EXPECT_LT(clock_type::now() - started, std::chrono::seconds(3)) << "a payload ran (pg_sleep?):\n" << r.describe();
    return r;
  };
  // Reads echo payloads stored by earlier requests: check them against all payloads, since
  // the central check only excuses text that the same request carried.
  std::string all_payloads;
  for (const auto& p : payloads) all_payloads += p + "\n";
  http_client reader(client().port());
  reader.set_checks(false);
  const auto read = [&](const std::string& target) {
    auto r = reader.get(target, bearer(owner.token));
    check_response_hygiene("GET", target, all_payloads, r);
    return r;
  };
  std::vector<std::string> stored_ids;
  int n = 0;
  for (const auto& p : payloads) {
    const std::string enc = percent_encode(p);
    const std::string email = "u" + std::to_string(++n) + "@inj.example";
    auto r = timed([&] { return login_response(p, p); });
    EXPECT_TRUE(r.status == 400 || r.status == 401) << r.describe();
    r = timed([&] { return login_response("known@inj.example", p, p); });
    EXPECT_TRUE(r.status == 400 || r.status == 401) << r.describe();
    r = timed([&] { return register_response(p, email, default_password, p, p); });
    EXPECT_TRUE(r.status == 400 || r.status == 404) << r.describe();
    r = timed([&] {
      return client().send_json(
          "POST", "/auth/register",
          json::object{{"email", email}, {"password", p + "-long-enough"}, {"first_name", "A"}, {"last_name", "B"}},
          {{"X-Tenant-ID", p}});
    });
    EXPECT_TRUE(r.status == 400 || r.status == 404) << r.describe();
    r = timed([&] { return post("/tenants", json::object{{"id", p}, {"name", p}}); });
    expect_problem(r, 400, "invalid_input");
    r = timed([&] {
      return post("/api/users", json::object{{"email", email}, {"first_name", p}, {"last_name", p}}, owner.token);
    });
    ASSERT_EQ(r.status, 201u) << r.describe();
    const std::string id = json_string(r.json(), "id");
    stored_ids.push_back(id);
    r = timed([&] { return put("/api/users/" + id, json::object{{"last_name", p + "!"}}, owner.token); });
    ASSERT_EQ(r.status, 200u) << r.describe();
    r = timed([&] { return read("/api/users/" + id); });
    EXPECT_EQ(json_string(r.json(), "first_name"), p) << "stored text differs from what was sent";
    EXPECT_EQ(json_string(r.json(), "last_name"), p + "!");
    r = timed([&] { return read("/api/users?q=" + enc + "&email=" + enc); });
    EXPECT_EQ(r.status, 200u) << r.describe();
    const auto items = json_field(r.json(), "items");
    ASSERT_TRUE(items.is_array()) << r.describe();
    for (const auto& u : items.as_array()) EXPECT_EQ(json_string(u, "tenant_id"), "inj_co");
    expect_problem(timed([&] { return get("/api/users?page=" + enc, owner.token); }), 400, "invalid_input");
    expect_problem(timed([&] { return get("/api/users/" + enc, owner.token); }), 400, "invalid_id");
    expect_problem(timed([&] { return del("/api/members/" + enc, owner.token); }), 400, "invalid_id");
    r = timed([&] { return post("/auth/refresh", json::object{{"refresh_token", p}}); });
    EXPECT_EQ(r.status, 401u) << r.describe();
    r = timed([&] { return get("/api/users", p); });
    EXPECT_EQ(r.status, 401u) << r.describe();
  }
  // Everything is still there, and nothing ran on the server.
  EXPECT_EQ(json_field(read("/api/users").json(), "total"),
            json::value(static_cast<std::int64_t>(payloads.size() + 1)));
  EXPECT_EQ(admin_query("SELECT count(*) FROM accounts", server().master_database()).at(0).at(0), "1");
  EXPECT_EQ(admin_query("SELECT count(*) FROM pg_database WHERE datname = 'postgres'").at(0).at(0), "1");
  EXPECT_FALSE(std::filesystem::exists(marker)) << "COPY ... TO PROGRAM ran";
  EXPECT_EQ(login("known@inj.example").tenant_id, "inj_co");
}

TEST_F(security_http, s30_absurd_lengths_and_header_floods_are_refused_before_reading) {
  const auto huge = client().exchange_raw(
      "POST /tenants HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n",
      std::chrono::seconds(10));
  const auto first = huge.first_response();
  ASSERT_TRUE(first.has_value()) << "[" << huge.bytes << "]";
  EXPECT_EQ(first->status, 413u) << first->describe();
  EXPECT_TRUE(huge.closed) << "the connection must close after a 413";
  header_list many;
  for (int i = 0; i < 200; ++i) many.emplace_back("X-H" + std::to_string(i), std::string(40, 'v'));
  EXPECT_EQ(client().request("GET", "/", many).status, 431u);
  EXPECT_EQ(client().request("GET", "/", {{"Cookie", "a=" + std::string(9 * 1024, 'c')}}).status, 431u);
  EXPECT_EQ(get("/").status, 200u);
}

TEST_F(security_http, s31_smuggling_variants_are_400_close_and_run_nothing_behind) {
  const std::string smuggled = "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"TE before CL", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
      {"CL +5", "Content-Length: +5\r\n\r\nhello"},
      {"CL hex", "Content-Length: 0x5\r\n\r\nhello"},
      {"space before colon", "Content-Length : 5\r\n\r\nhello"},
      {"obs-fold", "X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\n{}"},
      {"two TE headers", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"TE gzip", "Transfer-Encoding: gzip\r\n\r\nhello"},
      {"TE with a tab", "Transfer-Encoding:\tchunked , \r\n\r\n0\r\n\r\n"},
  };
  for (const auto& [label, rest] : cases) {
    const auto out = client().exchange_raw("POST /tenants HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n" +
                                           rest + smuggled);
    const auto first = out.first_response();
    ASSERT_TRUE(first.has_value()) << label << ": [" << out.bytes << "]";
    EXPECT_EQ(first->status, 400u) << label << ":\n" << first->describe();
    EXPECT_TRUE(out.closed) << label << ": connection left open";
    EXPECT_EQ(count_responses(out.bytes), 1u) << label << ": the request behind it ran:\n" << out.bytes;
  }
}

TEST_F(security_http, s32_host_header_is_required_single_and_never_reflected) {
  const auto two = client().exchange_raw("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").first_response();
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->status, 400u) << two->describe();
  for (const char* request : {"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
                              "GET /nope HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
                              "GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"}) {
    const auto out = client().exchange_raw(request);
    ASSERT_TRUE(out.first_response().has_value()) << request << "[" << out.bytes << "]";
    EXPECT_EQ(out.bytes.find("evil.example"), std::string::npos) << out.bytes;
  }
}

// Blocking TCP socket to the server; -1 on failure.
int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

// True once the peer has closed (EOF or reset); drains anything it sent first.
bool peer_closed(int fd) {
  char buf[4096];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;
    if (n == 0) return true;
    return errno != EAGAIN && errno != EWOULDBLOCK;
  }
}

TEST_F(security_http, s33_s34_slow_and_idle_clients_are_cut_off_and_others_stay_fast) {
  std::vector<int> slow, idle;
  for (int i = 0; i < 150; ++i) {
    const int s = connect_to(server().port());
    ASSERT_GE(s, 0);
    const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ";
    ASSERT_EQ(::send(s, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
    slow.push_back(s);
    const int d = connect_to(server().port());
    ASSERT_GE(d, 0);
    idle.push_back(d);
  }
  const auto started = clock_type::now();
  std::vector<double> probe_ms;
  std::size_t open_slow = slow.size(), open_idle = idle.size();
  std::vector<bool> slow_closed(slow.size()), idle_closed(idle.size());
  while ((open_slow > 0 || open_idle > 0) && clock_type::now() - started < std::chrono::seconds(20)) {
    for (std::size_t i = 0; i < slow.size(); ++i) {  // one byte per second keeps a naive timer alive
      if (slow_closed[i]) continue;
      if (peer_closed(slow[i]) || ::send(slow[i], "a", 1, MSG_NOSIGNAL) != 1) {
        slow_closed[i] = true;
        --open_slow;
      }
    }
    for (std::size_t i = 0; i < idle.size(); ++i)
      if (!idle_closed[i] && peer_closed(idle[i])) {
        idle_closed[i] = true;
        --open_idle;
      }
    const auto t0 = clock_type::now();
    EXPECT_EQ(client().get("/healthz").status, 200u);
    probe_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  }
  const auto took = clock_type::now() - started;
  for (int fd : slow) ::close(fd);
  for (int fd : idle) ::close(fd);
  EXPECT_EQ(open_slow, 0u) << "slow-header connections outlived the header timeout";
  EXPECT_EQ(open_idle, 0u) << "idle connections outlived the header timeout";
  EXPECT_GE(took, std::chrono::seconds(8)) << "connections were cut before the 10 s header timeout";
  // Behaviour, not speed: a server that let held connections block others (a thread or a
  // queue slot per connection) would hold a probe until the 10 s header timeout freed one. Every
  // probe answered, and each long before that timeout, is what "others stay fast" means here;
  // how fast is bench/'s business (a loaded CI machine once took 110 ms for the median).
  ASSERT_FALSE(probe_ms.empty());
  EXPECT_LT(*std::max_element(probe_ms.begin(), probe_ms.end()), 5000.0)
      << "a GET /healthz waited on the 300 held connections";
  EXPECT_EQ(get("/").status, 200u) << "service resumes once the clients are gone";
}

class security_headers : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"TENANT_CREATES_PER_CLIENT", "2"}}; }
};

TEST_F(security_headers, s38_every_status_has_nosniff_no_store_and_no_server_version) {
  std::vector<std::pair<std::string, http_response>> seen;
  const auto owner = tenant_with_owner("hdr_co");  // creation 1 of 2
  const auto member = add_member(owner, "m@hdr.example");
  seen.emplace_back("200", get("/"));
  seen.emplace_back("200 users", get("/api/users", owner.token));
  seen.emplace_back("200 login", login_response(owner.email, owner.password));
  seen.emplace_back("201", create_tenant_response("hdr_two", "Two"));  // creation 2 of 2
  seen.emplace_back("429", create_tenant_response("hdr_three", "Three"));
  seen.emplace_back("204 options", client().request("OPTIONS", "/api/users"));
  seen.emplace_back("400", get("/api/users/x", owner.token));
  seen.emplace_back("401", get("/api/users"));
  seen.emplace_back("403", put("/api/tenant", json::object{{"name", "X"}}, member.token));
  seen.emplace_back("404", get("/nope"));
  seen.emplace_back("405", client().request("DELETE", "/"));
  seen.emplace_back(
      "409",
      post("/api/users", json::object{{"email", owner.email}, {"first_name", "A"}, {"last_name", "B"}}, owner.token));
  seen.emplace_back(
      "413", client().request("POST", "/tenants", {{"Content-Type", "application/json"}}, std::string(70 * 1024, ' ')));
  seen.emplace_back("415", client().request("POST", "/tenants", {{"Content-Type", "text/plain"}}, "{}"));
  seen.emplace_back("431", client().request("GET", "/", {{"X-Big", std::string(9 * 1024, 'h')}}));
  const auto framing = client().exchange_raw("GET / HTTP/1.1\r\n\r\n").first_response();
  ASSERT_TRUE(framing.has_value());
  seen.emplace_back("400 framing", *framing);
  seen.emplace_back("204 delete", del("/api/members/" + member.user_id, owner.token));
  for (const auto& [label, r] : seen) {
    EXPECT_EQ(std::to_string(r.status), label.substr(0, 3)) << label << ":\n" << r.describe();
    EXPECT_EQ(r.header_or_empty("x-content-type-options"), "nosniff") << label << ":\n" << r.describe();
    EXPECT_NE(r.header_or_empty("cache-control").find("no-store"), std::string::npos) << label << ":\n" << r.describe();
    EXPECT_FALSE(r.has_header("server")) << label << ":\n" << r.describe();
    if (r.body.empty()) continue;
    const auto type = r.header_or_empty("content-type");
    if (r.status < 400) {
      EXPECT_EQ(type, "application/json; charset=utf-8") << label;
    } else {
      EXPECT_TRUE(type.starts_with("application/problem+json")) << label << ": " << type;
    }
  }
}

TEST_F(security_http, s40_auth_failures_and_refusals_leave_an_audit_line) {
  const auto owner = tenant_with_owner("audit_co");
  const auto member = add_member(owner, "m@audit.example");
  EXPECT_EQ(get("/api/users", "not.a.token", {{"X-Request-Id", "s40-bad-token"}}).status, 401u);
  EXPECT_EQ(put("/api/tenant", json::object{{"name", "X"}}, member.token, {{"X-Request-Id", "s40-forbidden"}}).status,
            403u);
  EXPECT_EQ(post("/auth/login", json::object{{"email", member.email}, {"password", "wrong-password-s40"}}, {},
                 {{"X-Request-Id", "s40-bad-login"}})
                .status,
            401u);
  (void)server().stop();
  const std::regex utc_line(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z .*)");
  std::map<std::string, std::string> lines;
  std::istringstream log(server().log_text());
  for (std::string line; std::getline(log, line);) {
    for (const char* id : {"s40-bad-token", "s40-forbidden", "s40-bad-login"})
      if (line.find(std::string("request_id=") + id + " ") != std::string::npos) lines[id] = line;
    EXPECT_EQ(line.find(member.token), std::string::npos) << "a token in the log: " << line;
  }
  ASSERT_EQ(lines.size(), 3u) << server().log_tail();
  for (const auto& [id, line] : lines) {
    EXPECT_TRUE(std::regex_match(line, utc_line)) << line;
    EXPECT_NE(line.find("client=127.0.0.1"), std::string::npos) << line;
  }
  EXPECT_NE(lines["s40-bad-token"].find("status=401"), std::string::npos) << lines["s40-bad-token"];
  EXPECT_NE(lines["s40-bad-login"].find("route=/auth/login status=401"), std::string::npos) << lines["s40-bad-login"];
  const auto& refused = lines["s40-forbidden"];
  EXPECT_NE(refused.find("status=403"), std::string::npos) << refused;
  EXPECT_NE(refused.find("tenant=audit_co"), std::string::npos) << refused;
  EXPECT_NE(refused.find("user=" + member.user_id), std::string::npos) << refused;
}

}  // namespace
}  // namespace tenantd::test

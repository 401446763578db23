// Security catalogue, tokens and accounts (S04-S21): the inputs of
// docs/security.md's table that jwt_attacks, auth_* and users tests do not already send.
// Every rejection must be the documented status; no test may see a 500.
#include "app/config.hpp"
#include "e2e/security_support.hpp"
#include "support/e2e_cli.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <regex>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
using namespace security;
using clock_type = std::chrono::steady_clock;

class security_tokens : public e2e_test {
 protected:
  void expect_unauthorized(const std::string& token, std::string_view label) const {
    const auto r = client().get("/api/users", bearer(token));
    expect_problem(r, 401, "unauthorized");
    EXPECT_TRUE(r.header_or_empty("www-authenticate").starts_with("Bearer")) << label << ":\n" << r.describe();
  }
  static json::object with(json::object o, std::string_view key, json::value v) {
    o[key] = std::move(v);
    return o;
  }
};

// A TCP listener on 127.0.0.1 that only counts whether anyone connected.
class canary_listener {
 public:
  canary_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("canary listener failed");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~canary_listener() { ::close(fd_); }
  canary_listener(const canary_listener&) = delete;
  canary_listener& operator=(const canary_listener&) = delete;
  std::uint16_t port() const { return port_; }
  // True if a connection arrives within `wait`.
  bool contacted(std::chrono::milliseconds wait) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) > 0;
  }

 private:
  int fd_{-1};
  std::uint16_t port_{0};
};

TEST_F(security_tokens, s04_fractional_boolean_and_just_expired_times_are_rejected) {
  const auto owner = tenant_with_owner("time_co");
  const auto header = decode_token_part(owner.token, 0);
  const auto claims = decode_token_part(owner.token, 1);
  const auto key = server().jwt_secret();
  const auto now = unix_now();
  expect_unauthorized(sign_hs256(header, with(claims, "exp", static_cast<double>(now) + 3600.5), key), "float exp");
  expect_unauthorized(sign_hs256(header, with(claims, "exp", true), key), "boolean exp");
  expect_unauthorized(sign_hs256(header, with(claims, "exp", now - 61), key), "61 s past exp (leeway is 60 s)");
  expect_unauthorized(sign_hs256(header, with(claims, "nbf", static_cast<double>(now) - 10.5), key), "float nbf");
  expect_unauthorized(sign_hs256(header, with(claims, "iat", now + 600), key), "iat ten minutes ahead");
  // Positive control: an exp 30 s in the past is inside the leeway.
  EXPECT_EQ(get("/api/users", sign_hs256(header, with(claims, "exp", now - 30), key)).status, 200u);
}

TEST_F(security_tokens, s06_wrong_typ_refresh_and_admin_tokens_are_not_access_tokens) {
  const auto owner = tenant_with_owner("typ_co");
  const auto header = decode_token_part(owner.token, 0);
  const auto claims = decode_token_part(owner.token, 1);
  for (const char* typ : {"refresh+jwt", "JWS", "id_token", ""})
    expect_unauthorized(sign_hs256(with(header, "typ", typ), claims, server().jwt_secret()), std::string("typ ") + typ);
  EXPECT_EQ(get("/api/users", sign_hs256(with(header, "typ", "at+jwt"), claims, server().jwt_secret())).status, 200u)
      << "at+jwt is the access-token type (RFC 9068)";
  expect_unauthorized(owner.refresh_token, "a refresh token used as a bearer token");
  expect_unauthorized(server().admin_token(), "the operator ADMIN_TOKEN on a tenant route");
  // And the other way: an access token is not a refresh token.
  const auto r = post("/auth/refresh", json::object{{"refresh_token", owner.token}});
  EXPECT_EQ(r.status, 401u) << r.describe();
}

TEST_F(security_tokens, s07_header_urls_and_embedded_keys_are_never_used) {
  const auto owner = tenant_with_owner("jku_co");
  const auto header = decode_token_part(owner.token, 0);
  const auto claims = decode_token_part(owner.token, 1);
  const canary_listener canary;
  const std::string url = "http://127.0.0.1:" + std::to_string(canary.port()) + "/keys";
  const std::string attacker_key = random_token(48);
  const json::object attacker_jwk{{"kty", "oct"}, {"k", base64url_encode(attacker_key)}};

  // Signed with the attacker's key and pointing at the attacker's key: rejected.
  for (const char* name : {"jku", "x5u"})
    expect_unauthorized(sign_hs256(with(header, name, json::value_from(url)), claims, attacker_key), name);
  expect_unauthorized(sign_hs256(with(header, "jwk", attacker_jwk), claims, attacker_key), "embedded jwk");
  expect_unauthorized(sign_hs256(with(header, "kid", "../../etc/passwd"), claims, attacker_key), "kid path");
  // Signed with the real key: the parameters are ignored, not followed.
  for (const char* name : {"jku", "x5u"})
    EXPECT_EQ(
        get("/api/users", sign_hs256(with(header, name, json::value_from(url)), claims, server().jwt_secret())).status,
        200u);
  EXPECT_EQ(get("/api/users", sign_hs256(with(header, "jwk", attacker_jwk), claims, server().jwt_secret())).status,
            200u);
  EXPECT_FALSE(canary.contacted(std::chrono::milliseconds(500))) << "the server fetched a key from a header URL";
}

TEST_F(security_tokens, s08_a_16_kib_token_is_431_and_never_500) {
  const auto r = client().get("/api/users", {{"Authorization", "Bearer " + std::string(16 * 1024, 'a')}});
  EXPECT_EQ(r.status, 431u) << r.describe();
  const auto just_under = client().get("/api/users", {{"Authorization", "Bearer " + std::string(7 * 1024, 'a')}});
  expect_problem(just_under, 401, "unauthorized");
}

TEST_F(security_tokens, s09_weak_jwt_secrets_stop_start_up) {
  for (const std::string& secret :
       {std::string(31, 'k'), std::string("password"), std::string(app::example_jwt_secret), std::string()}) {
    const auto r = run_cli(server(), {"serve"}, {{"JWT_SECRET", secret}, {"PORT", "0"}});
    EXPECT_EQ(r.exit_code, 2) << "JWT_SECRET [" << secret << "]:\n" << r.output;
    EXPECT_NE(r.output.find("JWT_SECRET"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("listening"), std::string::npos) << r.output;
  }
}

TEST_F(security_tokens, s10_role_changes_and_removal_apply_to_live_tokens_at_once) {
  const auto owner = tenant_with_owner("revoke_co");
  const auto member = add_member(owner, "changing@revoke.example");
  const auto victim = post(
      "/api/users", json::object{{"email", "v@revoke.example"}, {"first_name", "V"}, {"last_name", "W"}}, owner.token);
  ASSERT_EQ(victim.status, 201u) << victim.describe();
  const std::string victim_path = "/api/users/" + json_string(victim.json(), "id");
  const std::string member_path = "/api/members/" + member.user_id;

  expect_problem(del(victim_path, member.token), 403, "forbidden");  // warms every cache for this token
  ASSERT_EQ(put(member_path, json::object{{"role", "admin"}}, owner.token).status, 200u);
  EXPECT_EQ(get("/api/members", member.token).status, 200u) << "promotion applies to the same token";
  ASSERT_EQ(put(member_path, json::object{{"role", "viewer"}}, owner.token).status, 200u);
  expect_problem(get("/api/members", member.token), 403, "forbidden");
  expect_problem(
      post("/api/users", json::object{{"email", "x@revoke.example"}, {"first_name", "X"}, {"last_name", "Y"}},
           member.token),
      403, "forbidden");
  EXPECT_EQ(get("/api/users", member.token).status, 200u) << "a viewer still reads";
  ASSERT_EQ(del(member_path, owner.token).status, 204u);
  expect_problem(get("/api/users", member.token), 401, "unauthorized");
  EXPECT_EQ(get(victim_path, owner.token).status, 200u) << "nothing the demoted member tried happened";
}

TEST_F(security_tokens, s11_every_login_failure_looks_and_takes_the_same) {
  (void)tenant_with_owner("enum_a", "known@enum.example");
  (void)create_tenant("enum_b", "Other");
  struct attempt {
    const char* label;
    std::string email, password, tenant;
  };
  const std::vector<attempt> attempts = {
      {"wrong password", "known@enum.example", "wrong-password-1", ""},
      {"unknown email", "nobody@enum.example", "wrong-password-1", ""},
      {"unknown tenant", "known@enum.example", std::string(default_password), "no_such_tenant"},
      {"not a member", "known@enum.example", std::string(default_password), "enum_b"},
      {"unknown email and tenant", "nobody@enum.example", "wrong-password-1", "no_such_tenant"},
  };
  std::string reference;
  const auto timed_login = [&](const attempt& a) {
    const auto started = clock_type::now();
    const auto r = login_response(a.email, a.password, a.tenant);
    const double ms = std::chrono::duration<double, std::milli>(clock_type::now() - started).count();
    expect_problem(r, 401, "invalid_credentials");
    EXPECT_FALSE(r.has_header("retry-after")) << a.label;
    const auto body = body_without_request_id(r);
    if (reference.empty()) reference = body;
    EXPECT_EQ(body, reference) << a.label;
    return ms;
  };
  // Each kind is timed right after a wrong-password login, and compared with it: pairs share
  // whatever else loads the machine at that moment (builds, parallel tests).
  std::vector<std::vector<double>> ratios(attempts.size());
  for (int round = 0; round < 10; ++round) {
    for (std::size_t i = 1; i < attempts.size(); ++i) {
      const double base = timed_login(attempts[0]);
      ratios[i].push_back(timed_login(attempts[i]) / base);
    }
  }
  // Every path runs one Argon2id verification (a dummy one for unknown accounts), so they cost
  // the same. The catalogue proposes 10 %; that is a benchmark's job. Here the bound is generous
  // (0.3-3.0, for a shared machine and sanitized builds): a missing dummy hash gives a ratio
  // far below 0.1, which is what this test exists to catch.
  for (std::size_t i = 1; i < attempts.size(); ++i) {
    const double r = median(ratios[i]);
    std::cout << "s11: " << attempts[i].label << " / wrong password: median ratio " << r << "\n";
    EXPECT_GT(r, 0.3) << attempts[i].label;
    EXPECT_LT(r, 3.0) << attempts[i].label;
  }
}

TEST_F(security_tokens, s13_long_passwords_are_not_truncated_and_unicode_is_kept) {
  (void)create_tenant("pw_co", "Passwords");
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += static_cast<char>('a' + i % 26);
  ASSERT_EQ(register_response("pw_co", "long@pw.example", hundred).status, 201u);
  expect_problem(login_response("long@pw.example", hundred.substr(0, 72)), 401, "invalid_credentials");
  expect_problem(login_response("long@pw.example", hundred.substr(0, 99)), 401, "invalid_credentials");
  EXPECT_EQ(login("long@pw.example", hundred).tenant_id, "pw_co");

  set_registration(login("long@pw.example", hundred).token, "open");
  const std::string unicode =
      "\xf0\x9f\x94\x91 p\xc3\xa4ss w\xc3\xb6rd \xe6\x97\xa5\xe6\x9c\xac";  // key emoji, umlauts, CJK
  ASSERT_EQ(register_response("pw_co", "uni@pw.example", unicode).status, 201u);
  EXPECT_EQ(login("uni@pw.example", unicode).tenant_id, "pw_co");
  expect_problem(login_response("uni@pw.example", unicode.substr(0, unicode.size() - 3)), 401, "invalid_credentials");
}

TEST_F(security_tokens, s14_hashes_are_argon2id_with_owasp_parameters_and_their_own_salts) {
  (void)create_tenant("hash_co", "Hashes");
  (void)register_user("hash_co", "one@hash.example", "shared-password-1");
  set_registration(login("one@hash.example", "shared-password-1").token, "open");
  (void)register_user("hash_co", "two@hash.example", "shared-password-1");
  const auto rows = admin_query(
      "SELECT password_hash FROM accounts WHERE email IN ('one@hash.example', 'two@hash.example') ORDER BY email",
      server().master_database());
  ASSERT_EQ(rows.size(), 2u);
  const std::regex phc(R"(^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$)");
  std::smatch a, b;
  ASSERT_TRUE(std::regex_match(rows[0][0], a, phc)) << rows[0][0];
  ASSERT_TRUE(std::regex_match(rows[1][0], b, phc)) << rows[1][0];
  EXPECT_GE(std::stol(a[1]), 19456) << "memory (KiB)";
  EXPECT_GE(std::stol(a[2]), 2) << "iterations";
  EXPECT_NE(a[4], b[4]) << "two accounts share a salt";
  EXPECT_NE(a[5], b[5]) << "equal passwords gave equal hashes";
}

TEST_F(security_tokens, s14_login_rehashes_a_hash_made_with_weaker_parameters) {
  (void)create_tenant("rehash_co", "Rehash");
  (void)register_user("rehash_co", "r@rehash.example");
  const auto hash_of = [&] {
    return admin_query("SELECT password_hash FROM accounts WHERE email = 'r@rehash.example'",
                       server().master_database())
        .at(0)
        .at(0);
  };
  ASSERT_NE(hash_of().find("t=2,"), std::string::npos) << hash_of();
  (void)server().stop();
  server().start({{"ARGON2_ITERATIONS", "3"}});
  ASSERT_TRUE(server().wait_ready());
  const http_client restarted(server().port());
  const auto r = restarted.send_json("POST", "/auth/login",
                                     json::object{{"email", "r@rehash.example"}, {"password", default_password}});
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_NE(hash_of().find("t=3,"), std::string::npos) << "login did not upgrade the hash: " << hash_of();
}

TEST_F(security_tokens, s15_password_hashing_does_not_starve_other_requests) {
  std::atomic<int> server_errors{0};
  std::atomic<int> hashers_running{32};
  std::vector<std::thread> hashers;
  for (int t = 0; t < 32; ++t) {
    hashers.emplace_back([&, t] {
      const http_client c(client().port());
      for (int i = 0; i < 2; ++i) {
        const auto r = c.send_json("POST", "/auth/login",
                                   json::object{{"email", "u" + std::to_string(t) + "@dos.example"},
                                                {"password", std::string(128, static_cast<char>('a' + i))}});
        if (r.status != 401 && r.status != 503) ++server_errors;
      }
      --hashers_running;
    });
  }
  // Probe GET / for as long as the 64 logins (128-character passwords) are being hashed.
  std::vector<double> probe_ms;
  const http_client probe(client().port());
  while (hashers_running.load() > 0 || probe_ms.size() < 20) {
    const auto started = clock_type::now();
    const auto r = probe.get("/");
    probe_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - started).count());
    EXPECT_EQ(r.status, 200u);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  for (auto& t : hashers) t.join();
  EXPECT_EQ(server_errors.load(), 0) << "logins answered something other than 401/503";
  std::sort(probe_ms.begin(), probe_ms.end());
  const double p50 = probe_ms[probe_ms.size() / 2];
  const double p90 = probe_ms[probe_ms.size() * 9 / 10];
  std::cout << "s15: " << probe_ms.size() << " probes, p50 " << p50 << " ms, p90 " << p90 << " ms, max "
            << probe_ms.back() << " ms\n";
  // Hashing on the I/O threads would hold every probe for the whole burst (seconds). The
  // catalogue's p99 < 100 ms is a benchmark figure, not asserted here: the bound is generous
  // (sanitized builds on a shared 2-core machine) and still far below the burst's length.
  EXPECT_LT(p50, 500.0) << "GET / median while hashing";
}

TEST_F(security_tokens, s16_no_response_carries_a_hash_a_salt_or_a_database_name) {
  std::vector<http_response> seen;
  const auto created = post("/tenants", json::object{{"id", "leak_co"},
                                                     {"name", "Leak"},
                                                     {"owner", json::object{{"email", "o@leak.example"},
                                                                            {"password", default_password},
                                                                            {"first_name", "O"},
                                                                            {"last_name", "P"}}}});
  ASSERT_EQ(created.status, 201u) << created.describe();
  seen.push_back(created);
  const auto owner = login("o@leak.example");
  set_registration(owner.token, "open");
  seen.push_back(post("/auth/register", json::object{{"email", "m@leak.example"},
                                                     {"password", default_password},
                                                     {"first_name", "M"},
                                                     {"last_name", "N"},
                                                     {"tenant_id", "leak_co"},
                                                     {"password_hash", "$argon2id$forged"},
                                                     {"created_at", "2000-01-01T00:00:00Z"}}));
  ASSERT_EQ(seen.back().status, 201u) << seen.back().describe();
  const std::string member_id = json_string(seen.back().json(), "id");
  seen.push_back(login_response("m@leak.example", default_password));
  const std::string member_refresh = json_string(seen.back().json(), "refresh_token");
  seen.push_back(post("/auth/refresh", json::object{{"refresh_token", member_refresh}}));
  seen.push_back(put("/api/users/" + member_id,
                     json::object{{"first_name", "Mo"},
                                  {"password", "a-new-password-9"},
                                  {"password_hash", "$argon2id$forged"},
                                  {"permissions", json::array{"tenant:manage"}},
                                  {"tenant_id", "other_co"}},
                     owner.token));
  ASSERT_EQ(seen.back().status, 200u) << seen.back().describe();
  for (const char* target : {"/api/users", "/api/me", "/api/tenant", "/api/members"})
    seen.push_back(get(target, owner.token));
  seen.push_back(get("/api/users/" + member_id, owner.token));
  seen.push_back(post("/api/invitations", json::object{{"email", "i@leak.example"}, {"role", "viewer"}}, owner.token));

  for (const auto& r : seen) {
    EXPECT_LT(r.status, 300u) << r.describe();
    for (const std::string& secret : {std::string("$argon2"), std::string("password_hash"), std::string("salt"),
                                      server().tenant_db_prefix(), server().master_database()})
      EXPECT_EQ(r.body.find(secret), std::string::npos) << "[" << secret << "] in:\n" << r.describe();
  }
  // The PUT changed the name only: the password is the old one, the role is still member.
  const auto member = login("m@leak.example");
  EXPECT_EQ(member.role, "member");
  expect_problem(login_response("m@leak.example", "a-new-password-9"), 401, "invalid_credentials");
  const auto stored =
      admin_query("SELECT password_hash FROM accounts WHERE email = 'm@leak.example'", server().master_database());
  EXPECT_NE(stored.at(0).at(0), "$argon2id$forged");
}

TEST_F(security_tokens, s21_a_failing_permission_source_fails_closed_with_503) {
  const auto owner = tenant_with_owner("closed_co");
  const auto fresh = login(owner.email);  // a new session: its access row is not cached yet
  const std::string master = server().master_database();
  admin_exec("ALTER DATABASE " + master + " WITH ALLOW_CONNECTIONS false");
  admin_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + master + "'");
  std::vector<http_response> during;
  for (int i = 0; i < 3; ++i) during.push_back(get("/api/users", fresh.token));
  admin_exec("ALTER DATABASE " + master + " WITH ALLOW_CONNECTIONS true");
  for (const auto& r : during) {
    expect_problem(r, 503, "unavailable");
    EXPECT_TRUE(r.has_header("retry-after")) << r.describe();
    EXPECT_EQ(r.header_or_empty("x-content-type-options"), "nosniff") << r.describe();  // S38 on a 503
    EXPECT_EQ(r.header_or_empty("cache-control"), "no-store") << r.describe();
  }
  // Recovery without a restart.
  const auto deadline = clock_type::now() + std::chrono::seconds(20);
  unsigned status = 0;
  while (clock_type::now() < deadline && (status = get("/api/users", fresh.token).status) != 200)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(status, 200u) << "no recovery after the master database came back";
}

}  // namespace
}  // namespace tenantd::test

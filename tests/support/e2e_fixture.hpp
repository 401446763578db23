// gtest fixture for end-to-end tests: each test gets its own tenantd process, master database
// and tenant database prefix, plus helpers that speak the API (tenants, register, login).
// Helpers that must succeed throw std::runtime_error with the response, failing the test.
#pragma once
#include "support/e2e_http_client.hpp"
#include "support/e2e_server.hpp"
#include "support/e2e_tokens.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tenantd::test {

// What a successful login (or tenant creation with an owner) gives a test.
struct session {
  std::string token;
  std::string refresh_token;
  std::string user_id;
  std::string tenant_id;
  std::string role;
  std::string email;
  std::string password;
};

inline constexpr std::string_view default_password = "correct-horse-battery";

// v[key] as a string, or "" if absent or not a string.
std::string json_string(const boost::json::value& v, std::string_view key);
// v[key], or null if v is not an object or lacks it.
boost::json::value json_field(const boost::json::value& v, std::string_view key);

// Shapes the API promises.
bool is_uuid(std::string_view s);
bool is_rfc3339_utc(std::string_view s);

class e2e_test : public ::testing::Test {
 protected:
  // Environment overrides for this fixture's server (CORS, signup, limits...).
  virtual env_overrides server_env() const { return {}; }
  // Called after the server object exists and before it starts (e.g. set_master_owner).
  virtual void prepare_server(e2e_server& /*server*/) {}

  void SetUp() override;
  void TearDown() override;

  e2e_server& server() { return *server_; }
  const e2e_server& server() const { return *server_; }
  const http_client& client() const { return *client_; }

  // Plain requests; `token` empty means no Authorization header.
  http_response get(std::string_view target, std::string_view token = {}, const header_list& extra = {}) const;
  http_response del(std::string_view target, std::string_view token = {}, const header_list& extra = {}) const;
  http_response send(std::string_view method, std::string_view target, const boost::json::value& body,
                     std::string_view token = {}, const header_list& extra = {}) const;
  http_response post(std::string_view target, const boost::json::value& body, std::string_view token = {},
                     const header_list& extra = {}) const {
    return send("POST", target, body, token, extra);
  }
  http_response put(std::string_view target, const boost::json::value& body, std::string_view token = {},
                    const header_list& extra = {}) const {
    return send("PUT", target, body, token, extra);
  }

  // POST /tenants as sent; no expectation. A 201's claim_token is kept for the tenant (below).
  http_response create_tenant_response(std::string_view id, std::string_view name,
                                       const std::optional<boost::json::object>& owner = std::nullopt) const;
  // POST /tenants that must answer 201; returns the body.
  boost::json::value create_tenant(std::string_view id, std::string_view name = "Test Tenant") const;
  // POST /tenants with the admin token, naming database server `server_name` when non-empty
  // (else placement picks); as sent, a 201's claim_token kept as create_tenant_response does.
  http_response create_tenant_on(std::string_view id, std::string_view server_name) const;
  // The claim token create_tenant got for `tenant_id` and no registration has used yet, or "".
  std::string claim_token(std::string_view tenant_id) const;
  // POST /auth/register as sent (tenant in the body when non-empty). As the tenant's creator
  // would, it carries the tenant's unused claim token (see claim_token), so the first
  // registration through these helpers claims the tenant as its owner; a 201 uses it up.
  // Tests of consent itself post their own bodies.
  http_response register_response(std::string_view tenant_id, std::string_view email,
                                  std::string_view password = default_password, std::string_view first_name = "Ann",
                                  std::string_view last_name = "Lee") const;
  // POST /auth/register that must answer 201; returns the body.
  boost::json::value register_user(std::string_view tenant_id, std::string_view email,
                                   std::string_view password = default_password) const;
  // POST /api/invitations by `inviter` that must answer 201; returns the invitation token.
  std::string invite(const session& inviter, std::string_view email, std::string_view role) const;
  // POST /auth/register with `invitation` as sent.
  http_response register_invited(std::string_view tenant_id, std::string_view email, std::string_view invitation,
                                 std::string_view password = default_password) const;
  // POST /auth/login as sent.
  http_response login_response(std::string_view email, std::string_view password,
                               std::string_view tenant_id = {}) const;
  // POST /auth/login that must answer 200.
  session login(std::string_view email, std::string_view password = default_password,
                std::string_view tenant_id = {}) const;
  // The owner email tenant_with_owner uses by default: "owner.<id>@example.com".
  static std::string owner_email(std::string_view id) { return "owner." + std::string(id) + "@example.com"; }
  // Creates tenant `id`, registers its owner with the claim token and logs in with the tenant.
  session tenant_with_owner(std::string_view id, std::string_view email = {}) const;
  // Sets the tenant's registration policy (owner token); must answer 200.
  void set_registration(std::string_view owner_token, std::string_view policy) const;
  // Opens registration on `owner`'s tenant, registers `email` there and logs in: a `member`.
  session add_member(const session& owner, std::string_view email) const;

 private:
  std::unique_ptr<e2e_server> server_;
  std::unique_ptr<http_client> client_;
  mutable std::mutex claim_mutex_;                                        // tests create tenants from several threads
  mutable std::map<std::string, std::string, std::less<>> claim_tokens_;  // tenant id -> unused claim token
};

}  // namespace tenantd::test

// The per-test server fixture and its API helpers.
#include "support/e2e_fixture.hpp"

#include <iostream>
#include <regex>
#include <stdexcept>

namespace tenantd::test {
namespace {

header_list with_token(std::string_view token, const header_list& extra) {
  header_list h = extra;
  if (!token.empty()) h.emplace_back("Authorization", "Bearer " + std::string(token));
  return h;
}

[[noreturn]] void unexpected(std::string_view what, const http_response& r) {
  throw std::runtime_error(std::string(what) + " failed:\n" + r.describe());
}

}  // namespace

std::string json_string(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const auto* f = v.as_object().if_contains(key);
  if (f == nullptr || !f->is_string()) return {};
  return std::string(f->as_string());
}

boost::json::value json_field(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  const auto* f = v.as_object().if_contains(key);
  return f == nullptr ? boost::json::value(nullptr) : *f;
}

bool is_uuid(std::string_view s) {
  static const std::regex re("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  return std::regex_match(std::string(s), re);
}

bool is_rfc3339_utc(std::string_view s) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$)");
  return std::regex_match(std::string(s), re);
}

void e2e_test::SetUp() {
  server_ = std::make_unique<e2e_server>();
  prepare_server(*server_);
  try {
    server_->start(server_env());
  } catch (const std::exception& e) {
    FAIL() << "tenantd did not start: " << e.what();
  }
  client_ = std::make_unique<http_client>(server_->port());
  ASSERT_TRUE(server_->wait_ready()) << "GET /readyz never answered 200; log:\n" << server_->log_tail();
}

void e2e_test::TearDown() {
  if (!server_) return;
  end_server_checked(*server_, 80);
  client_.reset();
  server_.reset();
}

http_response e2e_test::get(std::string_view target, std::string_view token, const header_list& extra) const {
  return client_->request("GET", target, with_token(token, extra));
}

http_response e2e_test::del(std::string_view target, std::string_view token, const header_list& extra) const {
  return client_->request("DELETE", target, with_token(token, extra));
}

http_response e2e_test::send(std::string_view method, std::string_view target, const boost::json::value& body,
                             std::string_view token, const header_list& extra) const {
  return client_->send_json(method, target, body, with_token(token, extra));
}

http_response e2e_test::create_tenant_response(std::string_view id, std::string_view name,
                                               const std::optional<boost::json::object>& owner) const {
  boost::json::object body{{"id", id}, {"name", name}};
  if (owner) body["owner"] = *owner;
  auto r = post("/tenants", body);
  if (r.status == 201) {
    const auto token = json_string(r.json(), "claim_token");
    const std::lock_guard lock(claim_mutex_);
    if (!token.empty()) claim_tokens_[std::string(id)] = token;
  }
  return r;
}

http_response e2e_test::create_tenant_on(std::string_view id, std::string_view server_name) const {
  boost::json::object body{{"id", id}, {"name", "Tenant " + std::string(id)}};
  if (!server_name.empty()) body["server"] = server_name;
  auto r = post("/tenants", body, server_->admin_token());
  if (r.status == 201) {
    const auto token = json_string(r.json(), "claim_token");
    const std::lock_guard lock(claim_mutex_);
    if (!token.empty()) claim_tokens_[std::string(id)] = token;
  }
  return r;
}

std::string e2e_test::claim_token(std::string_view tenant_id) const {
  const std::lock_guard lock(claim_mutex_);
  const auto it = claim_tokens_.find(tenant_id);
  return it == claim_tokens_.end() ? std::string() : it->second;
}

boost::json::value e2e_test::create_tenant(std::string_view id, std::string_view name) const {
  const auto r = create_tenant_response(id, name);
  if (r.status != 201) unexpected("POST /tenants " + std::string(id), r);
  return r.json();
}

http_response e2e_test::register_response(std::string_view tenant_id, std::string_view email, std::string_view password,
                                          std::string_view first_name, std::string_view last_name) const {
  boost::json::object body{
      {"email", email}, {"password", password}, {"first_name", first_name}, {"last_name", last_name}};
  if (!tenant_id.empty()) body["tenant_id"] = tenant_id;
  const auto claim = claim_token(tenant_id);
  if (!claim.empty()) body["claim_token"] = claim;
  auto r = post("/auth/register", body);
  if (r.status == 201 && !claim.empty()) {
    const std::lock_guard lock(claim_mutex_);
    claim_tokens_.erase(std::string(tenant_id));
  }
  return r;
}

std::string e2e_test::invite(const session& inviter, std::string_view email, std::string_view role) const {
  const auto r = post("/api/invitations", boost::json::object{{"email", email}, {"role", role}}, inviter.token);
  if (r.status != 201) unexpected("POST /api/invitations " + std::string(email), r);
  return json_string(r.json(), "invitation");
}

http_response e2e_test::register_invited(std::string_view tenant_id, std::string_view email,
                                         std::string_view invitation, std::string_view password) const {
  boost::json::object body{{"email", email},       {"password", password},   {"first_name", "Ivy"},
                           {"last_name", "Vited"}, {"tenant_id", tenant_id}, {"invitation", invitation}};
  return post("/auth/register", body);
}

boost::json::value e2e_test::register_user(std::string_view tenant_id, std::string_view email,
                                           std::string_view password) const {
  const auto r = register_response(tenant_id, email, password);
  if (r.status != 201) unexpected("POST /auth/register " + std::string(email), r);
  return r.json();
}

http_response e2e_test::login_response(std::string_view email, std::string_view password,
                                       std::string_view tenant_id) const {
  boost::json::object body{{"email", email}, {"password", password}};
  if (!tenant_id.empty()) body["tenant_id"] = tenant_id;
  return post("/auth/login", body);
}

session e2e_test::login(std::string_view email, std::string_view password, std::string_view tenant_id) const {
  const auto r = login_response(email, password, tenant_id);
  if (r.status != 200) unexpected("POST /auth/login " + std::string(email), r);
  const auto v = r.json();
  session s;
  s.token = json_string(v, "token");
  s.refresh_token = json_string(v, "refresh_token");
  s.user_id = json_string(json_field(v, "user"), "id");
  s.tenant_id = json_string(v, "tenant_id");
  s.role = json_string(v, "role");
  s.email = std::string(email);
  s.password = std::string(password);
  if (s.token.empty()) unexpected("login without a token", r);
  return s;
}

session e2e_test::tenant_with_owner(std::string_view id, std::string_view email) const {
  const std::string address = email.empty() ? owner_email(id) : std::string(email);
  (void)create_tenant(id, "Tenant " + std::string(id));
  (void)register_user(id, address);
  return login(address, default_password, id);
}

void e2e_test::set_registration(std::string_view owner_token, std::string_view policy) const {
  const auto r = put("/api/tenant", boost::json::object{{"registration", policy}}, owner_token);
  if (r.status != 200) unexpected("PUT /api/tenant registration=" + std::string(policy), r);
}

session e2e_test::add_member(const session& owner, std::string_view email) const {
  set_registration(owner.token, "open");
  (void)register_user(owner.tenant_id, email);
  return login(email, default_password, owner.tenant_id);
}

}  // namespace tenantd::test

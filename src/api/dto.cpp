// Record -> JSON mapping and the validating body reader.
#include "api/dto.hpp"

#include <array>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>

#include "domain/validation.hpp"

namespace tenantd::api {

boost::json::object to_json(const user_record& u, const std::string& tenant_id) {
  return {{"id", u.id},
          {"email", u.email},
          {"first_name", u.first_name},
          {"last_name", u.last_name},
          {"tenant_id", tenant_id},
          {"created_at", u.created_at},
          {"updated_at", u.updated_at}};
}

std::string to_json_text(const user_record& u, const std::string& tenant_id) {
  std::array<unsigned char, 2048> buffer;  // a user's object fits; a larger one spills to the heap
  boost::json::monotonic_resource arena(buffer.data(), buffer.size());
  boost::json::object o(&arena);
  o.reserve(7);
  o.emplace("id", u.id);
  o.emplace("email", u.email);
  o.emplace("first_name", u.first_name);
  o.emplace("last_name", u.last_name);
  o.emplace("tenant_id", tenant_id);
  o.emplace("created_at", u.created_at);
  o.emplace("updated_at", u.updated_at);
  return boost::json::serialize(o);
}

boost::json::object to_json(const tenant_record& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"status", to_string(t.status)},
          {"registration", t.registration},
          {"created_at", t.created_at},
          {"updated_at", t.updated_at}};
}

boost::json::object to_public_json(const tenant_record& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"status", to_string(t.status)},
          {"created_at", t.created_at},
          {"updated_at", t.updated_at}};
}

boost::json::array to_json(const std::vector<std::string>& strings) {
  boost::json::array a;
  for (const auto& s : strings) a.emplace_back(s);
  return a;
}

void add_tokens(boost::json::object& out, const identity::token_bundle& tokens) {
  out["token"] = tokens.access_token;
  out["token_type"] = "Bearer";
  out["expires_in"] = tokens.expires_in;
  out["refresh_token"] = tokens.refresh_token;
}

result<std::string> uuid_param(const std::vector<std::string>& params) {
  std::string id = params.at(0);
  if (!validation::is_uuid(id)) return make_error(errc::invalid_id, "the user id must be a UUID");
  for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return id;
}

body_reader::body_reader(const boost::json::value& body) : object_(body.if_object()) {}

bool body_reader::has(std::string_view field) const { return object_ && object_->contains(field); }

std::optional<std::string> body_reader::string(std::string_view name, bool required) {
  if (!object_ || !object_->contains(name)) {
    if (required) add_error(std::string(name), "is required");
    return std::nullopt;
  }
  const auto& v = object_->at(name);
  if (!v.is_string()) {
    add_error(std::string(name), "must be a string");
    return std::nullopt;
  }
  std::string s(v.as_string());
  if (!validation::is_clean_utf8(s)) {
    add_error(std::string(name), "must be valid UTF-8 without NUL characters");
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> body_reader::name(std::string_view field, bool required, std::size_t min_len,
                                             std::size_t max_len) {
  auto raw = string(field, required);
  if (!raw) return std::nullopt;
  auto trimmed = validation::trim(*raw);
  if (auto message = validation::check_name(trimmed, min_len, max_len)) {
    add_error(std::string(field), *message);
    return std::nullopt;
  }
  return trimmed;
}

std::optional<std::string> body_reader::email(std::string_view field, bool required) {
  auto raw = string(field, required);
  if (!raw) return std::nullopt;
  auto normalized = validation::normalize_email(*raw);
  if (auto message = validation::check_email(normalized)) {
    add_error(std::string(field), *message);
    return std::nullopt;
  }
  return normalized;
}

std::optional<std::string> body_reader::password(std::string_view field, bool required) {
  auto raw = string(field, required);
  if (!raw) return std::nullopt;
  if (auto message = validation::check_password(*raw)) {
    add_error(std::string(field), *message);
    return std::nullopt;
  }
  return raw;
}

const boost::json::object* body_reader::object(std::string_view field) {
  if (!has(field)) return nullptr;
  const auto* o = object_->at(field).if_object();
  if (!o) add_error(std::string(field), "must be an object");
  return o;
}

bool body_reader::as_bool(std::string_view field, bool fallback) {
  if (!has(field)) return fallback;
  const auto& v = object_->at(field);
  if (!v.is_bool()) {
    add_error(std::string(field), "must be true or false");
    return fallback;
  }
  return v.get_bool();
}

void body_reader::add_error(std::string field, std::string message) {
  // One entry per field: the first problem found is the one reported.
  for (const auto& e : errors_)
    if (e.field == field) return;
  errors_.push_back({std::move(field), std::move(message)});
}

error body_reader::failure() const {
  error e{errc::invalid_input, "the request body has invalid fields", errors_};
  return e;
}

}  // namespace tenantd::api

// JSON shapes of the API (records -> JSON) and a reader that pulls typed, validated fields
// out of a request body, collecting one message per bad field.
#pragma once
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/access.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"
#include "identity/accounts.hpp"

namespace tenantd::api {

boost::json::object to_json(const user_record& u, const std::string& tenant_id);
// The same object, serialised: built in a stack arena, so the only allocation is the text's
// (the single-user responses of the request path).
std::string to_json_text(const user_record& u, const std::string& tenant_id);
boost::json::object to_json(const tenant_record& t);         // the /api/tenant shape
boost::json::object to_public_json(const tenant_record& t);  // the POST /tenants shape
boost::json::array to_json(const std::vector<std::string>& strings);
// token, token_type, expires_in, refresh_token
void add_tokens(boost::json::object& out, const identity::token_bundle& tokens);

// The first path parameter as a canonical lower-case UUID, or errc::invalid_id.
result<std::string> uuid_param(const std::vector<std::string>& params);

class body_reader {
 public:
  explicit body_reader(const boost::json::value& body);
  explicit body_reader(const boost::json::object& body) : object_(&body) {}
  body_reader(boost::json::value&&) = delete;  // would point into a temporary
  body_reader(boost::json::object&&) = delete;

  // A string field; "is required" when absent and required, "must be a string" when another
  // type (null included), "must be valid UTF-8 without NUL" when dirty.
  std::optional<std::string> string(std::string_view name, bool required);
  // Trimmed name of min..max characters.
  std::optional<std::string> name(std::string_view field, bool required, std::size_t min_len, std::size_t max_len);
  // Trimmed, lower-cased, syntactically valid email.
  std::optional<std::string> email(std::string_view field, bool required);
  // 8-256 characters, not trimmed.
  std::optional<std::string> password(std::string_view field, bool required);
  // A nested object, if present (wrong type is an error).
  const boost::json::object* object(std::string_view field);
  bool has(std::string_view field) const;
  bool as_bool(std::string_view field, bool fallback);

  // Records a problem with `field`; a field already in error keeps its first message.
  void add_error(std::string field, std::string message);
  bool ok() const noexcept { return errors_.empty(); }
  // errc::invalid_input with the field list.
  error failure() const;

 private:
  const boost::json::object* object_{nullptr};
  std::vector<field_error> errors_;
};

}  // namespace tenantd::api

// libFuzzer target for request bodies: the dispatcher's strict JSON parsing and object rule,
// then the body_reader field reads of every JSON handler and the problem+json answer.
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "api/dto.hpp"
#include "api/problem.hpp"
#include "domain/strict_json.hpp"
#include "domain/validation.hpp"

namespace {

namespace json = boost::json;
namespace validation = tenantd::validation;
using tenantd::api::body_reader;

constexpr std::size_t max_depth = 32;  // the dispatcher's (parse_strict_json's default)

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "body_fuzz: %s\n", what);
  std::abort();
}

std::size_t depth_of(const json::value& v) {
  std::size_t deepest = 0;
  if (const auto* o = v.if_object()) {
    for (const auto& member : *o) deepest = std::max(deepest, depth_of(member.value()));
    return deepest + 1;
  }
  if (const auto* a = v.if_array()) {
    for (const auto& item : *a) deepest = std::max(deepest, depth_of(item));
    return deepest + 1;
  }
  return 0;
}

// Valid UTF-8 (NUL allowed: JSON may carry "\u0000").
bool is_utf8(std::string_view s) {
  std::string copy(s);
  for (auto& c : copy)
    if (c == '\0') c = ' ';
  return validation::is_clean_utf8(copy);
}

void check_strings(const json::value& v) {
  if (const auto* s = v.if_string()) {
    if (!is_utf8(*s)) fail("parsed string is not UTF-8");
  } else if (const auto* o = v.if_object()) {
    std::set<std::string_view> keys;
    for (const auto& member : *o) {
      if (!is_utf8(member.key())) fail("parsed key is not UTF-8");
      if (!keys.insert(member.key()).second) fail("parsed object repeats a key");
      check_strings(member.value());
    }
  } else if (const auto* a = v.if_array()) {
    for (const auto& item : *a) check_strings(item);
  }
}

bool has_non_finite(const json::value& v) {
  if (v.is_double()) return !std::isfinite(v.get_double());
  if (const auto* o = v.if_object()) {
    for (const auto& member : *o)
      if (has_non_finite(member.value())) return true;
  } else if (const auto* a = v.if_array()) {
    for (const auto& item : *a)
      if (has_non_finite(item)) return true;
  }
  return false;
}

// Equality, except that doubles may differ in the last bits: Boost 1.81 parses decimals
// without correct rounding, so serialise-then-parse can move a double by an ulp.
bool same_value(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double();
    const double y = b.get_double();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (const auto* o = a.if_object()) {
    const auto& p = b.get_object();
    if (o->size() != p.size()) return false;
    for (const auto& member : *o) {
      const auto* other = p.if_contains(member.key());
      if (other == nullptr || !same_value(member.value(), *other)) return false;
    }
    return true;
  }
  if (const auto* x = a.if_array()) {
    const auto& y = b.get_array();
    if (x->size() != y.size()) return false;
    for (std::size_t i = 0; i < x->size(); ++i)
      if (!same_value((*x)[i], y[i])) return false;
    return true;
  }
  return a == b;
}

bool is_trimmed(const std::string& s) { return validation::trim(s) == s; }

void check_string(const std::optional<std::string>& s) {
  if (s && !validation::is_clean_utf8(*s)) fail("string field is not clean UTF-8");
}
void check_email(const std::optional<std::string>& s) {
  if (!s) return;
  if (validation::check_email(*s) || !is_trimmed(*s)) fail("email field breaks the email rule");
  for (const char c : *s)
    if (c >= 'A' && c <= 'Z') fail("email field is not lower-cased");
}
void check_password(const std::optional<std::string>& s) {
  if (!s) return;
  const auto n = validation::code_points(*s);
  if (!validation::is_clean_utf8(*s) || n < 8 || n > 256) fail("password field breaks the password rule");
}
void check_name(const std::optional<std::string>& s, std::size_t min_len, std::size_t max_len) {
  if (!s) return;
  if (validation::check_name(*s, min_len, max_len) || !is_trimmed(*s)) fail("name field breaks the name rule");
  for (const char c : *s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) fail("name field holds a control character");
}

void finish(const body_reader& reader) {
  std::set<std::string> fields;
  const auto e = reader.failure();
  for (const auto& f : e.fields) {
    if (!fields.insert(f.field).second) fail("a field is reported twice");
    if (f.message.empty()) fail("a field error without a message");
  }
  if (reader.ok() != e.fields.empty()) fail("ok() disagrees with the field list");
  if (!reader.ok()) {
    const auto res = tenantd::api::problem(e, "fuzz");
    if (res.status != 400 || res.body.empty()) fail("field errors are not a 400 problem");
  }
}

// The field reads of each JSON handler, in the handlers' order (src/api/*.cpp).
void read_like_handlers(const json::object& body) {
  {  // POST /auth/register
    body_reader r(body);
    check_email(r.email("email", true));
    check_password(r.password("password", true));
    check_name(r.name("first_name", true, 1, 100), 1, 100);
    check_name(r.name("last_name", true, 1, 100), 1, 100);
    const auto tenant = r.string("tenant_id", false);
    check_string(tenant);
    if (tenant) (void)validation::check_tenant_id(*tenant);
    check_string(r.string("invitation", false));
    finish(r);
  }
  {  // POST /auth/login
    body_reader r(body);
    const auto email = r.string("email", true);
    check_string(email);
    if (email) {
      const auto key = validation::normalize_email(*email);
      if (!is_trimmed(key)) fail("normalised email is not trimmed");
    }
    check_string(r.string("password", true));
    check_string(r.string("tenant_id", false));
    finish(r);
  }
  {  // POST /tenants
    body_reader r(body);
    const auto id = r.string("id", true);
    if (id) {
      if (auto message = validation::check_tenant_id(*id)) r.add_error("id", *message);
    }
    check_name(r.name("name", true, 1, 200), 1, 200);
    if (const auto* owner = r.object("owner")) {
      body_reader o(*owner);
      check_email(o.email("email", true));
      check_password(o.password("password", true));
      check_name(o.name("first_name", true, 1, 100), 1, 100);
      check_name(o.name("last_name", true, 1, 100), 1, 100);
      for (const auto& f : o.failure().fields) r.add_error("owner." + f.field, f.message);
      finish(o);
    }
    finish(r);
  }
  {  // POST /api/users, PUT /api/users/:id
    body_reader r(body);
    check_email(r.email("email", true));
    check_name(r.name("first_name", false, 1, 100), 1, 100);
    if (r.has("password")) check_password(r.password("password", true));
    if (r.has("role")) check_string(r.string("role", true));
    finish(r);
  }
  {  // PUT /api/tenant, POST /auth/refresh, POST /auth/logout, admin routes
    body_reader r(body);
    check_name(r.name("name", false, 1, 200), 1, 200);
    check_string(r.string("registration", false));
    check_string(r.string("refresh_token", false));
    check_string(r.string("reason", false));
    check_string(r.string("backup", false));
    (void)r.as_bool("all", false);
    finish(r);
  }
}

}  // namespace

// Properties: strict parsing agrees with Boost.JSON's parser (same options) except that it
// rejects duplicate keys; what it accepts is within the depth limit, valid UTF-8 and
// round-trips; every value a reader returns satisfies its rule; field errors are unique.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto strict = tenantd::parse_strict_json(text);

  // Differential check against Boost.JSON's parser with the same options.
  json::parse_options options;
  options.max_depth = max_depth;
  json::error_code ec;
  const json::value loose = json::parse(text, ec, {}, options);
  if (!strict) {
    if (strict.err().code != tenantd::errc::invalid_json || strict.err().detail.empty())
      fail("a parse failure that is not invalid_json with a detail");
    const bool duplicate = strict.err().detail == tenantd::duplicate_key_detail;
    if (!ec && !duplicate) fail("strict parser rejected what Boost.JSON accepts");
    return 0;
  }
  if (ec) fail("strict parser accepted what Boost.JSON rejects");
  if (!same_value(*strict, loose)) fail("strict and Boost.JSON values differ");
  if (depth_of(*strict) > max_depth) fail("accepted JSON deeper than the limit");
  check_strings(*strict);
  // Out-of-range numbers are accepted as infinite doubles (strict_json_test
  // out_of_range_numbers_become_doubles), and Boost 1.81 reads "0e309" as NaN; Boost.JSON
  // serialises both as non-JSON ("Infinity", "NaN"). The round trip holds for the rest.
  if (!has_non_finite(*strict)) {
    const auto again = tenantd::parse_strict_json(json::serialize(*strict));
    if (!again || !same_value(*again, *strict)) fail("serialised value does not parse back to itself");
  }

  if (const auto* body = strict->if_object()) read_like_handlers(*body);
  return 0;
}

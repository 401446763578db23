// Strict JSON: Boost.JSON's basic_parser drives a handler that builds the value and rejects
// repeated object keys; the parser itself checks syntax, depth, UTF-8 and \u escapes.
#include "domain/strict_json.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <functional>
#include <set>
#include <vector>

namespace tenantd {
namespace {

namespace json = boost::json;

// basic_parser recurses once per nesting level, so the depth is capped whatever the caller asks.
constexpr std::size_t depth_ceiling = 256;

class building_handler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  building_handler() { stack_.reset(); }

  bool duplicate_key() const noexcept { return duplicate_key_; }
  json::value release() { return stack_.release(); }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t n, json::error_code&) {
    keys_.pop_back();
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    stack_.push_array(n);
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    const bool inserted = keys_.back().insert(std::move(key_)).second;
    key_.clear();
    if (!inserted) {
      duplicate_key_ = true;
      ec = json::error::syntax;
      return false;
    }
    stack_.push_key(s);
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_string(s);
    return true;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    stack_.push_null();
    return true;
  }

  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  json::value_stack stack_;
  std::vector<std::set<std::string, std::less<>>> keys_;
  std::string key_;
  bool duplicate_key_{false};
};

std::string describe(const json::error_code& ec) {
  if (ec == json::error::too_deep) return "JSON nested too deeply";
  if (ec == json::error::incomplete) return "JSON ends too early";
  if (ec == json::error::illegal_leading_surrogate || ec == json::error::illegal_trailing_surrogate ||
      ec == json::error::expected_hex_digit)
    return "invalid \\u escape in a JSON string";
  if (ec == json::error::exponent_overflow) return "number out of range";
  return "malformed JSON (syntax or UTF-8)";
}

}  // namespace

result<json::value> parse_strict_json(std::string_view text, std::size_t max_depth) {
  json::parse_options options;
  options.max_depth = std::min(max_depth, depth_ceiling);
  options.allow_comments = false;
  options.allow_trailing_commas = false;
  options.allow_invalid_utf8 = false;

  json::basic_parser<building_handler> parser(options);
  json::error_code ec;
  const std::size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (parser.handler().duplicate_key()) return make_error(errc::invalid_json, std::string(duplicate_key_detail));
  if (ec) return make_error(errc::invalid_json, describe(ec));
  if (!parser.done()) return make_error(errc::invalid_json, "JSON ends too early");
  if (consumed != text.size()) return make_error(errc::invalid_json, "unexpected data after the JSON value");
  return parser.handler().release();
}

}  // namespace tenantd

// Input rules from API.md "Conventions": UTF-8 hygiene, trimming, tenant ids, emails,
// passwords, names and UUIDs. Pure functions, apart from new_uuid's random bytes.
#include "domain/validation.hpp"

#include <sodium.h>

#include <array>
#include <stdexcept>

#include "domain/breached_passwords.hpp"

namespace tenantd::validation {
namespace {

// Decodes one well-formed UTF-8 sequence (no overlongs, surrogates or values past U+10FFFF)
// at s[pos]; returns its length, or 0 if the bytes there are not one.
std::size_t decode_at(std::string_view s, std::size_t pos, char32_t& cp) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](std::size_t i) { return i < s.size() && (byte(i) & 0xC0U) == 0x80U; };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80U) {
    cp = b0;
    return 1;
  }
  if (b0 >= 0xC2U && b0 <= 0xDFU) {
    if (!cont(pos + 1)) return 0;
    cp = (char32_t{b0 & 0x1FU} << 6) | (byte(pos + 1) & 0x3FU);
    return 2;
  }
  if (b0 >= 0xE0U && b0 <= 0xEFU) {
    if (!cont(pos + 1) || !cont(pos + 2)) return 0;
    cp = (char32_t{b0 & 0x0FU} << 12) | (char32_t{byte(pos + 1) & 0x3FU} << 6) | (byte(pos + 2) & 0x3FU);
    if (cp < 0x800U || (cp >= 0xD800U && cp <= 0xDFFFU)) return 0;
    return 3;
  }
  if (b0 >= 0xF0U && b0 <= 0xF4U) {
    if (!cont(pos + 1) || !cont(pos + 2) || !cont(pos + 3)) return 0;
    cp = (char32_t{b0 & 0x07U} << 18) | (char32_t{byte(pos + 1) & 0x3FU} << 12) |
         (char32_t{byte(pos + 2) & 0x3FU} << 6) | (byte(pos + 3) & 0x3FU);
    if (cp < 0x10000U || cp > 0x10FFFFU) return 0;
    return 4;
  }
  return 0;
}

// White_Space as JavaScript's trim() sees it, plus NEL: ASCII blanks, Zs, line separators, BOM.
bool is_space(char32_t cp) noexcept {
  switch (cp) {
    case U'\t':
    case U'\n':
    case U'\v':
    case U'\f':
    case U'\r':
    case U' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Unicode general category Cc: C0 controls, DEL and C1 controls.
bool is_control(char32_t cp) noexcept { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

bool is_lower_alnum(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 5322 atext: the characters an unquoted local part may hold besides '.'.
bool is_atext(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  constexpr std::string_view specials = "!#$%&'*+-/=?^_`{|}~";
  return specials.find(c) != std::string_view::npos;
}

bool is_dot_atom(std::string_view local) noexcept {
  if (local.empty() || local.front() == '.' || local.back() == '.') return false;
  char previous = '\0';
  for (const char c : local) {
    if (c == '.' ? previous == '.' : !is_atext(c)) return false;
    previous = c;
  }
  return true;
}

bool is_domain(std::string_view domain) noexcept {
  if (domain.find('.') == std::string_view::npos) return false;
  std::size_t start = 0;
  while (start <= domain.size()) {
    const std::size_t dot = std::min(domain.find('.', start), domain.size());
    const std::string_view label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (const char c : label)
      if (!is_lower_alnum(c) && c != '-') return false;
    start = dot + 1;
  }
  return true;
}

void ensure_sodium() {
  static const int initialised = sodium_init();
  if (initialised < 0) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace

bool is_clean_utf8(std::string_view s) noexcept {
  std::size_t pos = 0;
  while (pos < s.size()) {
    char32_t cp = 0;
    const std::size_t len = decode_at(s, pos, cp);
    if (len == 0 || cp == 0) return false;
    pos += len;
  }
  return true;
}

std::size_t code_points(std::string_view s) noexcept {
  std::size_t n = 0;
  for (const char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++n;
  return n;
}

std::string trim(std::string_view s) {
  char32_t cp = 0;
  while (!s.empty()) {
    const std::size_t len = decode_at(s, 0, cp);
    if (len == 0 || !is_space(cp)) break;
    s.remove_prefix(len);
  }
  while (!s.empty()) {
    std::size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0U) == 0x80U) --start;
    const std::size_t len = decode_at(s, start, cp);
    if (len != s.size() - start || !is_space(cp)) break;
    s.remove_suffix(len);
  }
  return std::string(s);
}

std::optional<std::string> check_server_name(std::string_view name) {
  constexpr std::string_view rule =
      "must be 1-40 characters: a lower-case letter, then lower-case letters, digits, '_' or '-'";
  if (name.empty() || name.size() > 40 || name.front() < 'a' || name.front() > 'z') return std::string(rule);
  for (const char c : name)
    if (!is_lower_alnum(c) && c != '_' && c != '-') return std::string(rule);
  return std::nullopt;
}

std::optional<std::string> check_tenant_id(std::string_view id) {
  constexpr std::array<std::string_view, 6> reserved{"template", "master", "postgres", "admin", "default", "public"};
  if (id.size() < 3 || id.size() > 40 || id.front() < 'a' || id.front() > 'z')
    return "must be 3-40 characters: a lower-case letter, then lower-case letters, digits or '_'";
  for (const char c : id)
    if (!is_lower_alnum(c) && c != '_')
      return "must be 3-40 characters: a lower-case letter, then lower-case letters, digits or '_'";
  if (id.starts_with("pg_")) return "must not start with 'pg_'";
  for (const auto name : reserved)
    if (id == name) return "is a reserved name";
  return std::nullopt;
}

// A pragmatic subset of RFC 5321/5322: an unquoted dot-atom local part (atext: printable ASCII
// without spaces, quotes, commas, angle brackets, parentheses, ':', ';', '@', '\', '[' or ']';
// no leading, trailing or doubled dot) and an ASCII domain name (IDNs must be punycode), no IP
// literals.
std::optional<std::string> check_email(std::string_view normalized_email) {
  if (normalized_email.empty()) return "is required";
  if (normalized_email.size() > 254) return "must be at most 254 characters";
  const std::size_t at = normalized_email.find('@');
  if (at == std::string_view::npos || normalized_email.find('@', at + 1) != std::string_view::npos)
    return "must be an email address";
  const std::string_view local = normalized_email.substr(0, at);
  const std::string_view domain = normalized_email.substr(at + 1);
  if (local.empty() || local.size() > 64 || !is_dot_atom(local) || !is_domain(domain))
    return "must be an email address";
  return std::nullopt;
}

std::optional<std::string> check_password(std::string_view password) {
  if (!is_clean_utf8(password)) return "must be valid UTF-8 without NUL characters";
  const std::size_t n = code_points(password);
  if (n < 8 || n > 256) return "must be 8-256 characters";
  if (is_breached_password(password)) return "is a commonly used password found in data breaches; choose another";
  return std::nullopt;
}

std::optional<std::string> check_name(std::string_view trimmed, std::size_t min_len, std::size_t max_len) {
  if (!is_clean_utf8(trimmed)) return "must be valid UTF-8 without NUL characters";
  const std::string value = trim(trimmed);
  std::size_t pos = 0;
  while (pos < value.size()) {
    char32_t cp = 0;
    pos += decode_at(value, pos, cp);
    if (is_control(cp)) return "must not contain control characters";
  }
  const std::size_t n = code_points(value);
  if (n < min_len || n > max_len)
    return "must be " + std::to_string(min_len) + "-" + std::to_string(max_len) + " characters";
  return std::nullopt;
}

std::string normalize_email(std::string_view email) {
  std::string out = trim(email);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

std::string new_uuid() {
  ensure_sodium();
  std::array<unsigned char, 16> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0FU) | 0x40U);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3FU) | 0x80U);
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(digits[bytes[i] >> 4U]);
    out.push_back(digits[bytes[i] & 0x0FU]);
  }
  return out;
}

}  // namespace tenantd::validation

// Fuzzes validation::check_tenant_id against the rule its header documents, written out
// independently here: ^[a-z][a-z0-9_]{2,39}$, no "pg_" prefix, no reserved name. An accepted id
// must also be safe as the suffix of a database name (NAMEDATALEN) without quoting.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string_view>

#include "domain/validation.hpp"

namespace {

// Longest TENANT_DB_PREFIX the configuration accepts; PostgreSQL truncates names at 63 bytes.
constexpr std::size_t max_prefix = 20;
constexpr std::size_t max_identifier = 63;

void fail(const char* what, std::string_view id) {
  std::fprintf(stderr, "tenant_id_fuzz: %s for id of %zu bytes\n", what, id.size());
  std::abort();
}

bool documented_rule(std::string_view id) {
  static const std::regex shape("^[a-z][a-z0-9_]{2,39}$");
  // The regex runs only on short inputs: anything longer than 40 bytes is rejected by shape.
  if (id.size() > 40) return false;
  if (!std::regex_match(id.begin(), id.end(), shape)) return false;
  if (id.starts_with("pg_")) return false;
  for (const std::string_view reserved : {"template", "master", "postgres", "admin", "default", "public"})
    if (id == reserved) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view id(reinterpret_cast<const char*>(data), size);
  const auto message = tenantd::validation::check_tenant_id(id);
  const bool accepted = !message.has_value();
  if (accepted != documented_rule(id)) fail(accepted ? "accepted against the rule" : "rejected against the rule", id);
  if (!accepted) {
    if (message->empty()) fail("empty error message", id);
    return 0;
  }
  if (max_prefix + id.size() > max_identifier) fail("database name would be truncated", id);
  if (!tenantd::validation::is_clean_utf8(id)) fail("accepted id is not clean UTF-8", id);
  return 0;
}

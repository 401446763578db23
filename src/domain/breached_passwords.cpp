// Case-insensitive lookup in the generated breached-password list.
#include "domain/breached_passwords.hpp"

#include <algorithm>
#include <array>

namespace tenantd::validation {

bool is_breached_password(std::string_view password) noexcept {
  std::array<char, 64> lowered{};  // no listed entry is longer (the generator checks)
  if (password.size() > lowered.size()) return false;
  std::transform(password.begin(), password.end(), lowered.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  const auto list = breached_password_list();
  return std::binary_search(list.begin(), list.end(), std::string_view(lowered.data(), password.size()));
}

}  // namespace tenantd::validation

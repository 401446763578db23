// The operator console compiled into the binary (cmake/embed_console.cmake): its page and
// its assets, each asset under a name that carries its content hash. Static storage.
#pragma once
#include <optional>
#include <span>
#include <string_view>

#include "api/embedded_docs.hpp"

namespace tenantd::api {

// web/console/index.html, its asset references replaced by /console/assets/<hashed name>.
std::string_view embedded_console_page() noexcept;

// console.<hash>.js, console.<hash>.css: served as /console/assets/<file_name>.
std::span<const embedded_docs_file> embedded_console_assets() noexcept;

// The console asset with that (hashed) name, or nullopt.
std::optional<std::string_view> find_console_asset(std::string_view file_name) noexcept;

}  // namespace tenantd::api

// The API documentation compiled into the binary (cmake/embed_docs.cmake): the OpenAPI
// document (docs/openapi.json) and the files of the /docs page. Static storage, never freed.
#pragma once
#include <optional>
#include <span>
#include <string_view>

namespace tenantd::api {

struct embedded_docs_file {
  std::string_view file_name;  // e.g. "swagger-ui.css", served as /docs/<file_name>
  std::string_view content;
};

// docs/openapi.json as written (OpenAPI 3.1, JSON).
std::string_view embedded_openapi() noexcept;

// index.html (the page), docs.js (its start-up script) and the Swagger UI files it loads.
std::span<const embedded_docs_file> embedded_docs_files() noexcept;

// The file of the /docs page with that name, or nullopt.
std::optional<std::string_view> find_docs_file(std::string_view file_name) noexcept;

// Content-Type for a /docs file by its extension (html, js, css, png, json), or nullopt.
std::optional<std::string_view> docs_content_type(std::string_view file_name) noexcept;

}  // namespace tenantd::api

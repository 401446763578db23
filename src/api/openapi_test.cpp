// Keeps docs/openapi.json true: every route of route_table() is documented with its method,
// path parameters, security, body and error responses, and every documented operation is a
// route (both directions). Also the embedded /docs files and their content types.
#include "api/embedded_docs.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "api/router.hpp"

namespace tenantd::api {
namespace {

namespace json = boost::json;

const json::value& document() {
  static const json::value doc = json::parse(embedded_openapi());
  return doc;
}

// "/api/users/:id" -> "/api/users/{id}"
std::string openapi_path(std::string_view pattern) {
  std::string out;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == ':' && i > 0 && pattern[i - 1] == '/') {
      const auto end = pattern.find('/', i);
      const auto name = pattern.substr(i + 1, end == std::string_view::npos ? std::string_view::npos : end - i - 1);
      out += "{" + std::string(name) + "}";
      i = end == std::string_view::npos ? pattern.size() : end;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Follows a {"$ref": "#/..."} (one level is all the document uses).
const json::value& resolve(const json::value& v) {
  if (v.is_object())
    if (const auto* ref = v.as_object().if_contains("$ref")) {
      const std::string_view target = ref->as_string();
      return document().at_pointer(target.substr(1));
    }
  return v;
}

const json::object* find_operation(std::string_view pattern, std::string_view method) {
  const auto& paths = document().at("paths").as_object();
  const auto* item = paths.if_contains(openapi_path(pattern));
  if (!item) return nullptr;
  const auto* op = item->as_object().if_contains(lower(method));
  return op ? &op->as_object() : nullptr;
}

// Routes that answer while the server is starting (no 503 "starting").
bool is_probe(std::string_view pattern) {
  return pattern == "/" || pattern == "/healthz" || pattern == "/readyz" || pattern == "/metrics";
}

TEST(openapi, helpers) {
  EXPECT_EQ(openapi_path("/"), "/");
  EXPECT_EQ(openapi_path("/api/users/:id"), "/api/users/{id}");
  EXPECT_EQ(openapi_path("/a/:x/b/:y"), "/a/{x}/b/{y}");
}

TEST(openapi, is_an_openapi_3_1_document) {
  const auto& doc = document().as_object();
  EXPECT_TRUE(std::string_view(doc.at("openapi").as_string()).starts_with("3.1."));
  EXPECT_FALSE(doc.at("info").at("title").as_string().empty());
  EXPECT_TRUE(doc.at("components").at("securitySchemes").as_object().contains("bearerAuth"));
  for (const auto* schema : {"Problem", "User", "Tenant", "Member", "LoginResponse", "RegisteredUser"})
    EXPECT_TRUE(doc.at("components").at("schemas").as_object().contains(schema)) << schema;
}

TEST(openapi, every_route_is_documented) {
  for (const auto& r : route_table()) {
    EXPECT_NE(find_operation(r.pattern, r.method), nullptr)
        << r.method << " " << r.pattern << " is routed but not in docs/openapi.json (as " << openapi_path(r.pattern)
        << ")";
  }
}

TEST(openapi, every_documented_operation_is_routed) {
  std::set<std::pair<std::string, std::string>> routed;
  for (const auto& r : route_table()) routed.emplace(lower(r.method), openapi_path(r.pattern));
  static const std::set<std::string_view> methods{"get", "put", "post", "delete", "patch", "head", "options", "trace"};
  std::size_t operations = 0;
  for (const auto& [path, item] : document().at("paths").as_object()) {
    for (const auto& [key, op] : item.as_object()) {
      if (!methods.contains(key)) continue;  // "parameters", "summary", ...
      ++operations;
      EXPECT_TRUE(routed.contains({std::string(key), std::string(path)}))
          << key << " " << path << " is documented but not in route_table()";
    }
  }
  EXPECT_EQ(operations, route_table().size());
}

TEST(openapi, operations_have_unique_ids_and_summaries) {
  std::set<std::string> ids;
  for (const auto& r : route_table()) {
    const auto* op = find_operation(r.pattern, r.method);
    if (!op) continue;  // reported by every_route_is_documented
    const std::string id(op->at("operationId").as_string());
    EXPECT_TRUE(ids.insert(id).second) << "duplicate operationId " << id;
    EXPECT_FALSE(op->at("summary").as_string().empty()) << r.method << " " << r.pattern;
  }
}

TEST(openapi, path_parameters_are_declared) {
  const auto& paths = document().at("paths").as_object();
  for (const auto& r : route_table()) {
    const auto* op = find_operation(r.pattern, r.method);
    if (!op) continue;
    std::set<std::string> declared;
    auto collect = [&](const json::object& holder) {
      if (const auto* params = holder.if_contains("parameters"))
        for (const auto& p : params->as_array()) {
          const auto& param = resolve(p).as_object();
          if (param.at("in").as_string() == "path") {
            EXPECT_TRUE(param.at("required").as_bool());
            declared.emplace(param.at("name").as_string());
          }
        }
    };
    collect(paths.at(openapi_path(r.pattern)).as_object());
    collect(*op);
    std::set<std::string> expected;
    for (std::size_t colon = r.pattern.find(':'); colon != std::string_view::npos;
         colon = r.pattern.find(':', colon + 1))
      expected.emplace(r.pattern.substr(colon + 1, r.pattern.find('/', colon) - colon - 1));
    EXPECT_EQ(declared, expected) << r.method << " " << r.pattern;
  }
}

TEST(openapi, security_matches_the_access_rule) {
  for (const auto& r : route_table()) {
    const auto* op = find_operation(r.pattern, r.method);
    if (!op) continue;
    const auto& security = op->at("security").as_array();
    const bool anonymous_allowed =
        security.empty() ||
        std::any_of(security.begin(), security.end(), [](const json::value& s) { return s.as_object().empty(); });
    // Loopback routes take no credentials: the TCP peer decides.
    EXPECT_EQ(anonymous_allowed, r.access == access_kind::open || r.access == access_kind::loopback)
        << r.method << " " << r.pattern;
    if (r.access == access_kind::member) {
      EXPECT_TRUE(security.size() == 1 && security[0].as_object().contains("bearerAuth"))
          << r.method << " " << r.pattern;
    }
  }
}

TEST(openapi, request_bodies_match_the_body_rule) {
  for (const auto& r : route_table()) {
    const auto* op = find_operation(r.pattern, r.method);
    if (!op) continue;
    const auto* body = op->if_contains("requestBody");
    if (r.body == body_kind::none) {
      EXPECT_EQ(body, nullptr) << r.method << " " << r.pattern << " takes no body";
      continue;
    }
    ASSERT_NE(body, nullptr) << r.method << " " << r.pattern;
    const auto& b = resolve(*body).as_object();
    EXPECT_EQ(b.at("required").as_bool(), r.body == body_kind::json) << r.method << " " << r.pattern;
    EXPECT_TRUE(b.at("content").as_object().contains("application/json")) << r.method << " " << r.pattern;
  }
}

TEST(openapi, each_operation_documents_its_error_responses) {
  for (const auto& r : route_table()) {
    const auto* op = find_operation(r.pattern, r.method);
    if (!op) continue;
    const auto& responses = op->at("responses").as_object();
    const std::string where = std::string(r.method) + " " + std::string(r.pattern);
    std::set<std::string> expected{"500"};
    if (!is_probe(r.pattern)) expected.insert("503");  // "the service is starting"
    if (r.access == access_kind::member || r.access == access_kind::admin) expected.insert("401");
    if (r.needs) expected.insert("403");
    if (r.body != body_kind::none) expected.insert({"400", "413", "415"});
    if (r.pattern.find(':') != std::string_view::npos) expected.insert("404");
    for (const auto& status : expected) EXPECT_TRUE(responses.contains(status)) << where << " lacks " << status;

    bool success = false;
    for (const auto& [status, response] : responses) {
      const auto code = std::stoi(std::string(status));
      const auto& res = resolve(response).as_object();
      EXPECT_FALSE(res.at("description").as_string().empty()) << where << " " << status;
      if (code < 400) {
        success = true;
        continue;
      }
      // Errors are problem details; only the readiness probe answers 503 with its own body.
      const auto& content = res.at("content").as_object();
      if (r.pattern == "/readyz" && code == 503) {
        EXPECT_TRUE(content.contains("application/json")) << where;
        continue;
      }
      ASSERT_TRUE(content.contains("application/problem+json")) << where << " " << status;
      EXPECT_EQ(content.at("application/problem+json").at("schema").at("$ref").as_string(),
                "#/components/schemas/Problem")
          << where << " " << status;
    }
    EXPECT_TRUE(success) << where << " documents no success response";
  }
}

// Every "$ref" in `v` points at something that exists in `doc`; returns how many were checked.
int check_refs(const json::value& doc, const json::value& v, const std::string& where) {
  int checked = 0;
  if (v.is_object()) {
    for (const auto& [key, child] : v.as_object()) {
      if (key == "$ref") {
        ++checked;
        const std::string_view target = child.is_string() ? std::string_view(child.as_string()) : "";
        EXPECT_TRUE(target.starts_with("#/")) << where << ": " << json::serialize(child);
        std::error_code ec;
        EXPECT_TRUE(target.starts_with("#/") && doc.find_pointer(target.substr(1), ec) != nullptr)
            << where << ": " << target;
      } else {
        checked += check_refs(doc, child, where + "/" + std::string(key));
      }
    }
  } else if (v.is_array()) {
    for (const auto& child : v.as_array()) checked += check_refs(doc, child, where + "[]");
  }
  return checked;
}

TEST(openapi, every_reference_resolves) {
  // The document shares its schemas and error responses through $ref: a count near zero
  // means the walk missed them, not that all is well.
  EXPECT_GE(check_refs(document(), document(), ""), 100);
}

TEST(openapi, a_dangling_reference_is_reported) {
  // EXPECT_NONFATAL_FAILURE's statement may only use static variables.
  static const auto broken =
      json::parse(R"({"paths":{"/x":{"get":{"responses":{"404":{"$ref":"#/components/responses/Gone"}}}}}})");
  EXPECT_NONFATAL_FAILURE((void)check_refs(broken, broken, ""), "#/components/responses/Gone");
}

TEST(docs_files, the_page_and_swagger_ui_are_embedded) {
  for (const auto* name : {"index.html", "docs.js", "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}) {
    const auto file = find_docs_file(name);
    ASSERT_TRUE(file.has_value()) << name;
    EXPECT_GT(file->size(), 100U) << name;
    EXPECT_TRUE(docs_content_type(name).has_value()) << name;
  }
  EXPECT_NE(find_docs_file("index.html")->find("/docs/swagger-ui-bundle.js"), std::string_view::npos);
  EXPECT_NE(find_docs_file("docs.js")->find("/openapi.json"), std::string_view::npos);
  EXPECT_NE(find_docs_file("swagger-ui-bundle.js")->find("SwaggerUIBundle"), std::string_view::npos);
  EXPECT_FALSE(find_docs_file("../openapi.json").has_value());
  EXPECT_FALSE(find_docs_file("").has_value());
}

TEST(docs_files, nothing_is_loaded_from_another_origin) {
  for (const auto* name : {"index.html", "docs.js"}) {
    const auto text = *find_docs_file(name);
    EXPECT_EQ(text.find("http://"), std::string_view::npos) << name;
    EXPECT_EQ(text.find("https://"), std::string_view::npos) << name;
    EXPECT_EQ(text.find("<script>"), std::string_view::npos) << name << ": inline scripts break the CSP";
  }
  EXPECT_NE(find_docs_file("docs.js")->find("validatorUrl: null"), std::string_view::npos);
}

TEST(docs_files, content_types_by_extension) {
  EXPECT_EQ(docs_content_type("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(docs_content_type("swagger-ui-bundle.js"), "text/javascript; charset=utf-8");
  EXPECT_EQ(docs_content_type("swagger-ui.css"), "text/css; charset=utf-8");
  EXPECT_EQ(docs_content_type("favicon-32x32.png"), "image/png");
  EXPECT_FALSE(docs_content_type("README").has_value());
  EXPECT_FALSE(docs_content_type("x.map").has_value());
}

}  // namespace
}  // namespace tenantd::api

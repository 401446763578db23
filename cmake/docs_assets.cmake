# The API documentation compiled into tenantd_api: docs/openapi.json and the /docs page
# (web/docs/* plus Swagger UI from web/node_modules/swagger-ui-dist, pinned in web/package.json
# and web/package-lock.json). This is the one place that installs web/node_modules: at
# configure time, when it is missing or not the pinned versions, it runs
# `npm ci --prefix web` (TENANTD_NPM_CI=ON, the default) or stops with the command to run.
option(TENANTD_NPM_CI "Run 'npm ci --prefix web' at configure time when web/node_modules is missing or stale" ON)

set(_web ${PROJECT_SOURCE_DIR}/web)
set(_dist ${_web}/node_modules/swagger-ui-dist)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_web}/package.json ${_web}/package-lock.json)
file(READ ${_web}/package.json _manifest)
string(JSON _swagger_pin GET "${_manifest}" dependencies swagger-ui-dist)
string(JSON _playwright_pin GET "${_manifest}" devDependencies playwright-core)
set(_pinned "swagger-ui-dist ${_swagger_pin}, playwright-core ${_playwright_pin}")

# "swagger-ui-dist X, playwright-core Y" as installed in web/node_modules ("" when either is
# missing), compared with the pins so that a changed pin installs again.
function(_tenantd_installed_swagger_ui out)
  set(${out} "" PARENT_SCOPE)
  set(_found "")
  foreach(_name swagger-ui-dist playwright-core)
    set(_file ${_web}/node_modules/${_name}/package.json)
    if(NOT EXISTS ${_file})
      return()
    endif()
    file(READ ${_file} _pkg)
    string(JSON _version ERROR_VARIABLE _err GET "${_pkg}" version)
    if(_err)
      return()
    endif()
    list(APPEND _found "${_name} ${_version}")
  endforeach()
  list(JOIN _found ", " _found)
  set(${out} "${_found}" PARENT_SCOPE)
endfunction()

# npm's own output on failure is dozens of lines of retries and a log path; this says what
# happened and what to do, then stops configure with a one-line error.
function(_tenantd_npm_ci_failed result output)
  string(REGEX MATCHALL "npm (ERR!|error)[^\n]*" _lines "${output}")
  list(FILTER _lines EXCLUDE REGEX "^npm (ERR!|error) +at |^npm (ERR!|error) *$")
  list(LENGTH _lines _count)
  if(_count GREATER 5)
    list(SUBLIST _lines 0 5 _lines)
  endif()
  list(JOIN _lines "\n  " _excerpt)
  execute_process(COMMAND ${NPM_PROGRAM} config get registry OUTPUT_VARIABLE _registry
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(output MATCHES "CERT|certificate")
    set(_why "the npm registry's TLS certificate (${_registry}) is not trusted; behind a proxy that "
             "intercepts TLS, give npm its CA: npm config set cafile /etc/ssl/certs/ca-certificates.crt")
  elseif(output MATCHES "ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network|socket hang up|E5[0-9][0-9]")
    set(_why "the npm registry (${_registry}) could not be reached")
  else()
    set(_why "npm ci failed (exit ${result})")
  endif()
  message(NOTICE
    "\n"
    "tenantd: cannot install web/node_modules: ${_why}.\n"
    "The build embeds Swagger UI (swagger-ui-dist, pinned in web/package-lock.json) for the /docs\n"
    "page, and the browser test uses playwright-core; configure installs them with\n"
    "  npm ci --prefix ${_web}\n"
    "npm said:\n  ${_excerpt}\n"
    "To fix: connect this machine to the network (or set a proxy: npm config set proxy URL),\n"
    "or point npm at a registry mirror (npm config set registry URL), or copy web/node_modules\n"
    "from a machine where 'npm ci --prefix web' worked; then configure again.\n")
  message(FATAL_ERROR "web/node_modules could not be installed (see the message above)")
endfunction()

_tenantd_installed_swagger_ui(_installed)
if(NOT _installed STREQUAL _pinned)
  if(NOT TENANTD_NPM_CI)
    message(FATAL_ERROR "web/node_modules is missing or stale (installed: '${_installed}'; "
                        "web/package.json pins '${_pinned}'). Run: npm ci --prefix ${_web}")
  endif()
  find_program(NPM_PROGRAM npm)
  if(NOT NPM_PROGRAM)
    message(FATAL_ERROR "npm is needed to install the /docs page (web/package.json). "
                        "Run scripts/install-deps, or install npm and run: npm ci --prefix ${_web}")
  endif()
  # Several build trees share web/: one npm ci at a time.
  file(LOCK ${_web}/.npm-ci.lock GUARD FILE TIMEOUT 600)
  _tenantd_installed_swagger_ui(_installed)
  if(NOT _installed STREQUAL _pinned)
    message(STATUS "Installing web/node_modules: npm ci --prefix web")
    execute_process(COMMAND ${NPM_PROGRAM} ci --prefix ${_web} --ignore-scripts --no-audit --no-fund
                    RESULT_VARIABLE _npm_result OUTPUT_VARIABLE _npm_output ERROR_VARIABLE _npm_output)
    _tenantd_installed_swagger_ui(_installed)
    if(NOT _npm_result EQUAL 0 OR NOT _installed STREQUAL _pinned)
      file(LOCK ${_web}/.npm-ci.lock RELEASE)
      _tenantd_npm_ci_failed("${_npm_result}" "${_npm_output}")
    endif()
    string(STRIP "${_npm_output}" _npm_output)
    message(STATUS "npm ci: ${_npm_output}")
  endif()
  file(LOCK ${_web}/.npm-ci.lock RELEASE)
endif()

# Served as /docs/<name>; index.html is also /docs.
set(_docs_files ${_web}/docs/index.html ${_web}/docs/docs.js
    ${_dist}/swagger-ui-bundle.js ${_dist}/swagger-ui.css ${_dist}/favicon-32x32.png)
string(REPLACE ";" "|" _docs_files_arg "${_docs_files}")
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/embedded_docs.cpp
  COMMAND ${CMAKE_COMMAND} -DOUT=${CMAKE_CURRENT_BINARY_DIR}/embedded_docs.cpp
          -DOPENAPI=${PROJECT_SOURCE_DIR}/docs/openapi.json "-DFILES=${_docs_files_arg}"
          -P ${PROJECT_SOURCE_DIR}/cmake/embed_docs.cmake
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/openapi.json ${_docs_files} ${PROJECT_SOURCE_DIR}/cmake/embed_docs.cmake
  COMMENT "Embedding docs/openapi.json and the /docs page"
  VERBATIM)
target_sources(tenantd_api PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/embedded_docs.cpp)
set_source_files_properties(${CMAKE_CURRENT_BINARY_DIR}/embedded_docs.cpp PROPERTIES
  OBJECT_DEPENDS "${PROJECT_SOURCE_DIR}/docs/openapi.json;${_docs_files}"
  SKIP_PRECOMPILE_HEADERS ON)

# The operator console (/console): web/console/, no npm package; assets get hashed names
# (cmake/embed_console.cmake).
set(_console_page ${_web}/console/index.html)
set(_console_assets ${_web}/console/console.js ${_web}/console/console.css)
string(REPLACE ";" "|" _console_assets_arg "${_console_assets}")
add_custom_command(
  OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/embedded_console.cpp
  COMMAND ${CMAKE_COMMAND} -DOUT=${CMAKE_CURRENT_BINARY_DIR}/embedded_console.cpp -DPAGE=${_console_page}
          "-DASSETS=${_console_assets_arg}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_console.cmake
  DEPENDS ${_console_page} ${_console_assets} ${PROJECT_SOURCE_DIR}/cmake/embed_console.cmake
  COMMENT "Embedding the /console page"
  VERBATIM)
target_sources(tenantd_api PRIVATE ${CMAKE_CURRENT_BINARY_DIR}/embedded_console.cpp)
set_source_files_properties(${CMAKE_CURRENT_BINARY_DIR}/embedded_console.cpp PROPERTIES
  OBJECT_DEPENDS "${_console_page};${_console_assets}"
  SKIP_PRECOMPILE_HEADERS ON)

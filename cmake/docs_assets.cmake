# The API documentation compiled into tenantd_api: docs/openapi.json and the /docs page
# (web/docs/* plus Swagger UI from web/node_modules/swagger-ui-dist, pinned in web/package.json
# and web/package-lock.json). This is the one place that installs web/node_modules: at
# configure time, when it is missing or its swagger-ui-dist is not the pinned version, it runs
# `npm ci --prefix web` (TENANTD_NPM_CI=ON, the default) or stops with the command to run.
option(TENANTD_NPM_CI "Run 'npm ci --prefix web' at configure time when web/node_modules is missing or stale" ON)

set(_web ${PROJECT_SOURCE_DIR}/web)
set(_dist ${_web}/node_modules/swagger-ui-dist)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_web}/package.json ${_web}/package-lock.json)
file(READ ${_web}/package.json _manifest)
string(JSON _pinned GET "${_manifest}" dependencies swagger-ui-dist)

function(_tenantd_installed_swagger_ui out)
  set(${out} "" PARENT_SCOPE)
  if(EXISTS ${_dist}/package.json AND EXISTS ${_web}/node_modules/playwright-core/package.json)
    file(READ ${_dist}/package.json _pkg)
    string(JSON _version ERROR_VARIABLE _err GET "${_pkg}" version)
    if(NOT _err)
      set(${out} "${_version}" PARENT_SCOPE)
    endif()
  endif()
endfunction()

_tenantd_installed_swagger_ui(_installed)
if(NOT _installed STREQUAL _pinned)
  if(NOT TENANTD_NPM_CI)
    message(FATAL_ERROR "web/node_modules is missing or stale (swagger-ui-dist '${_installed}', "
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
                    RESULT_VARIABLE _npm_result)
    _tenantd_installed_swagger_ui(_installed)
    if(NOT _npm_result EQUAL 0 OR NOT _installed STREQUAL _pinned)
      message(FATAL_ERROR "npm ci --prefix ${_web} failed (exit ${_npm_result}); see its output above")
    endif()
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

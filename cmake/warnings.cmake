# Project-wide compile options, applied through the tenantd_options interface target.
add_library(tenantd_options INTERFACE)
target_compile_options(tenantd_options INTERFACE
  -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Wnon-virtual-dtor
  -Woverloaded-virtual -Wimplicit-fallthrough
  # False positive with optimisation on: GCC 12 pairs Asio's awaitable frame operator delete
  # with the aligned_alloc inside its recycling allocator.
  -Wno-mismatched-new-delete)
target_compile_definitions(tenantd_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED
  BOOST_JSON_NO_LIB BOOST_URL_NO_LIB
  TENANTD_VERSION="${PROJECT_VERSION}")
if(TENANTD_FAULT_INJECTION)
  target_compile_definitions(tenantd_options INTERFACE TENANTD_FAULT_INJECTION)
endif()
if(TENANTD_WERROR)
  target_compile_options(tenantd_options INTERFACE -Werror)
endif()
if(TENANTD_SANITIZE)
  target_compile_options(tenantd_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(tenantd_options INTERFACE -fsanitize=address,undefined)
  target_compile_definitions(tenantd_options INTERFACE _GLIBCXX_ASSERTIONS)
endif()
if(TENANTD_TSAN)
  target_compile_options(tenantd_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer)
  target_link_options(tenantd_options INTERFACE -fsanitize=thread)
endif()

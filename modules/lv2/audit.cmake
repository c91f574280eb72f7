# lv2-audit: the real-time audit of an installed LV2 plugin (modules/lv2/audit.*).
# Included from modules/CMakeLists.txt. -rdynamic exports the allocator wrappers
# so dlopen'ed plugins bind to them.
pkg_check_modules(LILV_AUDIT REQUIRED IMPORTED_TARGET lilv-0)
add_executable(lv2-audit ${CMAKE_CURRENT_LIST_DIR}/audit_main.cpp ${CMAKE_CURRENT_LIST_DIR}/audit.cpp
  ${CMAKE_CURRENT_LIST_DIR}/audit_counters.cpp)
target_include_directories(lv2-audit PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(lv2-audit PRIVATE PkgConfig::LILV_AUDIT Threads::Threads)
target_link_options(lv2-audit PRIVATE -rdynamic)
install(TARGETS lv2-audit RUNTIME DESTINATION libexec/rackd)

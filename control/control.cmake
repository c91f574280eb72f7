# The OSC control plane, rackctl and the fuzz harness. Meant to be included from
# control/CMakeLists.txt:   include(${CMAKE_CURRENT_SOURCE_DIR}/control.cmake)
# and the tests from tests/CMakeLists.txt:
#   include(${PROJECT_SOURCE_DIR}/tests/control/control_tests.cmake)
pkg_check_modules(LIBLO REQUIRED IMPORTED_TARGET liblo)

add_library(rackd_control STATIC
  ${CMAKE_CURRENT_LIST_DIR}/param_writer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/osc_packet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/address.cpp
  ${CMAKE_CURRENT_LIST_DIR}/osc_map.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dispatch.cpp
  ${CMAKE_CURRENT_LIST_DIR}/control_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/events.cpp
  ${CMAKE_CURRENT_LIST_DIR}/graph_request.cpp)
target_include_directories(rackd_control PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(rackd_control PUBLIC rackd_graph rackd_shm rackd_registry PkgConfig::TOMLPP
                      PkgConfig::LIBLO Threads::Threads)

# rackctl: its own files, liblo (and toml++ to check add's KEY=VALUE pairs).
add_executable(rackctl ${CMAKE_CURRENT_LIST_DIR}/rackctl.cpp ${CMAKE_CURRENT_LIST_DIR}/rackctl_graph.cpp
  ${PROJECT_SOURCE_DIR}/graph/kv_toml.cpp)
target_include_directories(rackctl PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(rackctl PRIVATE PkgConfig::LIBLO PkgConfig::TOMLPP)

# libFuzzer harness (clang only): cmake -DRACKD_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-22
# Registered as a ctest with label "fuzz" (60 s run).
option(RACKD_FUZZ "build the libFuzzer harness (needs clang with libFuzzer)" OFF)
if(RACKD_FUZZ)
  add_executable(fuzz_dispatch ${CMAKE_CURRENT_LIST_DIR}/fuzz_dispatch.cpp
    ${CMAKE_CURRENT_LIST_DIR}/param_writer.cpp ${CMAKE_CURRENT_LIST_DIR}/osc_packet.cpp
    ${CMAKE_CURRENT_LIST_DIR}/address.cpp ${CMAKE_CURRENT_LIST_DIR}/osc_map.cpp
    ${CMAKE_CURRENT_LIST_DIR}/dispatch.cpp)
  target_compile_options(fuzz_dispatch PRIVATE -fsanitize=fuzzer,address,undefined -g -O1)
  target_link_options(fuzz_dispatch PRIVATE -fsanitize=fuzzer,address,undefined)
  target_include_directories(fuzz_dispatch PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(fuzz_dispatch PRIVATE rackd_graph PkgConfig::LIBLO PkgConfig::TOMLPP)
  add_test(NAME fuzz_dispatch COMMAND fuzz_dispatch -max_total_time=60 -max_len=2048)
  set_tests_properties(fuzz_dispatch PROPERTIES LABELS fuzz TIMEOUT 120)
endif()

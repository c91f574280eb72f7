# Control-plane tests. Included from tests/CMakeLists.txt (after rackd_test is
# defined):  include(${CMAKE_CURRENT_SOURCE_DIR}/control/control_tests.cmake)
#
# control_test (label unit): no rackd binary needed; the socket tests call
# oscsend/oscdump (liblo-tools) and python3-liblo and skip when missing;
# rackctl_test needs the rackctl binary (found in RACKD_BIN_DIR).
rackd_test(control_test
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/param_writer_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/osc_packet_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/dispatch_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/events_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/control_server_test.cpp
    ${CMAKE_CURRENT_LIST_DIR}/rackctl_test.cpp
  LIBS rackd_control rackd_server)
add_dependencies(control_test rackctl)

# Integration (needs rackd with --osc-port/--events wired; see control/README.md).
rackd_integration(control_integration_test control ${CMAKE_CURRENT_LIST_DIR}/rackd_osc_it.cpp)
add_dependencies(control_integration_test rackctl)
target_link_libraries(control_integration_test PRIVATE rackd_control)

# The module SDK, installed for out-of-tree modules (examples/gain-module):
#
#   PREFIX/include/rackd/*.hpp                     spec.hpp, module.hpp, rt.hpp
#   PREFIX/lib/librackd-module.a                   run_module(): attach, block loop, --describe
#   PREFIX/lib/cmake/rackd/rackdConfig.cmake       find_package(rackd 0.1) -> target rackd::module
#                     rackdConfigVersion.cmake     same major.minor only (0.x: every minor may
#                     rackdTargets*.cmake          change kModuleProtocol)
#   PREFIX/lib/pkgconfig/rackd-module.pc           pkg-config --cflags --libs rackd-module
#
# Included from the top-level CMakeLists.txt after modules/ (which defines the
# rackd_module library). The .pc file is written at install time, with the
# prefix being installed to (as packaging/systemd_units.cmake does), so that
# `cmake --install --prefix DIR` and the .deb (/usr) both get absolute paths.
include(CMakePackageConfigHelpers)

set(RACKD_CMAKE_DIR lib/cmake/rackd)

# The target is rackd::module both installed and in this tree.
set_target_properties(rackd_module PROPERTIES EXPORT_NAME module)
add_library(rackd::module ALIAS rackd_module)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/rackd DESTINATION include FILES_MATCHING PATTERN "*.hpp")
install(TARGETS rackd_module EXPORT rackdTargets
        ARCHIVE DESTINATION lib
        INCLUDES DESTINATION include)
install(EXPORT rackdTargets NAMESPACE rackd:: DESTINATION ${RACKD_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/packaging/rackdConfig.cmake.in
  ${CMAKE_BINARY_DIR}/packaging/rackdConfig.cmake
  INSTALL_DESTINATION ${RACKD_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/packaging/rackdConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/packaging/rackdConfig.cmake ${CMAKE_BINARY_DIR}/packaging/rackdConfigVersion.cmake
        DESTINATION ${RACKD_CMAKE_DIR})

install(CODE "
  get_filename_component(RACKD_PREFIX \"\${CMAKE_INSTALL_PREFIX}\" ABSOLUTE)
  set(RACKD_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/packaging/rackd-module.pc.in\"
                 \"${CMAKE_BINARY_DIR}/packaging/rackd-module.pc\" @ONLY)
  file(INSTALL DESTINATION \"\${RACKD_PREFIX}/lib/pkgconfig\" TYPE FILE
       FILES \"${CMAKE_BINARY_DIR}/packaging/rackd-module.pc\")")

# Runs at install time (install(SCRIPT) in packaging/install.cmake): writes the
# systemd user units with the prefix being installed to, which is known only
# then (`cmake --install --prefix DIR`, or /usr when CPack builds the .deb with
# CPACK_SET_DESTDIR), and installs them into PREFIX/lib/systemd/user.
# file(INSTALL) adds $DESTDIR and records the files in the install manifest.
# Set before this script runs: RACKD_UNIT_SOURCE_DIR, RACKD_UNIT_BINARY_DIR.
get_filename_component(RACKD_PREFIX "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
set(RACKD_LIBEXEC_DIR "${RACKD_PREFIX}/libexec/rackd")
set(units "")
foreach(unit rackd.service rackd@.service)
  configure_file("${RACKD_UNIT_SOURCE_DIR}/${unit}.in" "${RACKD_UNIT_BINARY_DIR}/${unit}" @ONLY)
  list(APPEND units "${RACKD_UNIT_BINARY_DIR}/${unit}")
endforeach()
file(INSTALL DESTINATION "${RACKD_PREFIX}/lib/systemd/user" TYPE FILE FILES ${units})

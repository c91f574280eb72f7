# The Debian package (CPack's DEB generator), from any build tree:
#   cmake --build build/release --target package      # or: cd build/release && cpack
# gives build/release/rackd_<version>_<arch>.deb. Included from the top-level
# CMakeLists.txt after the install rules. Needs dpkg-dev (dpkg-shlibdeps) and
# file, both in scripts/setup.
#
# The package installs into /usr whatever the build tree's prefix is: CPack
# installs with DESTDIR (CPACK_SET_DESTDIR) and CMAKE_INSTALL_PREFIX=/usr, so
# the systemd units, written at install time, name /usr/libexec/rackd. Nothing
# else depends on the prefix: rackd finds its modules relative to itself.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rackd)
set(CPACK_PACKAGE_VENDOR "rackd")
set(CPACK_PACKAGE_CONTACT "rackd maintainers <maintainers@users.noreply.b-seed-08fbf942.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "modular audio server with one process per DSP module")
set(CPACK_PACKAGE_DESCRIPTION
    "rackd owns the sound device (PortAudio: ALSA, JACK) and runs every DSP module
(capture, parametric EQ, HRTF binaural renderer, passthrough) in its own
process, exchanging audio blocks through lock-free shared-memory rings. A
module that crashes or hangs is replaced while the device keeps playing.
Control arrives as OSC (rackctl, TouchOSC, any script). Includes example
patches, man pages, bash completion and systemd user units.")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION sound)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the executables' shared libraries (dpkg-shlibdeps). libmysofa1,
# which rackd-hrir links, also ships the "default" HRTF set
# (/usr/share/libmysofa/default.sofa) that sofa = "default" names.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS jackd2)
include(CPack)

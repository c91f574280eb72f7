# What `cmake --install` puts beside the executables (their install() lines
# sit with their targets): patches, man pages, bash completion, systemd user
# units, documentation. Included from the top-level CMakeLists.txt.
#
#   PREFIX/bin/rackd, rackctl
#   PREFIX/libexec/rackd/rackd-<type>      module executables; the registry
#                                          (modules/registry) looks there
#   PREFIX/libexec/rackd/user-service      the units' start script
#   PREFIX/share/rackd/patches/            the example patches and the files they name
#   PREFIX/share/man/man1/rackd.1.gz, rackctl.1.gz; man5/rackd-patch.5.gz
#   PREFIX/share/bash-completion/completions/rackd, rackctl
#   PREFIX/lib/systemd/user/rackd.service, rackd@.service
#   PREFIX/share/doc/rackd/                README.md, docs/*.md

# The patches folder whole: patches name their files relative to themselves
# (headphone-eq.toml -> example-ParametricEQ.txt).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/patches/ DESTINATION share/rackd/patches)

# Man pages are hand-written roff; Debian wants them compressed (gzip -n: no
# name or time stamp, so the .deb is reproducible).
set(rackd_man_pages rackd.1 rackctl.1 rackd-patch.5)
set(rackd_man_outputs "")
foreach(page ${rackd_man_pages})
  get_filename_component(section "${page}" LAST_EXT)
  string(SUBSTRING "${section}" 1 -1 section)
  set(out ${CMAKE_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND gzip -9 -n -c ${PROJECT_SOURCE_DIR}/man/${page} > ${out}
    DEPENDS ${PROJECT_SOURCE_DIR}/man/${page}
    COMMENT "Compressing man page ${page}")
  list(APPEND rackd_man_outputs ${out})
  install(FILES ${out} DESTINATION share/man/man${section})
endforeach()
add_custom_target(rackd_man ALL DEPENDS ${rackd_man_outputs})

install(FILES ${PROJECT_SOURCE_DIR}/completions/rackd ${PROJECT_SOURCE_DIR}/completions/rackctl
        DESTINATION share/bash-completion/completions)

install(PROGRAMS ${PROJECT_SOURCE_DIR}/systemd/user-service DESTINATION libexec/rackd)
install(CODE "set(RACKD_UNIT_SOURCE_DIR \"${PROJECT_SOURCE_DIR}/systemd\")
set(RACKD_UNIT_BINARY_DIR \"${CMAKE_BINARY_DIR}/systemd\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/packaging/systemd_units.cmake)

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION share/doc/rackd)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION share/doc/rackd/docs FILES_MATCHING PATTERN "*.md")

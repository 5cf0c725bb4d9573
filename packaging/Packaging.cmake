# Installation layout and the .deb/.rpm (CPack), from one source of truth: project()'s version
# and the metadata below. `cpack -G DEB` / `cpack -G RPM` in a build directory (a RelWithDebInfo
# build; binaries are stripped into the packages).

set(MEND_PKG_DIR ${CMAKE_CURRENT_LIST_DIR})
set(MEND_MAINTAINER "mend maintainers <mend-maintainers@lists.mend.dev>")
set(MEND_PKG_RELEASE 1)

# The Debian changelog's newest entry must be this version: one version, everywhere.
file(STRINGS ${MEND_PKG_DIR}/changelog MEND_CHANGELOG_TOP LIMIT_COUNT 1)
if(NOT MEND_CHANGELOG_TOP MATCHES "^mend \\(${PROJECT_VERSION}-${MEND_PKG_RELEASE}\\) ")
  message(FATAL_ERROR "packaging/changelog starts with '${MEND_CHANGELOG_TOP}', expected "
                      "mend (${PROJECT_VERSION}-${MEND_PKG_RELEASE})")
endif()

# Man pages (version filled in) and the changelog, compressed as Debian policy wants them.
set(MEND_MAN_PAGES mendd.8 mendctl.8 mend.yaml.5 mend.policy.5)
set(MEND_GENERATED_DOCS)
foreach(page ${MEND_MAN_PAGES})
  set(VERSION ${PROJECT_VERSION})
  configure_file(${MEND_PKG_DIR}/man/${page} ${CMAKE_BINARY_DIR}/man/${page} @ONLY)
  add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/man/${page}.gz
    COMMAND gzip -9nf -k ${CMAKE_BINARY_DIR}/man/${page}
    DEPENDS ${CMAKE_BINARY_DIR}/man/${page} VERBATIM)
  list(APPEND MEND_GENERATED_DOCS ${CMAKE_BINARY_DIR}/man/${page}.gz)
  string(REGEX MATCH "[0-9]$" section ${page})
  install(FILES ${CMAKE_BINARY_DIR}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/changelog.Debian.gz
  COMMAND gzip -9nc ${MEND_PKG_DIR}/changelog > ${CMAKE_BINARY_DIR}/changelog.Debian.gz
  DEPENDS ${MEND_PKG_DIR}/changelog)
list(APPEND MEND_GENERATED_DOCS ${CMAKE_BINARY_DIR}/changelog.Debian.gz)
add_custom_target(mend_docs ALL DEPENDS ${MEND_GENERATED_DOCS})

install(FILES ${MEND_PKG_DIR}/systemd/mend.service DESTINATION lib/systemd/system)
install(FILES ${MEND_PKG_DIR}/tmpfiles/mend.conf DESTINATION lib/tmpfiles.d)
install(FILES ${MEND_PKG_DIR}/sysusers/mend.conf DESTINATION lib/sysusers.d)
install(FILES ${MEND_PKG_DIR}/catalog/mend.catalog DESTINATION lib/systemd/catalog)
install(FILES ${MEND_PKG_DIR}/bash-completion/mendctl
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
install(FILES ${MEND_PKG_DIR}/copyright ${CMAKE_BINARY_DIR}/changelog.Debian.gz
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${MEND_PKG_DIR}/deb/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
  RENAME mend)
# Configuration: conffiles (deb) and %config(noreplace) (rpm), so edits survive upgrades.
file(GLOB MEND_POLICY_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/policies/*.yaml)
install(FILES ${MEND_PKG_DIR}/mend.yaml DESTINATION /etc/mend)
install(FILES ${MEND_POLICY_FILES} DESTINATION /etc/mend/policies.d)

set(MEND_CONFFILES /etc/mend/mend.yaml)
foreach(f ${MEND_POLICY_FILES})
  get_filename_component(n ${f} NAME)
  list(APPEND MEND_CONFFILES /etc/mend/policies.d/${n})
endforeach()

set(CPACK_PACKAGE_NAME mend)
set(CPACK_PACKAGE_VENDOR "The mend authors")
set(CPACK_PACKAGE_CONTACT "${MEND_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Node-level self-healing agent for Linux hosts")
# The extended description: lines under 80 columns (Debian policy).
set(CPACK_PACKAGE_DESCRIPTION
    "mendd watches a host with eBPF probes (OOM kills, block I/O stalls,
filesystems filling up) and systemd unit state, groups the signals into
incidents, names the root cause rather than the loudest symptom, and runs a
small, bounded, reversible fix chosen by local YAML policy: log rotation,
volume growth, unit restart, a runtime memory or I/O limit. It proves recovery
after every fix; if the proof fails it rolls back and escalates to a person
with the root cause and everything it tried. Every step is a structured
journald record.")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/mend-agent/mend")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB RPM)
set(CPACK_SOURCE_GENERATOR "")

# Debian
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MEND_PKG_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd: the manager mendd follows, systemd-sysusers and systemd-tmpfiles in postinst.
# procps: /bin/kill for ExecReload.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd, procps")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "logrotate")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "xfsprogs, e2fsprogs, lvm2")
string(REPLACE ";" "\n" MEND_CONFFILES_TEXT "${MEND_CONFFILES}")
file(WRITE ${CMAKE_BINARY_DIR}/deb/conffiles "${MEND_CONFFILES_TEXT}\n")
foreach(s postinst prerm postrm)
  file(COPY ${MEND_PKG_DIR}/deb/${s} DESTINATION ${CMAKE_BINARY_DIR}/deb
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
    WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_BINARY_DIR}/deb/conffiles ${CMAKE_BINARY_DIR}/deb/postinst
  ${CMAKE_BINARY_DIR}/deb/prerm ${CMAKE_BINARY_DIR}/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# RPM
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE ${MEND_PKG_RELEASE})
set(CPACK_RPM_PACKAGE_LICENSE "BSD-2-Clause AND (BSD-2-Clause OR GPL-2.0-only)")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_URL "${CPACK_PACKAGE_HOMEPAGE_URL}")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${MEND_MAINTAINER}")
set(CPACK_RPM_PACKAGE_REQUIRES "systemd, procps-ng")
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${MEND_PKG_DIR}/rpm/post.sh)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${MEND_PKG_DIR}/rpm/preun.sh)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${MEND_PKG_DIR}/rpm/postun.sh)
set(MEND_RPM_CONFIG)
foreach(f ${MEND_CONFFILES})
  list(APPEND MEND_RPM_CONFIG "%config(noreplace) ${f}")
endforeach()
set(CPACK_RPM_USER_FILELIST ${MEND_RPM_CONFIG} "%dir /etc/mend" "%dir /etc/mend/policies.d"
  "%doc /usr/share/doc/mend/changelog.Debian.gz" "%license /usr/share/doc/mend/copyright"
  "%exclude /usr/share/lintian")
# Directories other packages own (systemd, bash-completion, the filesystem package).
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  /etc /usr/sbin /usr/share/man /usr/lib/systemd /usr/lib/systemd/system /usr/lib/systemd/catalog /usr/lib/tmpfiles.d
  /usr/lib/sysusers.d /usr/share/bash-completion /usr/share/bash-completion/completions
  /usr/share/man/man5 /usr/share/man/man8)
# The RPM changelog's entry from the Debian changelog's newest one (its date and version).
file(STRINGS ${MEND_PKG_DIR}/changelog MEND_CHANGELOG_TRAILER REGEX "^ -- " LIMIT_COUNT 1)
if(NOT MEND_CHANGELOG_TRAILER MATCHES "  ([A-Z][a-z][a-z]), ([0-9]+) ([A-Z][a-z][a-z]) ([0-9]+) ")
  message(FATAL_ERROR "packaging/changelog: no date in '${MEND_CHANGELOG_TRAILER}'")
endif()
set(MEND_RPM_DATE "${CMAKE_MATCH_1} ${CMAKE_MATCH_3} ${CMAKE_MATCH_2} ${CMAKE_MATCH_4}")
file(WRITE ${CMAKE_BINARY_DIR}/rpm/changelog
  "* ${MEND_RPM_DATE} ${MEND_MAINTAINER} - ${PROJECT_VERSION}-${MEND_PKG_RELEASE}\n"
  "- First packaged release (see /usr/share/doc/mend/changelog.Debian.gz).\n")
set(CPACK_RPM_CHANGELOG_FILE ${CMAKE_BINARY_DIR}/rpm/changelog)

include(CPack)

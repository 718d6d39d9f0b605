# SPDX-License-Identifier: MIT
# Fails configuration with one line that says what is missing and how to get it.

if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  message(FATAL_ERROR
    "multiprocessing-cpp: unsupported platform ${CMAKE_SYSTEM_NAME}: Linux (kernel >= 5.3 for pidfd) is required")
endif()

# mp_require_package(<Name> <version> DEBIAN <package> [COMPONENTS <component>...])
#   find_package(<Name> <version>) and, when it is missing, stop with the Debian package to install.
macro(mp_require_package name version)
  cmake_parse_arguments(_mp_req "" "DEBIAN" "COMPONENTS" ${ARGN})
  if(_mp_req_COMPONENTS)
    find_package(${name} ${version} QUIET COMPONENTS ${_mp_req_COMPONENTS})
  else()
    find_package(${name} ${version} QUIET)
  endif()
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR
      "multiprocessing-cpp: ${name} >= ${version} not found: run 'sudo apt-get install ${_mp_req_DEBIAN}' (or scripts/setup.sh)")
  endif()
endmacro()

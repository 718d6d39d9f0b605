# SPDX-License-Identifier: MIT
# Install and export: headers, the INTERFACE target, a package config that find_dependency()s what
# the public headers use, a version file, and a build-tree export for use without installing.

include(CMakePackageConfigHelpers)

set(MP_CONFIG_DIR "${CMAKE_INSTALL_DATADIR}/cmake/multiprocessing")

install(DIRECTORY include/ DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS multiprocessing EXPORT multiprocessingTargets)
if(MP_WITH_MPI)
  install(TARGETS multiprocessing_mpi EXPORT multiprocessingTargets)
endif()
install(EXPORT multiprocessingTargets
  NAMESPACE multiprocessing::
  DESTINATION "${MP_CONFIG_DIR}")

configure_package_config_file(cmake/multiprocessingConfig.cmake.in
  "${PROJECT_BINARY_DIR}/multiprocessingConfig.cmake"
  INSTALL_DESTINATION "${MP_CONFIG_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/multiprocessingConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/multiprocessingConfig.cmake"
  "${PROJECT_BINARY_DIR}/multiprocessingConfigVersion.cmake"
  DESTINATION "${MP_CONFIG_DIR}")
install(FILES LICENSE DESTINATION "${CMAKE_INSTALL_DATADIR}/doc/multiprocessing")

# Build tree: find_package(multiprocessing) with multiprocessing_DIR pointing at the build folder.
export(EXPORT multiprocessingTargets
  NAMESPACE multiprocessing::
  FILE "${PROJECT_BINARY_DIR}/multiprocessingTargets.cmake")

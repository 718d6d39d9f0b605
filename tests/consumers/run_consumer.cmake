# SPDX-License-Identifier: MIT
# Driver of one packaging test, run as `cmake -P` by ctest (see CMakeLists.txt here):
#   MODE=install           configure+build+install ${MP_SOURCE_DIR} into ${WORK_DIR}/prefix, then
#                          build the consumer with CMAKE_PREFIX_PATH pointing there
#   MODE=build_tree        as above without installing: multiprocessing_DIR is the build folder
#   MODE=add_subdirectory  the consumer add_subdirectory()s ${MP_SOURCE_DIR} itself
# Then runs the consumer, which must exit 0. Everything happens under ${WORK_DIR}, wiped first.
cmake_minimum_required(VERSION 3.21)

foreach(var MODE MP_SOURCE_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

set(common_args -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(MAKE_PROGRAM)
  list(APPEND common_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(BUILD_TYPE)
  list(APPEND common_args "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()

# step(<description> <command>...): runs a command, stops the test with the description on failure.
function(step description)
  message(STATUS "${description}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${MODE}: ${description} failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(mp_build "${WORK_DIR}/mp-build")
set(prefix "${WORK_DIR}/prefix")
set(consumer_build "${WORK_DIR}/consumer-build")

if(MODE STREQUAL "install" OR MODE STREQUAL "build_tree")
  step("configure multiprocessing-cpp"
    ${CMAKE_COMMAND} ${common_args} -S "${MP_SOURCE_DIR}" -B "${mp_build}"
      -DMP_BUILD_TESTS=OFF -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCHMARKS=OFF -DMP_INSTALL=ON)
  step("build multiprocessing-cpp" ${CMAKE_COMMAND} --build "${mp_build}")
  if(MODE STREQUAL "install")
    step("install multiprocessing-cpp into ${prefix}"
      ${CMAKE_COMMAND} --install "${mp_build}" --prefix "${prefix}")
    set(consumer_args "-DCMAKE_PREFIX_PATH=${prefix}" "-DMP_EXPECTED_DIR=${prefix}")
  else()
    set(consumer_args "-Dmultiprocessing_DIR=${mp_build}" "-DMP_EXPECTED_DIR=${mp_build}")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  set(consumer_args "-DMP_SOURCE_DIR=${MP_SOURCE_DIR}")
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE '${MODE}'")
endif()

step("configure the consumer"
  ${CMAKE_COMMAND} ${common_args} -S "${CONSUMER_SOURCE_DIR}" -B "${consumer_build}" ${consumer_args})
step("build the consumer" ${CMAKE_COMMAND} --build "${consumer_build}")
step("run the consumer" "${consumer_build}/consumer")

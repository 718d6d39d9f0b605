# SPDX-License-Identifier: MIT
# mp_dev_settings: an interface target carrying the warnings and sanitizers that the project's own
# tests, examples and benchmarks are built with. Never linked by consumers.

add_library(mp_dev_settings INTERFACE)
target_compile_options(mp_dev_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  $<$<BOOL:${MP_WERROR}>:-Werror>)
target_link_libraries(mp_dev_settings INTERFACE multiprocessing::multiprocessing)

if(MP_SANITIZE)
  string(REPLACE ";" "," _mp_sanitizers "${MP_SANITIZE}")
  target_compile_options(mp_dev_settings INTERFACE
    -fsanitize=${_mp_sanitizers} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(mp_dev_settings INTERFACE -fsanitize=${_mp_sanitizers})
endif()

// SPDX-License-Identifier: MIT
// Compile-fail test: a raw pointer is not serializable (its address means nothing elsewhere).
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <multiprocessing/serialize.hpp>

namespace mp = multiprocessing;

void compile_fail() {
  int value = 1;
  (void)mp::dumps(&value);
}

// SPDX-License-Identifier: MIT
// Compile-fail test: a std::function is not serializable.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <functional>

#include <multiprocessing/serialize.hpp>
namespace mp = multiprocessing;

void compile_fail() { (void)mp::dumps(std::function<int(int)>()); }

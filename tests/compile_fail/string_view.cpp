// SPDX-License-Identifier: MIT
// Compile-fail test: a std::string_view points into this process.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <string_view>

#include <multiprocessing/serialize.hpp>
namespace mp = multiprocessing;

void compile_fail() { (void)mp::dumps(std::string_view("view")); }

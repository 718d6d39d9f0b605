// SPDX-License-Identifier: MIT
// Compile-fail test: a std::unique_ptr is not serializable.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <memory>

#include <multiprocessing/serialize.hpp>
namespace mp = multiprocessing;

void compile_fail() { (void)mp::dumps(std::unique_ptr<int>()); }

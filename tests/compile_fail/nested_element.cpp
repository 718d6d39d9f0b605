// SPDX-License-Identifier: MIT
// Compile-fail test: a container of non-serializable elements is not serializable.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <map>
#include <memory>
#include <vector>

#include <multiprocessing/serialize.hpp>
namespace mp = multiprocessing;

void compile_fail() { (void)mp::loads<std::map<int, std::vector<std::unique_ptr<int>>>>({}); }

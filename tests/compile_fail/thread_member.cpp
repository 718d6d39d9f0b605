// SPDX-License-Identifier: MIT
// Compile-fail test: an aggregate holding a std::thread is not serializable.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <thread>

#include <multiprocessing/serialize.hpp>

struct HoldsThread {
  int id;
  std::thread worker;
};
namespace mp = multiprocessing;

void compile_fail() { (void)mp::dumps(HoldsThread{}); }

// SPDX-License-Identifier: MIT
// Compile-fail test: a trivially copyable struct with a pointer field is not copied bitwise.
// Must not compile; CMakeLists.txt checks that the error names the type.
#include <multiprocessing/serialize.hpp>

struct ListNode {
  int value;
  ListNode* next;
};
namespace mp = multiprocessing;

void compile_fail() { (void)mp::dumps(ListNode{}); }

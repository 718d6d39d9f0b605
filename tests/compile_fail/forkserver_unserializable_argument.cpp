// SPDX-License-Identifier: MIT
// Must not compile: a raw pointer argument means nothing in a fresh execution of the program.
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

struct Opaque {
  int* where;
};

void use(Opaque) {}

int main() {
  int value = 0;
  auto p = mp::ForkServerContext{}.Process(use, Opaque{&value});
  p.start();
}

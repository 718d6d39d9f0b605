// SPDX-License-Identifier: MIT
// Must not compile: a capturing lambda cannot cross exec, and SpawnContext knows its start method
// at compile time.
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

int main() {
  int captured = 1;
  auto p = mp::SpawnContext{}.Process([captured] { (void)captured; });
  p.start();
}

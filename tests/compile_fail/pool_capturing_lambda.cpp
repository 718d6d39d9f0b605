// SPDX-License-Identifier: MIT
// Must not compile: a Pool's workers exist before the task, so the spawn rules apply under every
// start method, and a capturing lambda cannot cross to them.
#include <multiprocessing.hpp>

namespace mp = multiprocessing;

int main() {
  int captured = 1;
  mp::Pool pool(1);
  (void)pool.apply_async([captured](int x) { return x + captured; }, 1).get();
}

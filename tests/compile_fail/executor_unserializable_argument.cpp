// SPDX-License-Identifier: MIT
// Must not compile: every argument of a ProcessPoolExecutor call crosses to a worker process.
#include <multiprocessing.hpp>

#include <thread>

namespace mp = multiprocessing;

struct Opaque {
  std::thread t;  // cannot be serialized
};

int use(const Opaque&) { return 0; }

int main() {
  mp::futures::ProcessPoolExecutor ex(1);
  (void)ex.submit(use, Opaque{}).result();
}

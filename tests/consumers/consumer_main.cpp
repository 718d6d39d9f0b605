// SPDX-License-Identifier: MIT
// A user's program, built by each consumer project (find_package of the installed package or
// the build tree, and add_subdirectory of the source tree).
// Starts a process under the default start method and one under spawn, joins both, and exits 0
// only if both children exited 0.
#include <cstdio>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

namespace {
void work() {}
}  // namespace

int main() {
  mp::freeze_support();

  mp::Process p(work);
  p.start();
  p.join();

  auto spawned = mp::get_context("spawn").Process(work);
  spawned.start();
  spawned.join();

  if (p.exitcode() != 0 || spawned.exitcode() != 0) {
    std::fprintf(stderr, "consumer: a child did not exit with 0\n");
    return 1;
  }
  std::puts("consumer: ok");
  return 0;
}

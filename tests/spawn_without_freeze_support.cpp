// SPDX-License-Identifier: MIT
// A program that breaks the spawn rules on purpose, to show that a broken spawn reports why
// instead of hanging or recursing:
//   (no arguments)  main() starts a spawn process without calling mp::freeze_support() first: the
//                   re-executed child reaches start() again, refuses to recurse, and the parent's
//                   start() throws ProcessError mentioning freeze_support.
//   slow            the child stalls before its handshake; with MP_HANDSHAKE_TIMEOUT=0.5 the
//                   parent's start() gives up after about half a second.
// Prints "caught: <message> after <seconds> s" and exits 0 when start() threw in the expected time.
#include <multiprocessing.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace mp = multiprocessing;

int main(int argc, char* argv[]) {
  const bool slow = argc > 1 && std::strcmp(argv[1], "slow") == 0;
  if (slow && std::getenv("MP_SPAWN_FD") != nullptr) {
    std::this_thread::sleep_for(std::chrono::seconds(20));  // a child that never answers in time
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    auto p = mp::get_context("spawn").Process(+[] {});
    p.start();
    p.join();
    std::puts("start() succeeded, which it must not");
    return 1;
  } catch (const mp::ProcessError& e) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
    std::printf("caught: %s after %.2f s\n", e.what(), took.count());
    if (slow) return took.count() >= 0.45 && took.count() < 5.0 ? 0 : 1;
    return took.count() < 10.0 ? 0 : 1;
  }
}

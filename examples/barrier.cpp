// SPDX-License-Identifier: MIT
// C++ twin of seed 000's Barrier note ("可以方便的指定数量到多少后同步": a Barrier lets a given
// number of parties synchronise), written out as the usual Python program:
//
//   def worker(barrier, i):
//       print(f'worker {i} waiting')
//       index = barrier.wait()
//       print(f'worker {i} passed the barrier')
//   barrier = Barrier(3, action=lambda: print('all 3 arrived'))
//   for i in range(3): Process(target=worker, args=(barrier, i)).start()
//
// No worker passes before all three have arrived; the action runs once, in one of them, before
// any is released.
#include <multiprocessing.hpp>

#include <iostream>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void worker(mp::Barrier barrier, int i) {
  std::cout << "worker " << i << " waiting" << std::endl;
  (void)barrier.wait(10s);
  std::cout << "worker " << i << " passed the barrier" << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Barrier barrier(3, [] { std::cout << "all 3 arrived" << std::endl; });
  std::vector<mp::Process> workers;
  for (int i = 0; i < 3; ++i) {
    workers.emplace_back(worker, barrier, i);
    workers.back().start();
  }
  for (auto& w : workers) w.join();
  for (auto& w : workers) {
    if (w.exitcode() != 0) return 1;
  }
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 004's Lock example:
//
//   def l(lock, num):
//       lock.acquire()
//       print("Hello Num: %s" % (num))
//       lock.release()
//   if __name__ == '__main__':
//       lock = Lock()
//       for num in range(20):
//           Process(target=l, args=(lock, num)).start()
//
// Twenty processes share one Lock, so their lines never interleave. The Lock is a handle: each
// child gets a copy that refers to the same lock. Unlike the Python program, main joins them.
#include <multiprocessing.hpp>

#include <iostream>
#include <vector>

namespace mp = multiprocessing;

void l(mp::Lock lock, int num) {
  lock.acquire();
  std::cout << "Hello Num: " << num << std::endl;
  lock.release();
}

int main() {
  mp::freeze_support();
  mp::Lock lock;
  std::vector<mp::Process> processes;
  for (int num = 0; num < 20; ++num) {
    processes.emplace_back(l, lock, num);
    processes.back().start();
  }
  for (auto& p : processes) p.join();
}

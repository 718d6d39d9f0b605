// SPDX-License-Identifier: MIT
// C++ twin of seed 003's "多进程安全: 锁机制" program:
//
//   def add(lock, counter):
//       for _ in range(100000):
//           with lock:
//               counter.value += 1
//   if __name__ == '__main__':
//       lock = Lock()
//       counter = Value('i', 0)
//       procs = [Process(target=add, args=(lock, counter)) for _ in range(4)]
//       ...
//       print('结果:', counter.value)    # 400000
//
// Four processes increment one shared integer under one Lock: no update is lost. std::lock_guard
// is the C++ spelling of `with lock:`.
#include <multiprocessing.hpp>

#include <iostream>
#include <mutex>
#include <vector>

namespace mp = multiprocessing;

void add(mp::Lock lock, mp::Value<int> counter) {
  for (int i = 0; i < 100000; ++i) {
    std::lock_guard guard(lock);
    counter.value() += 1;
  }
}

int main() {
  mp::freeze_support();
  mp::Lock lock;
  mp::Value<int> counter(0);
  std::vector<mp::Process> procs;
  for (int i = 0; i < 4; ++i) procs.emplace_back(add, lock, counter);
  for (auto& p : procs) p.start();
  for (auto& p : procs) p.join();
  std::cout << "结果: " << counter.value() << std::endl;
  return counter.value() == 400000 ? 0 : 1;
}

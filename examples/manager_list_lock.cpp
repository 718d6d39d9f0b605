// SPDX-License-Identifier: MIT
// C++ twin of seed 001's Manager program: a producer adds 1 a thousand times and a consumer
// subtracts 1 a thousand times from ls[0], each under the manager's Lock; it prints 0.
//
//   def producer(ls, lock):                  if __name__ == "__main__":
//       for i in range(1000):                    manager = Manager()
//           lock.acquire()                       ls = manager.list()
//           ls[0] += 1                           lock = manager.Lock()
//           lock.release()                       ls.append(0)
//   def consumer(ls, lock):                      p = Process(target=producer, args=(ls, lock))
//       for i in range(1000):                    c = Process(target=consumer, args=(ls, lock))
//           lock.acquire()                       p.start(); c.start(); p.join(); c.join()
//           ls[0] -= 1                           print(ls[0])
//           lock.release()
//
// Each proxy operation is atomic on its own; the read-modify-write `ls[0] += 1` is two of them,
// so it needs the Lock exactly as in Python.
#include <iostream>
#include <mutex>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void producer(mp::ListProxy<int> ls, mp::Lock lock) {
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard guard(lock);
    ls.set(0, ls.get(0) + 1);
  }
}

void consumer(mp::ListProxy<int> ls, mp::Lock lock) {
  for (int i = 0; i < 1000; ++i) {
    std::lock_guard guard(lock);
    ls.set(0, ls.get(0) - 1);
  }
}

int main() {
  mp::freeze_support();
  mp::Manager manager;
  auto ls = manager.list<int>();
  auto lock = manager.Lock();
  ls.append(0);
  mp::Process p(producer, ls, lock);
  mp::Process c(consumer, ls, lock);
  p.start();
  c.start();
  p.join();
  c.join();
  std::cout << ls.get(0) << std::endl;
}

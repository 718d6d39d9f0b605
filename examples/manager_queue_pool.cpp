// SPDX-License-Identifier: MIT
// C++ twin of seed 001's Manager().Queue() shared by Pool tasks: a producer task puts "a", a
// consumer task gets it and prints it.
//
//   def producer(queue):                     if __name__ == "__main__":
//       queue.put("a")                           q = Manager().Queue()
//   def consumer(queue):                         pool = Pool(2)
//       data = queue.get()                       pool.apply_async(producer, args=(q,))
//       print(data)                              pool.apply_async(consumer, args=(q,))
//                                                pool.close(); pool.join()
//
// Python needs the manager because a plain multiprocessing.Queue cannot be pickled into a Pool
// task; here the manager's Queue is the library's process-shared Queue, which can (and so could a
// plain mp::Queue: see queue_in_pool). Run with "spawn" or "forkserver" to use those start methods.
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void producer(mp::Queue<std::string> queue) { queue.put("a"); }

void consumer(mp::Queue<std::string> queue) {
  const auto data = queue.get(30s);
  std::cout << data << std::endl;
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  mp::Manager manager;
  auto q = manager.Queue<std::string>();
  auto pool = ctx.Pool(2);
  auto p = pool.apply_async(producer, q);
  auto c = pool.apply_async(consumer, q);
  pool.close();
  pool.join();
  p.get();  // rethrows if a task failed
  c.get();
}

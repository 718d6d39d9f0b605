// SPDX-License-Identifier: MIT
// C++ twin of seed 001's Queue shared by Pool tasks:
//
//   from multiprocessing import Pool, Manager
//   def producer(queue):
//       queue.put("a")
//   def consumer(queue):
//       data = queue.get()
//       print(data)
//   if __name__ == "__main__":
//       q = Manager().Queue()    # a plain multiprocessing.Queue() here prints nothing
//       pool = Pool(2)
//       pool.apply_async(producer, args=(q,))
//       pool.apply_async(consumer, args=(q,))
//       pool.close()
//       pool.join()
//
// Python cannot pass a multiprocessing.Queue to Pool tasks (the seed shows the program silently
// printing nothing) and needs a Manager's proxy. Here the plain mp::Queue handle works: it travels
// with the task under every start method. Run it with "spawn" or "forkserver" as the first argument.
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void producer(mp::Queue<std::string> queue) { queue.put("a"); }

void consumer(mp::Queue<std::string> queue) {
  const std::string data = queue.get(30s);
  std::cout << data << std::endl;
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  mp::Queue<std::string> q;
  auto pool = ctx.Pool(2);
  auto p = pool.apply_async(producer, q);
  auto c = pool.apply_async(consumer, q);
  pool.close();
  pool.join();
  p.get();  // rethrows if a task failed
  c.get();
}

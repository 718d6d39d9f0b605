// SPDX-License-Identifier: MIT
// C++ twin of the Queue producer/consumer of seeds 001 and 003:
//
//   from multiprocessing import Process, Queue
//   def producer(queue):
//       for i in range(5):
//           queue.put(i)
//       queue.put(None)          # the end marker
//   def consumer(queue):
//       while True:
//           data = queue.get()
//           if data is None:
//               break
//           print(data)
//   if __name__ == "__main__":
//       q = Queue()
//       p = Process(target=producer, args=(q,))
//       c = Process(target=consumer, args=(q,))
//       p.start()
//       c.start()
//       p.join()
//       c.join()
//
// Python's None end marker is an empty std::optional. The Queue handle is passed to both children
// like any other argument; run it with "spawn" as the first argument to start them that way.
#include <iostream>
#include <optional>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void producer(mp::Queue<std::optional<int>> queue) {
  for (int i = 0; i < 5; ++i) queue.put(i);
  queue.put(std::nullopt);  // the end marker
}

void consumer(mp::Queue<std::optional<int>> queue) {
  for (;;) {
    const std::optional<int> data = queue.get();
    if (!data) break;
    std::cout << *data << std::endl;
  }
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  mp::Queue<std::optional<int>> q;
  auto p = ctx.Process(producer, q);
  auto c = ctx.Process(consumer, q);
  p.start();
  c.start();
  p.join();
  c.join();
  return p.exitcode() == 0 && c.exitcode() == 0 ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 004's JoinableQueue program:
//
//   from multiprocessing import Process, JoinableQueue
//   import time, random
//   def consumer(q):
//       while True:
//           res = q.get()
//           print('消费者拿到了 %s' % res)
//           q.task_done()
//   def producer(seq, q):
//       for item in seq:
//           time.sleep(random.randrange(1, 2))
//           q.put(item)
//           print('生产者做好了 %s' % item)
//       q.join()
//   if __name__ == "__main__":
//       q = JoinableQueue()
//       seq = ('产品%s' % i for i in range(5))
//       p = Process(target=consumer, args=(q,))
//       p.daemon = True  # a daemon: it ends with the main process; q.join() makes sure all was consumed
//       p.start()
//       producer(seq, q)
//       print('主线程')
//
// The producer's one-second pauses are shortened to 0.1 s.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void consumer(mp::JoinableQueue<std::string> q) {
  for (;;) {
    const std::string res = q.get();
    std::cout << "消费者拿到了 " << res << std::endl;
    q.task_done();
  }
}

void producer(const std::vector<std::string>& seq, mp::JoinableQueue<std::string>& q) {
  for (const auto& item : seq) {
    std::this_thread::sleep_for(100ms);
    q.put(item);
    std::cout << "生产者做好了 " << item << std::endl;
  }
  q.join();
}

int main() {
  mp::freeze_support();
  mp::JoinableQueue<std::string> q;
  std::vector<std::string> seq;
  for (int i = 0; i < 5; ++i) seq.push_back("产品" + std::to_string(i));
  mp::Process p(consumer, q);
  p.daemon(true);  // a daemon: it ends with the main process; q.join() makes sure all was consumed
  p.start();
  producer(seq, q);
  std::cout << "主线程" << std::endl;
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 004's Queue writer/reader:
//
//   from multiprocessing import Process, Queue
//   import os, time, random
//   def write(q):
//       print('Process to write: %s' % os.getpid())
//       for value in ['A', 'B', 'C']:
//           print('Put %s to queue...' % value)
//           q.put(value)
//           time.sleep(random.random())
//   def read(q):
//       print('Process to read: %s' % os.getpid())
//       while True:
//           value = q.get(True)
//           print('Get %s from queue.' % value)
//   if __name__ == "__main__":
//       q = Queue()
//       pw = Process(target=write, args=(q,))
//       pr = Process(target=read, args=(q,))
//       pw.start()
//       pr.start()
//       pw.join()        # wait for the writer
//       pr.terminate()   # the reader loops forever: it can only be terminated
//
// write() and read() are named writer() and reader() here (POSIX owns the other names). The
// writer's pauses are shortened to at most 0.2 s, and the reader is given a moment to print
// the last value before it is terminated (Python's version may terminate it before it does).
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <random>
#include <string>
#include <thread>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void writer(mp::Queue<std::string> q) {
  std::cout << "Process to write: " << ::getpid() << std::endl;
  std::mt19937 rng(std::random_device{}());
  for (const char* value : {"A", "B", "C"}) {
    std::cout << "Put " << value << " to queue..." << std::endl;
    q.put(value);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
  }
}

void reader(mp::Queue<std::string> q) {
  std::cout << "Process to read: " << ::getpid() << std::endl;
  for (;;) {
    const std::string value = q.get(true);
    std::cout << "Get " << value << " from queue." << std::endl;
  }
}

int main() {
  mp::freeze_support();
  mp::Queue<std::string> q;
  mp::Process pw(writer, q);
  mp::Process pr(reader, q);
  pw.start();
  pr.start();
  pw.join();  // wait for the writer
  const auto t0 = std::chrono::steady_clock::now();
  while (!q.empty() && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(100ms);
  pr.terminate();  // the reader loops forever: it can only be terminated
  pr.join();
  return pw.exitcode() == 0 && pr.exitcode() == -SIGTERM ? 0 : 1;
}

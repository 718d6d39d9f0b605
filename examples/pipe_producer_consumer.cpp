// SPDX-License-Identifier: MIT
// C++ twin of seed 001's Pipe program (a duplex pipe between a producer and a consumer):
//
//   from multiprocessing import Process, Pipe
//   def producer(pipe):
//       pipe.send("a")
//   def consumer(pipe):
//       data = pipe.recv()
//       print(data)
//   if __name__ == "__main__":
//       pipe1, pipe2 = Pipe()
//       p = Process(target=producer, args=(pipe1,))
//       c = Process(target=consumer, args=(pipe2,))
//       p.start()
//       c.start()
//       p.join()
//       c.join()
//
// Two children share the two ends of one duplex Pipe: one sends a string, the other prints it.
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void producer(mp::Connection pipe) { pipe.send(std::string("a")); }

void consumer(mp::Connection pipe) {
  const auto data = pipe.recv<std::string>();
  std::cout << data << std::endl;
}

int main() {
  mp::freeze_support();
  auto [pipe1, pipe2] = mp::Pipe();
  mp::Process p(producer, pipe1);
  mp::Process c(consumer, pipe2);
  p.start();
  c.start();
  p.join();
  c.join();
  return p.exitcode() == 0 && c.exitcode() == 0 ? 0 : 1;
}

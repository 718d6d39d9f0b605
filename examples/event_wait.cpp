// SPDX-License-Identifier: MIT
// C++ twin of the Event programs of seeds 002 and 004:
//
//   def wait_for_event(e):
//       print("wait for event:starting")
//       e.wait()
//       print("wait for event:e_is_set()->", e.is_set())
//   def wait_for_event_timeout(e, t):
//       print("wait_for_event_timeout:starting")
//       e.wait(t)
//       print("wait_for_event_timeout:e.is_set()->", e.is_set())
//   if __name__ == '__main__':
//       e = multiprocessing.Event()
//       w1 = Process(name="block", target=wait_for_event, args=(e,)); w1.start()
//       w2 = Process(name="nonblock", target=wait_for_event_timeout, args=(e, 2)); w2.start()
//       print("main:waiting before calling Event.set()")
//       time.sleep(3)
//       e.set()
//       print("main:event is set")
//
// One child waits for the event without a timeout, the other gives up after its timeout (0.2 s
// here instead of 2 s; main sets the event after 0.5 s instead of 3 s).
#include <multiprocessing.hpp>

#include <chrono>
#include <iostream>
#include <thread>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void wait_for_event(mp::Event e) {
  std::cout << "wait for event:starting" << std::endl;
  e.wait();
  std::cout << "wait for event:e_is_set()-> " << (e.is_set() ? "True" : "False") << std::endl;
}

void wait_for_event_timeout(mp::Event e, double t) {
  std::cout << "wait_for_event_timeout:starting" << std::endl;
  e.wait(std::chrono::duration<double>(t));
  std::cout << "wait_for_event_timeout:e.is_set()-> " << (e.is_set() ? "True" : "False") << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Event e;
  mp::Process w1(wait_for_event, e);
  w1.name("block");
  w1.start();
  mp::Process w2(wait_for_event_timeout, e, 0.2);
  w2.name("nonblock");
  w2.start();
  std::cout << "main:waiting before calling Event.set()" << std::endl;
  std::this_thread::sleep_for(500ms);
  e.set();
  std::cout << "main:event is set" << std::endl;
  w1.join();
  w2.join();
}

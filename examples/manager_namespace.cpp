// SPDX-License-Identifier: MIT
// C++ twin of seed 002's shared Namespace: the consumer looks at ns.value before the producer has
// set it (an AttributeError), waits for the Event, then prints the value.
//
//   def producer(ns, event):                 def consumer(ns, event):
//       ns.value = "this is a value"             try:
//       event.set()                                  print("Before event:{}".format(ns.value))
//                                                except Exception as err:
//                                                    print("Before event error:", str(err))
//                                                event.wait()
//                                                print("After event:", ns.value)
//   mgr = multiprocessing.Manager(); namespace = mgr.Namespace(); event = multiprocessing.Event()
//   c.start(); p.start(); c.join(); p.join()
//
// Python's output depends on the consumer winning the race to look first; here the producer
// waits for the consumer's first look (a second Event), so the program always prints the same.
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void producer(mp::NamespaceProxy ns, mp::Event event, mp::Event looked) {
  (void)looked.wait(30s);
  ns.set("value", std::string("this is a value"));
  event.set();
}

void consumer(mp::NamespaceProxy ns, mp::Event event, mp::Event looked) {
  try {
    const auto value = ns.get<std::string>("value");
    std::cout << "Before event:" << value << std::endl;
  } catch (const mp::AttributeError& err) {
    std::cout << "Before event error: " << err.what() << std::endl;
  }
  looked.set();
  if (!event.wait(30s)) return;
  std::cout << "After event: " << ns.get<std::string>("value") << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Manager mgr;
  auto ns = mgr.Namespace();
  mp::Event event;
  mp::Event looked;
  mp::Process p(producer, ns, event, looked);
  mp::Process c(consumer, ns, event, looked);
  c.start();
  p.start();
  c.join();
  p.join();
}

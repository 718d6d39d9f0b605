// SPDX-License-Identifier: MIT
// C++ twin of the Process subclasses of seeds 001 and 003:
//
//   class Downloader(Process):
//       def __init__(self, sleep_time):
//           super().__init__()
//           self.__sleep_time = sleep_time
//       def run(self):
//           time.sleep(self.__sleep_time)
//           print("sub process %d is finished" % self.pid)
//   d = Downloader(1)
//   print(d.pid)   # None: not started yet
//   d.start()
//   print(d.pid)   # the child's pid
//   d.join()
//   print("main process is finished")
//
//   class ClockProcess(multiprocessing.Process):   # prints the time n times, every interval
//       def run(self): ...
//
// Subclassing Process and overriding run(), as in Python. The object is copied into the child by
// fork, so run() sees the members set in the constructor; inside the child, pid() is its own pid.
#include <multiprocessing.hpp>

#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

class Downloader : public mp::Process {
 public:
  explicit Downloader(std::chrono::milliseconds sleep_time) : sleep_time_(sleep_time) {}
  void run() override {
    std::this_thread::sleep_for(sleep_time_);
    std::cout << "sub process " << *pid() << " is finished" << std::endl;
  }

 private:
  std::chrono::milliseconds sleep_time_;
};

class ClockProcess : public mp::Process {
 public:
  explicit ClockProcess(std::chrono::milliseconds interval) : interval_(interval) {}
  void run() override {
    for (int n = 3; n > 0; --n) {
      const std::time_t now = std::time(nullptr);
      char text[64];
      std::strftime(text, sizeof text, "%a %b %e %H:%M:%S %Y", std::localtime(&now));
      std::cout << "当前时间: " << text << std::endl;
      std::this_thread::sleep_for(interval_);
    }
  }

 private:
  std::chrono::milliseconds interval_;
};

int main() {
  mp::freeze_support();
  Downloader d(200ms);
  std::cout << (d.pid() ? std::to_string(*d.pid()) : "None") << std::endl;
  d.start();
  std::cout << *d.pid() << std::endl;
  d.join();
  std::cout << "main process is finished" << std::endl;

  ClockProcess clock(100ms);
  clock.start();
  clock.join();
  return d.exitcode() == 0 && clock.exitcode() == 0 ? 0 : 1;
}

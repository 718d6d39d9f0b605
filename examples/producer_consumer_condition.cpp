// SPDX-License-Identifier: MIT
// C++ twin of seed 000, the producer-consumer with two Conditions ("满/空") over a shared counter:
//
//   MAXSIZE = 10
//   class Producer(Process):
//       def run(self):
//           while True:
//               with self.not_full:
//                   while self.counter.value >= MAXSIZE:
//                       print(f"{self.name}: buffer full ({self.counter.value}), waiting")
//                       self.not_full.wait()
//                   self.counter.value += 1
//                   print(f"{self.name}: produced → buffer size = {self.counter.value}")
//               with self.not_empty:
//                   self.not_empty.notify_all()
//               time.sleep(self.sleep * random.random())
//   class Consumer(Process): ... the mirror image ...
//   if __name__ == '__main__':
//       not_full = Condition(); not_empty = Condition(); counter = Value('i', 0)
//       2 daemon Producers (sleep 1.0), 3 daemon Consumers (sleep 1.5)
//       try: time.sleep(20)
//       finally: print("Main process exiting; all daemon workers will be terminated.")
//
// Same structure and output, on a shorter clock (sleeps of up to 100/150 ms, main runs 3 s). One
// fix: the Python program changes the counter under two different locks (not_full's in producers,
// not_empty's in consumers), so increments and decrements can race; here the update also holds the
// counter's own lock. When main returns, the daemon workers are terminated, as in Python.
#include <multiprocessing.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <unistd.h>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

constexpr int MAXSIZE = 10;

class Producer : public mp::Process {
 public:
  Producer(mp::Condition not_full, mp::Condition not_empty, mp::Value<int> counter,
           std::chrono::milliseconds sleep)
      : not_full_(std::move(not_full)), not_empty_(std::move(not_empty)), counter_(std::move(counter)),
        sleep_(sleep) {}

  void run() override {
    std::mt19937 random(static_cast<unsigned>(::getpid()));
    for (;;) {
      {
        std::lock_guard with(not_full_);
        while (counter_.value() >= MAXSIZE) {
          std::cout << name() << ": buffer full (" << counter_.value() << "), waiting" << std::endl;
          not_full_.wait();
        }
        std::lock_guard update(counter_.get_lock());
        counter_.value() += 1;
        std::cout << name() << ": produced → buffer size = " << counter_.value() << std::endl;
      }
      {
        std::lock_guard with(not_empty_);
        not_empty_.notify_all();
      }
      std::this_thread::sleep_for(sleep_ * std::uniform_real_distribution<>(0, 1)(random));
    }
  }

 private:
  mp::Condition not_full_, not_empty_;
  mp::Value<int> counter_;
  std::chrono::milliseconds sleep_;
};

class Consumer : public mp::Process {
 public:
  Consumer(mp::Condition not_full, mp::Condition not_empty, mp::Value<int> counter,
           std::chrono::milliseconds sleep)
      : not_full_(std::move(not_full)), not_empty_(std::move(not_empty)), counter_(std::move(counter)),
        sleep_(sleep) {}

  void run() override {
    std::mt19937 random(static_cast<unsigned>(::getpid()));
    for (;;) {
      {
        std::lock_guard with(not_empty_);
        while (counter_.value() <= 0) {
          std::cout << name() << ": buffer empty, waiting" << std::endl;
          not_empty_.wait();
        }
        std::lock_guard update(counter_.get_lock());
        counter_.value() -= 1;
        std::cout << name() << ": consumed ← buffer size = " << counter_.value() << std::endl;
      }
      {
        std::lock_guard with(not_full_);
        not_full_.notify_all();
      }
      std::this_thread::sleep_for(sleep_ * std::uniform_real_distribution<>(0, 1)(random));
    }
  }

 private:
  mp::Condition not_full_, not_empty_;
  mp::Value<int> counter_;
  std::chrono::milliseconds sleep_;
};

int main() {
  mp::freeze_support();
  mp::Condition not_full;
  mp::Condition not_empty;
  mp::Value<int> counter(0);

  std::vector<Producer> producers;
  for (int i = 0; i < 2; ++i) producers.emplace_back(not_full, not_empty, counter, 100ms);
  for (auto& p : producers) {
    p.daemon(true);
    p.start();
  }
  std::vector<Consumer> consumers;
  for (int i = 0; i < 3; ++i) consumers.emplace_back(not_full, not_empty, counter, 150ms);
  for (auto& c : consumers) {
    c.daemon(true);
    c.start();
  }
  std::this_thread::sleep_for(3s);
  std::cout << "Main process exiting; all daemon workers will be terminated." << std::endl;
}

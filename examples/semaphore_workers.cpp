// SPDX-License-Identifier: MIT
// C++ twin of the Semaphore programs of seeds 002 and 004 ("go_wc"):
//
//   def go_wc(sem, user):
//       sem.acquire()
//       print('%s 占到一个茅坑' % user)
//       time.sleep(random.randint(0, 3))
//       sem.release()
//       print(user, 'OK')
//   if __name__ == '__main__':
//       sem = Semaphore(2)
//       for i in range(5): Process(target=go_wc, args=(sem, 'user%s' % i)).start() ...
//
// At most two of the five users hold the semaphore at once. The sleeps are shortened to
// 0-300 ms; a shared counter checks the limit and the program prints the most it saw.
#include <multiprocessing.hpp>

#include <chrono>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace mp = multiprocessing;

void go_wc(mp::Semaphore sem, std::string user, mp::Value<int> inside, mp::Value<int> most) {
  sem.acquire();
  {
    std::lock_guard guard(inside.get_lock());
    if (++inside.value() > most.value()) most.value() = inside.value();
  }
  std::cout << user << " 占到一个茅坑" << std::endl;
  std::mt19937 random(static_cast<unsigned>(::getpid()));
  std::this_thread::sleep_for(std::chrono::milliseconds(random() % 4 * 100));
  {
    std::lock_guard guard(inside.get_lock());
    --inside.value();
  }
  sem.release();
  std::cout << user << " OK" << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Semaphore sem(2);
  mp::Value<int> inside(0);
  mp::Value<int> most(0);
  std::vector<mp::Process> p_l;
  for (int i = 0; i < 5; ++i) {
    p_l.emplace_back(go_wc, sem, "user" + std::to_string(i), inside, most);
    p_l.back().start();
  }
  for (auto& p : p_l) p.join();
  std::cout << "at most " << most.value() << " at once" << std::endl;
  return most.value() <= 2 ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// C++ twin of the Condition programs of seeds 002 and 004:
//
//   def stage_1(cond):
//       name = multiprocessing.current_process().name
//       print('Starting', name)
//       with cond:
//           print('{} done and ready for stage 2'.format(name))
//           cond.notify_all()
//   def stage_2(cond):
//       name = multiprocessing.current_process().name
//       print('Starting', name)
//       with cond:
//           cond.wait()
//           print('{} running'.format(name))
//   if __name__ == '__main__':
//       condition = multiprocessing.Condition()
//       s1 = Process(name='s1', target=stage_1, args=(condition,))
//       s2_clients = [Process(name='stage_2[{}]'.format(i), target=stage_2, args=(condition,))
//                     for i in range(1, 3)]
//       for c in s2_clients: c.start(); time.sleep(1)
//       s1.start(); s1.join(); for c in s2_clients: c.join()
//
// stage_1 finishes its part and wakes every stage_2 waiting on the Condition. The Python program
// relies on its one-second sleeps so that stage_2 is already waiting when stage_1 notifies, and
// hangs otherwise; here stage_1 also sets a shared flag under the condition's lock, and stage_2
// waits with wait_for(flag) - the usual way to never miss a notification.
#include <multiprocessing.hpp>

#include <iostream>
#include <mutex>
#include <string>
#include <vector>

namespace mp = multiprocessing;

void stage_1(mp::Condition cond, mp::RawValue<bool> done) {
  const std::string name = mp::current_process().name();
  std::cout << "Starting " << name << std::endl;
  std::lock_guard with(cond);
  std::cout << name << " done and ready for stage 2" << std::endl;
  done.value() = true;
  cond.notify_all();
}

void stage_2(mp::Condition cond, mp::RawValue<bool> done) {
  const std::string name = mp::current_process().name();
  std::cout << "Starting " << name << std::endl;
  std::lock_guard with(cond);
  cond.wait_for([&] { return done.value(); });
  std::cout << name << " running" << std::endl;
}

int main() {
  mp::freeze_support();
  mp::Condition condition;
  mp::RawValue<bool> done(false);
  mp::Process s1(stage_1, condition, done);
  s1.name("s1");
  std::vector<mp::Process> s2_clients;
  for (int i = 1; i < 3; ++i) {
    s2_clients.emplace_back(stage_2, condition, done);
    s2_clients.back().name("stage_2[" + std::to_string(i) + "]");
  }
  for (auto& c : s2_clients) c.start();
  s1.start();
  s1.join();
  for (auto& c : s2_clients) c.join();
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 003's parallel tasks:
//
//   def task(name):
//       print(f'{name} 开始')
//       time.sleep(2)
//       print(f'{name} 结束')
//   if __name__ == '__main__':
//       proc_list = []
//       for i in range(3):
//           p = Process(target=task, args=(f'进程{i+1}',))
//           p.start()
//           proc_list.append(p)
//       for p in proc_list:
//           p.join()
//       print('所有子进程结束')
//
// Three processes share the work and run at the same time: the whole program takes one task's
// time, not three (the sleep is shortened to 0.5 s). The start method can be chosen on the command
// line (fork, spawn or forkserver): the program is the same under each.
#include <multiprocessing.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

void task(const std::string& name) {
  std::cout << name << " 开始" << std::endl;
  std::this_thread::sleep_for(500ms);
  std::cout << name << " 结束" << std::endl;
}

int main(int argc, char* argv[]) {
  mp::freeze_support();
  if (argc > 1) mp::set_start_method(argv[1]);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<mp::Process> proc_list;
  for (int i = 0; i < 3; ++i) {
    mp::Process p(task, "进程" + std::to_string(i + 1));
    p.start();
    proc_list.push_back(p);
  }
  for (auto& p : proc_list) p.join();
  std::cout << "所有子进程结束" << std::endl;
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  std::cout << "(" << mp::get_start_method() << ", " << took.count() << " s for 3 tasks of 0.5 s)"
            << std::endl;
  for (auto& p : proc_list) {
    if (p.exitcode() != 0) return 1;
  }
  return 0;
}

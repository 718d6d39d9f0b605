// SPDX-License-Identifier: MIT
// C++ twin of seed 002's shared dict: ten processes each store one pair in a Manager dict.
//
//   def worker(d, key, value):
//       d[key] = value
//   if __name__ == '__main__':
//       mgr = multiprocessing.Manager()
//       d = mgr.dict()
//       jobs = [multiprocessing.Process(target=worker, args=(d, i, i*2)) for i in range(10)]
//       for i in jobs: i.start()
//       for j in jobs: j.join()
//       print("D->", d)
//
// Python prints the pairs in the order the workers happened to finish; the C++ program prints the
// same dict sorted by key (copy() is a std::map), so its output is always the same.
#include <iostream>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void worker(mp::DictProxy<int, int> d, int key, int value) { d.set(key, value); }

int main() {
  mp::freeze_support();
  mp::Manager mgr;
  auto d = mgr.dict<int, int>();
  std::vector<mp::Process> jobs;
  for (int i = 0; i < 10; ++i) jobs.emplace_back(worker, d, i, i * 2);
  for (auto& j : jobs) j.start();
  for (auto& j : jobs) j.join();
  std::cout << "D-> {";
  const char* sep = "";
  for (const auto& [k, v] : d.copy()) {
    std::cout << sep << k << ": " << v;
    sep = ", ";
  }
  std::cout << "}" << std::endl;
}

// SPDX-License-Identifier: MIT
// C++ twin of the Pool.map programs of seeds 003 and 004:
//
//   def square(n):                                # seed 003
//       print('计算', n, '在进程', os.getpid())
//       time.sleep(1)
//       return n * n
//   if __name__ == '__main__':
//       with Pool(processes=3) as pool:
//           results = pool.map(square, range(5))
//       print('返回结果:', results)
//
//   # Pool+map                                    # seed 004
//   def test(i):
//       print(i)
//   if __name__ == "__main__":
//       lists = range(100)
//       pool = Pool()
//       pool.map(test, lists)
//       pool.close()
//       pool.join()
//
// Python's `with` block is a C++ scope: leaving it destroys the pool, which terminates it, as
// Pool.__exit__ does. map blocks until every result is back and returns them in input order,
// whichever worker computed them (and whatever order they printed in). Seed 003's sleep is 100 ms
// here. (The line creating seed 004's pool is lost in the article; Pool() is the default.)
// Run it with "spawn" or "forkserver" as the first argument to use that start method.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int square(int n) {
  std::cout << "计算 " << n << " 在进程 " << ::getpid() << std::endl;
  std::this_thread::sleep_for(100ms);
  return n * n;
}

void test(int i) { std::cout << i << std::endl; }

// Python's range(n), as a vector (std::views::iota does not compile with clang < 16 and
// libstdc++ 12).
std::vector<int> range(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

// Python's repr of a list of ints: [0, 1, 4].
std::string repr(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");

  std::vector<int> results;
  {
    auto pool = ctx.Pool({.processes = 3});
    results = pool.map(square, range(5));
  }
  std::cout << "返回结果: " << repr(results) << std::endl;

  const auto lists = range(100);
  auto pool = ctx.Pool();
  pool.map(test, lists);
  pool.close();
  pool.join();
}

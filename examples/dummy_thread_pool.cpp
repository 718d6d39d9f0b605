// SPDX-License-Identifier: MIT
// C++ twin of seed 004's multiprocessing.dummy remark, "the API is the same, so code switches
// between threads and processes in one line":
//
//   from multiprocessing.dummy import Pool as ThreadPool
//
// applied to the seed's Pool programs (see pool_with_map.cpp and pool_apply_vs_async.cpp):
//
//   def test(i):
//       print(i)
//   if __name__ == "__main__":
//       pool = ThreadPool()                          # Pool+map
//       pool.map(test, range(100))
//       pool.close()
//       pool.join()
//
//       pool = ThreadPool(8)                         # non-blocking
//       for i in range(100):
//           pool.apply_async(test, args=(i,))
//       print("test")
//       pool.close()
//       pool.join()
//
//       pool = ThreadPool(8)                         # blocking
//       for i in range(100):
//           pool.apply(test, args=(i,))
//       print("test")
//       pool.close()
//       pool.join()
//
// and what only threads can do: the workers run in this process, share its memory and take any
// callable, capturing lambdas included (a process Pool needs plain functions and serializable
// arguments):
//
//       main_pid = os.getpid()
//       in_main = pool.map(lambda i: os.getpid() == main_pid, range(16))
//       name = pool.apply(lambda: current_process().name)
//       print("in the main process:", all(in_main), "on", name)
//       total = 0
//       def add(i):
//           global total
//           with lock:
//               total += i
//       pool.map(add, range(100))
//       print("total:", total)                       # 4950
//
// The workers are named as in Python, "Thread-N (worker)". Each line is written with one call, so
// that lines of different threads cannot interleave mid-line (Python's print can).
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <numeric>
#include <string>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

using ThreadPool = mp::dummy::Pool;

void say(const std::string& line) { std::cout << line + "\n" << std::flush; }

void test(int i) { say(std::to_string(i)); }

// Python's range(n), as a vector (std::views::iota does not compile with clang < 16 and
// libstdc++ 12).
std::vector<int> range(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

int main() {
  mp::freeze_support();
  {
    ThreadPool pool;
    pool.map(test, range(100));
    pool.close();
    pool.join();
  }
  {
    ThreadPool pool(8);
    for (int i = 0; i < 100; ++i) pool.apply_async(test, i);
    say("test");
    pool.close();
    pool.join();
  }
  ThreadPool pool(8);
  for (int i = 0; i < 100; ++i) pool.apply(test, i);
  say("test");

  const pid_t main_pid = ::getpid();
  const std::vector<bool> in_main =
      pool.map([main_pid](int) { return ::getpid() == main_pid; }, range(16));
  const std::string name = pool.apply([] { return mp::dummy::current_process().name(); });
  say(std::string("in the main process: ") +
      (std::find(in_main.begin(), in_main.end(), false) == in_main.end() ? "True" : "False") +
      " on " + name);

  std::mutex lock;
  long total = 0;
  pool.map(
      [&](int i) {
        const std::lock_guard guard(lock);
        total += i;
      },
      range(100));
  say("total: " + std::to_string(total));
  pool.close();
  pool.join();
}

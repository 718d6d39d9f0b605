// SPDX-License-Identifier: MIT
// C++ twin of the concurrent.futures programs of seed 004 (seed 001: "ProcessPoolExecutor is used
// exactly like ThreadPoolExecutor"), run on either executor:
//
//   from concurrent import futures
//   def test(num):
//       import time
//       return time.ctime(), num
//   with futures.ThreadPoolExecutor(max_workers=1) as executor:      # submit()
//       future = executor.submit(test, 1)
//       print(future.result())
//
//   data = [1, 2, 3]
//   with futures.ThreadPoolExecutor(max_workers=1) as executor:      # map()
//       for future in executor.map(test, data):
//           print(future)
//
//   from concurrent.futures import ThreadPoolExecutor, wait, as_completed
//   def return_after_5_secs(num):
//       sleep(randint(1, 5))
//       return "Return of {}".format(num)
//   pool = ThreadPoolExecutor(5)                                     # as_completed()
//   futures = []
//   for x in range(5):
//       futures.append(pool.submit(return_after_5_secs, x))
//   print(1)
//   for x in as_completed(futures):
//       print(x.result())
//   print(2)
//
// and the article's wait(fs, timeout, return_when), which returns the (done, not_done) pair:
//
//   done, not_done = wait(futures, return_when=FIRST_COMPLETED)
//   print(len(done), len(not_done))      # 1 4
//   done, not_done = wait(futures)       # ALL_COMPLETED
//   print(len(done), len(not_done))      # 5 0
//
// Instead of randint(1, 5) seconds, call x sleeps (5 - x) tenths of a second: the calls finish in
// the reverse of the order they were submitted, and as_completed() yields them in that order
// (Return of 4 first), where map() keeps the input order. The first argument picks the executor:
// "thread" for ThreadPoolExecutor, or a start method (fork, spawn, forkserver) for
// ProcessPoolExecutor; the program is the same. Every wait has a timeout, as it should.
#include <chrono>
#include <ctime>
#include <iostream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
namespace futures = mp::futures;
using namespace std::chrono_literals;

std::tuple<std::string, int> test(int num) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char text[64];
  std::strftime(text, sizeof text, "%a %b %e %H:%M:%S %Y", &local);  // time.ctime()
  return {text, num};
}

std::string return_after_5_secs(int num) {
  std::this_thread::sleep_for((5 - num) * 100ms);
  return "Return of " + std::to_string(num);
}

// Python's repr of a (str, int) tuple: ('Mon Jan  6 12:00:00 2025', 1).
std::string repr(const std::tuple<std::string, int>& t) {
  return "('" + std::get<0>(t) + "', " + std::to_string(std::get<1>(t)) + ")";
}

// The seed's programs, on executors made by `make_executor(max_workers)`.
template <class MakeExecutor>
void programs(MakeExecutor make_executor) {
  {
    auto executor = make_executor(1);
    auto future = executor.submit(test, 1);
    std::cout << repr(future.result(10s)) << std::endl;
  }
  {
    const std::vector<int> data{1, 2, 3};
    auto executor = make_executor(1);
    for (const auto& future : executor.map(test, data, 10s)) std::cout << repr(future) << std::endl;
  }
  auto pool = make_executor(5);
  std::vector<futures::Future<std::string>> fs;
  for (int x = 0; x < 5; ++x) fs.push_back(pool.submit(return_after_5_secs, x));
  std::cout << 1 << std::endl;
  for (auto& x : futures::as_completed(fs, 10s)) std::cout << x.result() << std::endl;
  std::cout << 2 << std::endl;

  fs.clear();
  for (int x = 0; x < 5; ++x) fs.push_back(pool.submit(return_after_5_secs, x));
  {
    auto [done, not_done] = futures::wait(fs, 10s, futures::FIRST_COMPLETED);
    std::cout << done.size() << ' ' << not_done.size() << std::endl;
  }
  {
    auto [done, not_done] = futures::wait(fs, 10s);
    std::cout << done.size() << ' ' << not_done.size() << std::endl;
  }
}

int main(int argc, char** argv) {
  mp::freeze_support();
  const std::string_view kind = argc > 1 ? argv[1] : "fork";
  if (kind == "thread") {
    std::cout << "ThreadPoolExecutor" << std::endl;
    programs([](int n) { return futures::ThreadPoolExecutor(n); });
  } else {
    const mp::Context ctx = mp::get_context(kind);
    std::cout << "ProcessPoolExecutor (" << kind << ")" << std::endl;
    programs([&](int n) { return futures::ProcessPoolExecutor(n, ctx); });
  }
}

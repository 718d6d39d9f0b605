// SPDX-License-Identifier: MIT
// C++ twin of the Pool.apply_async programs of seeds 000, 001 and 004:
//
//   def work(n):                                  # seed 000
//       print(f'{os.getpid()} run')
//       time.sleep(1)
//       return n ** 2
//   if __name__ == '__main__':
//       p = Pool()
//       res_l = []
//       for i in range(10):
//           res = p.apply_async(work, args=(i,))
//           res_l.append(res)
//       p.close()
//       p.join()
//       for res in res_l:
//           print(res.get())
//
//   def download(sleep_time):                     # seed 001
//       time.sleep(sleep_time)
//       print("download %d is finished" % sleep_time)
//       return sleep_time
//   if __name__ == "__main__":
//       pool = Pool(4)
//       results = []
//       for i in [3, 1, 2]:
//           r = pool.apply_async(download, args=(i,))
//           results.append(r)
//       pool.close()
//       pool.join()
//       for r in results:
//           print(r.get())
//
// and seed 004's tour of AsyncResult: get(timeout) raises when the result is late, ready(),
// successful(), wait(), and get() re-raising the task's exception:
//
//       r = pool.apply_async(download, args=(2,))
//       print(r.ready())                      # False
//       try:
//           r.get(timeout=0.05)
//       except TimeoutError:
//           print("TimeoutError")
//       r.wait()
//       print(r.ready(), r.successful())      # True True
//       print(r.get())                        # 2
//       bad = pool.apply_async(download, args=(-1,))
//       bad.wait()
//       print(bad.successful())               # False
//       try:
//           bad.get()
//       except ValueError as e:
//           print("ValueError:", e)           # sleep length must be non-negative
//
// The results come back in submission order whatever order the tasks finish in. The seconds of
// the seeds are tenths of a second here. Seed 000's second program (apply_async with
// callback=update feeding tqdm) is examples/pool_progress.cpp. Run it with "spawn" or
// "forkserver" as the first argument to use that start method.
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int work(int n) {
  std::cout << ::getpid() << " run" << std::endl;
  std::this_thread::sleep_for(100ms);
  return n * n;
}

int download(int sleep_time) {
  // time.sleep(-1) raises ValueError("sleep length must be non-negative").
  if (sleep_time < 0) throw mp::ValueError("sleep length must be non-negative");
  std::this_thread::sleep_for(sleep_time * 100ms);
  std::cout << "download " << sleep_time << " is finished" << std::endl;
  return sleep_time;
}

const char* py(bool b) { return b ? "True" : "False"; }

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");

  // Seed 000: ten calls of work(n) on cpu_count() workers.
  {
    auto p = ctx.Pool();
    std::vector<mp::AsyncResult<int>> res_l;
    for (int i = 0; i < 10; ++i) res_l.push_back(p.apply_async(work, i));
    p.close();
    p.join();
    for (const auto& res : res_l) std::cout << res.get() << std::endl;
  }

  // Seed 001: the downloads finish in the order 1, 2, 3; the results print as submitted.
  {
    auto pool = ctx.Pool(4);
    std::vector<mp::AsyncResult<int>> results;
    for (int i : {3, 1, 2}) results.push_back(pool.apply_async(download, i));
    pool.close();
    pool.join();
    for (const auto& r : results) std::cout << r.get() << std::endl;
  }

  // Seed 004: what an AsyncResult offers besides get().
  {
    auto pool = ctx.Pool(4);
    auto r = pool.apply_async(download, 2);
    std::cout << py(r.ready()) << std::endl;
    try {
      (void)r.get(50ms);
    } catch (const mp::TimeoutError&) {
      std::cout << "TimeoutError" << std::endl;
    }
    r.wait();
    std::cout << py(r.ready()) << ' ' << py(r.successful()) << std::endl;
    std::cout << r.get() << std::endl;
    auto bad = pool.apply_async(download, -1);
    bad.wait();
    std::cout << py(bad.successful()) << std::endl;
    try {
      (void)bad.get();
    } catch (const mp::ValueError& e) {
      std::cout << "ValueError: " << e.what() << std::endl;
    }
    pool.close();
    pool.join();
  }
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 000's progress bar fed by Pool.apply_async callbacks:
//
//   from multiprocessing import Pool
//   from tqdm import tqdm
//   def work(n):
//       time.sleep(0.05)
//       return n * n
//   if __name__ == '__main__':
//       pbar = tqdm(total=100)
//       def update(*a):
//           pbar.update()
//       pool = Pool(4)
//       for i in range(100):
//           pool.apply_async(work, args=(i,), callback=update)
//       pool.close()
//       pool.join()
//
// The callbacks run in the pool's result-handler thread, as in Python; bar.callback() is
// `update`. The tasks sleep 5 ms instead of 50 ms so that the example runs in bounded time. On a
// terminal the bar is redrawn in place; when stderr is a pipe or a file (as under ctest) it
// prints one plain line at the end instead:
//   100%|██████████████████████████████████████| 100/100 [00:00<00:00, 620.45it/s]
// Run it with "spawn" or "forkserver" as the first argument to use that start method.
#include <chrono>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int work(int n) {
  std::this_thread::sleep_for(5ms);
  return n * n;
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  mp::progress::Bar pbar(100);  // before the pool: it outlives the callbacks
  auto pool = ctx.Pool(4);
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 0; i < 100; ++i) results.push_back(pool.apply_async(work, mp::args(i), pbar.callback()));
  pool.close();
  pool.join();
  pbar.close();
  for (auto& r : results) r.get();  // rethrows if a task failed
}

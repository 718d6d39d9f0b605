// SPDX-License-Identifier: MIT
// C++ twin of seed 001's Pool.imap and Pool.imap_unordered programs:
//
//   def download(sleep_time):
//       time.sleep(sleep_time)
//       print("download %d is finished" % sleep_time)
//       return sleep_time
//   if __name__ == "__main__":
//       pool = Pool()
//       iter = pool.imap(download, [1, 5, 3])   # results in input order
//       for r in iter:
//           print(r)
//
//   if __name__ == "__main__":
//       pool = Pool()
//       iter = pool.imap_unordered(download, [1, 5, 3])   # results as the tasks finish
//       for r in iter:
//           print(r)
//
// Both start the three downloads at once and finish them in the order 1, 3, 5. imap hands the
// results over in input order (1, 5, 3: the 3 waits for the 5), imap_unordered as they come
// (1, 3, 5). The pool has three workers rather than cpu_count(), so that every download has its
// own worker and the completion order is the same on any machine; a second of the seed is 150 ms
// here. Run it with "spawn" or "forkserver" as the first argument to use that start method.
#include <chrono>
#include <iostream>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int download(int sleep_time) {
  std::this_thread::sleep_for(sleep_time * 150ms);
  std::cout << "download " << sleep_time << " is finished" << std::endl;
  return sleep_time;
}

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  const std::vector<int> sleep_times{1, 5, 3};
  {
    auto pool = ctx.Pool(3);
    for (int r : pool.imap(download, sleep_times)) std::cout << r << std::endl;
  }
  {
    auto pool = ctx.Pool(3);
    for (int r : pool.imap_unordered(download, sleep_times)) std::cout << r << std::endl;
  }
}

// SPDX-License-Identifier: MIT
// C++ twin of seed 004's two Pool programs, non-blocking and blocking:
//
//   # 异步进程池（非阻塞）
//   def test(i):
//       print(i)
//   if __name__ == "__main__":
//       pool = Pool(8)
//       for i in range(100):
//           pool.apply_async(test, args=(i,))   # eight run at a time; the loop does not wait
//       print("test")
//       pool.close()
//       pool.join()
//
//   # 同步进程池（阻塞）
//       pool = Pool(8)
//       for i in range(100):
//           pool.apply(test, args=(i,))         # waits for each call: one runs at a time
//       print("test")
//       pool.close()
//       pool.join()
//
// With apply_async the loop only submits: "test" comes out while the calls are still running, and
// the numbers in whatever order the eight workers reach them. With apply each call is waited for,
// so the numbers come out 0 to 99 and "test" last. Run it with "spawn" or "forkserver" as the
// first argument to use that start method.
#include <iostream>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void test(int i) { std::cout << i << std::endl; }

int main(int argc, char** argv) {
  mp::freeze_support();
  auto ctx = mp::get_context(argc > 1 ? argv[1] : "fork");
  {
    auto pool = ctx.Pool(8);
    for (int i = 0; i < 100; ++i) pool.apply_async(test, i);
    std::cout << "test" << std::endl;
    pool.close();
    pool.join();
  }
  {
    auto pool = ctx.Pool(8);
    for (int i = 0; i < 100; ++i) pool.apply(test, i);
    std::cout << "test" << std::endl;
    pool.close();
    pool.join();
  }
}

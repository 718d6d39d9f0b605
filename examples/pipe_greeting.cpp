// SPDX-License-Identifier: MIT
// C++ twin of seed 004's Pipe program (parent and child greet each other over a duplex Pipe):
//
//   from multiprocessing import Process, Pipe
//   import time
//   # 子进程执行方法
//   def f(Subconn):
//       time.sleep(1)
//       Subconn.send("吃了么")
//       print("来自父亲的问候:", Subconn.recv())
//       Subconn.close()
//   if __name__ == "__main__":
//       parent_conn, child_conn = Pipe()  # 创建管道两端
//       p = Process(target=f, args=(child_conn,))  # 创建子进程
//       p.start()
//       print("来自儿子的问候:", parent_conn.recv())
//       parent_conn.send("嗯")
//
// The child sends a greeting and prints the reply; the parent prints the greeting and replies.
// (Python joins non-daemonic children at exit; C++ joins explicitly.)
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;

void f(mp::Connection subconn) {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // time.sleep(1), shortened
  subconn.send(std::string("吃了么"));
  std::cout << "来自父亲的问候: " << subconn.recv<std::string>() << std::endl;
  subconn.close();
}

int main() {
  mp::freeze_support();
  auto [parent_conn, child_conn] = mp::Pipe();
  mp::Process p(f, child_conn);
  p.start();
  std::cout << "来自儿子的问候: " << parent_conn.recv<std::string>() << std::endl;
  parent_conn.send(std::string("嗯"));
  p.join();
  return p.exitcode() == 0 ? 0 : 1;
}

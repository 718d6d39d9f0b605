// SPDX-License-Identifier: MIT
// C++ twin of the "hello" Process programs of seeds 003 and 004:
//
//   def run_proc(name):
//       print('Run child process %s (%s)...' % (name, os.getpid()))
//   if __name__ == '__main__':
//       print('Parent process %s.' % os.getpid())
//       p = Process(target=run_proc, args=('test',))
//       print('Child process will start.')
//       p.start()
//       p.join()
//       print('Child process end.')
//
// Start one child running a function, wait for it, print both pids.
#include <multiprocessing.hpp>

#include <iostream>
#include <string>

#include <unistd.h>

namespace mp = multiprocessing;

void run_proc(const std::string& name) {
  std::cout << "Run child process " << name << " (" << ::getpid() << ")..." << std::endl;
}

int main() {
  mp::freeze_support();
  std::cout << "Parent process " << ::getpid() << '.' << std::endl;
  mp::Process p(run_proc, "test");
  std::cout << "Child process will start." << std::endl;
  p.start();
  p.join();
  std::cout << "Child process end." << std::endl;
  return p.exitcode() == 0 ? 0 : 1;
}

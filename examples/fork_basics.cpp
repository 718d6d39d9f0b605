// SPDX-License-Identifier: MIT
// C++ twin of the raw os.fork() program of seeds 001 and 004:
//
//   print('Process (%s) start...' % os.getpid())
//   pid = os.fork()
//   if pid == 0:
//       print('I am child process (%s) and my parent is %s.' % (os.getpid(), os.getppid()))
//   else:
//       print('I (%s) just created a child process (%s).' % (os.getpid(), pid))
//
// "fork() is called once and returns twice": 0 in the child, the child's pid in the parent. Real
// programs use mp::Process instead (see process_hello.cpp); this shows what it is built on. Unlike
// the Python program, the parent waits for its child so that the output is complete on exit.
#include <cstdio>
#include <cstdlib>

#include <sys/wait.h>
#include <unistd.h>

int main() {
  std::printf("Process (%d) start...\n", ::getpid());
  std::fflush(stdout);  // or the child inherits the buffered line and prints it a second time
  const pid_t pid = ::fork();
  if (pid == -1) {
    std::perror("fork");
    return 1;
  }
  if (pid == 0) {
    std::printf("I am child process (%d) and my parent is %d.\n", ::getpid(), ::getppid());
    std::fflush(stdout);
    ::_exit(0);  // never return into main(): the parent's atexit handlers are not ours to run
  }
  std::printf("I (%d) just created a child process (%d).\n", ::getpid(), pid);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

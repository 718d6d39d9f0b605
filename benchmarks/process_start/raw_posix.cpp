// SPDX-License-Identifier: MIT
// Competitors: the bare syscalls, the floor that the library's start methods are compared with.
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "process_start.hpp"

namespace {

constexpr const char* kRawChildMarker = "MP_BENCH_RAW_CHILD";

void wait_for_clean_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw std::system_error(errno, std::generic_category(), "waitpid " + std::to_string(pid));
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("raw child " + std::to_string(pid) + " did not exit with 0");
  }
}

template <class StartAndWait>
bench::Run measure(int warmup, int n, StartAndWait start_and_wait) {
  bench::Run run;
  for (int i = 0; i < warmup + n; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    start_and_wait();
    const std::chrono::duration<double, std::micro> elapsed =
        std::chrono::steady_clock::now() - begin;
    if (i == 0) {
      run.first_us = elapsed.count();
    }
    if (i >= warmup) {
      run.samples_us.push_back(elapsed.count());
    }
  }
  return run;
}

}  // namespace

bool bench::is_raw_child() {
  return std::getenv(kRawChildMarker) != nullptr;  // NOLINT(concurrency-mt-unsafe): no threads yet
}

bench::Run bench::measure_raw_fork(int warmup, int n) {
  return measure(warmup, n, [] {
    const pid_t pid = ::fork();
    if (pid < 0) {
      throw std::system_error(errno, std::generic_category(), "fork");
    }
    if (pid == 0) {
      ::_exit(0);
    }
    wait_for_clean_exit(pid);
  });
}

bench::Run bench::measure_raw_spawn(int warmup, int n) {
  // The parent's environment plus the marker, built once, as a spawner would.
  std::string marker = std::string(kRawChildMarker) + "=1";
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {  // unistd.h declares it (_GNU_SOURCE)
    envp.push_back(*e);
  }
  envp.push_back(marker.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::vector<char*> argv{exe.data(), nullptr};

  return measure(warmup, n, [&] {
    pid_t pid = 0;
    if (const int rc = ::posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), envp.data());
        rc != 0) {
      throw std::system_error(rc, std::generic_category(), "posix_spawn " + exe);
    }
    wait_for_clean_exit(pid);
  });
}

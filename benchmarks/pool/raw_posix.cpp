// SPDX-License-Identifier: MIT
// The floor: the CPU-bound work serially and on two bare std::threads, and the cheapest wake-up
// round trip between two processes, a futex ping-pong in a MAP_SHARED mapping (the raw reference
// of benchmarks/locks: it sleeps on every turn, no spinning).
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "pool.hpp"
#include "../common/futex.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

struct Words {
  std::atomic<std::uint32_t> ping;
  std::atomic<std::uint32_t> pong;
};

using bench::futex::await;
using bench::futex::set;

}  // namespace

bench::CpuRun bench::raw_serial(std::int64_t tasks, std::int64_t steps) {
  CpuRun r;
  const auto t0 = clock_type::now();
  for (std::int64_t k = 0; k < tasks; ++k)
    r.checksum += crunch(static_cast<std::uint64_t>(k), steps);
  r.seconds = seconds_since(t0);
  return r;
}

bench::CpuRun bench::raw_threads(std::int64_t tasks, std::int64_t steps) {
  std::vector<std::uint64_t> results(static_cast<std::size_t>(tasks));
  const auto t0 = clock_type::now();
  {
    std::vector<std::jthread> threads;
    for (std::int64_t t = 0; t < 2; ++t) {
      threads.emplace_back([&results, tasks, steps, t] {
        for (std::int64_t k = t; k < tasks; k += 2) {
          results[static_cast<std::size_t>(k)] = crunch(static_cast<std::uint64_t>(k), steps);
        }
      });
    }
  }
  CpuRun r;
  r.seconds = seconds_since(t0);
  for (const std::uint64_t v : results) r.checksum += v;
  return r;
}

double bench::raw_futex_round_trip_us(std::int64_t trips) {
  void* p =
      ::mmap(nullptr, sizeof(Words), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  auto* w = new (p) Words{};
  const auto n = static_cast<std::uint32_t>(trips);
  const pid_t partner = ::fork();
  if (partner == -1) throw std::system_error(errno, std::generic_category(), "fork");
  if (partner == 0) {
    for (std::uint32_t i = 1; i <= n; ++i) {
      await(w->ping, i);
      set(w->pong, i);
    }
    ::_exit(0);
  }
  const auto t0 = clock_type::now();
  for (std::uint32_t i = 1; i <= n; ++i) {
    set(w->ping, i);
    await(w->pong, i);
  }
  const double us = seconds_since(t0) * 1e6 / static_cast<double>(trips);
  int status = 0;
  ::waitpid(partner, &status, 0);
  ::munmap(p, sizeof(Words));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("raw futex child failed");
  return us;
}

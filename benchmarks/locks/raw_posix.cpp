// SPDX-License-Identifier: MIT
// The floor: what the workloads cost with bare POSIX — a robust, process-shared pthread mutex (the
// primitive with the guarantees our Lock gives, holder death included) and a futex ping-pong.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "locks.hpp"
#include "../common/futex.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct Shared {
  pthread_mutex_t mutex;
  std::int64_t counter;
  std::atomic<std::uint32_t> ping;
  std::atomic<std::uint32_t> pong;
  std::atomic<std::uint32_t> ready;
};

Shared* map_shared() {
  void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
  auto* s = new (p) Shared{};
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&s->mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return s;
}

void lock(Shared* s) {
  if (pthread_mutex_lock(&s->mutex) == EOWNERDEAD) pthread_mutex_consistent(&s->mutex);
}

using bench::futex::await;
using bench::futex::set;

pid_t fork_or_throw() {
  const pid_t pid = ::fork();
  if (pid == -1) throw std::system_error(errno, std::generic_category(), "fork");
  return pid;
}

void wait_child(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("raw child failed");
}

}  // namespace

bench::Results bench::measure_raw(std::int64_t pairs, std::int64_t increments, std::int64_t round_trips) {
  Shared* s = map_shared();
  Results r;

  auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < pairs; ++i) {
    lock(s);
    pthread_mutex_unlock(&s->mutex);
  }
  r.uncontended_ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() /
                     static_cast<double>(pairs);

  const auto add = [s, increments] {
    for (std::int64_t i = 0; i < increments; ++i) {
      lock(s);
      ++s->counter;
      pthread_mutex_unlock(&s->mutex);
    }
  };
  t0 = clock_type::now();
  const pid_t child = fork_or_throw();
  if (child == 0) {
    add();
    ::_exit(0);
  }
  add();
  wait_child(child);
  r.contended_per_s = static_cast<double>(2 * increments) /
                      std::chrono::duration<double>(clock_type::now() - t0).count();
  if (s->counter != 2 * increments) throw std::runtime_error("raw contended counter is wrong");

  const pid_t partner = fork_or_throw();
  if (partner == 0) {
    for (std::uint32_t i = 1; i <= static_cast<std::uint32_t>(round_trips); ++i) {
      await(s->ping, i);
      set(s->pong, i);
    }
    ::_exit(0);
  }
  t0 = clock_type::now();
  for (std::uint32_t i = 1; i <= static_cast<std::uint32_t>(round_trips); ++i) {
    set(s->ping, i);
    await(s->pong, i);
  }
  r.round_trip_us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() /
                    static_cast<double>(round_trips);
  wait_child(partner);
  ::munmap(s, sizeof(Shared));
  return r;
}

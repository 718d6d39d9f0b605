// SPDX-License-Identifier: MIT
// Our side: mp::Lock (std::lock_guard, as users write it) and mp::Event, children from mp::Process.
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include <multiprocessing.hpp>

#include "locks.hpp"

namespace mp = multiprocessing;

namespace {

using clock_type = std::chrono::steady_clock;

void join_ok(mp::Process& p) {
  p.join();
  if (p.exitcode() != 0) throw std::runtime_error("mp child exited with " + std::to_string(p.exitcode().value_or(-1)));
}

}  // namespace

bench::Results bench::measure_mp(std::int64_t pairs, std::int64_t increments, std::int64_t round_trips) {
  Results r;
  mp::Lock lock;

  auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < pairs; ++i) {
    std::lock_guard guard(lock);
  }
  r.uncontended_ns = std::chrono::duration<double, std::nano>(clock_type::now() - t0).count() /
                     static_cast<double>(pairs);

  // The counter is plain shared memory, as the raw competitor's: only the lock is measured.
  void* mapping =
      ::mmap(nullptr, sizeof(std::int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::runtime_error("mmap failed");
  auto* counter = static_cast<std::int64_t*>(mapping);
  *counter = 0;
  auto add = [lock, counter, increments]() mutable {
    for (std::int64_t i = 0; i < increments; ++i) {
      std::lock_guard guard(lock);
      ++*counter;
    }
  };
  t0 = clock_type::now();
  mp::Process child(add);
  child.start();
  add();
  join_ok(child);
  r.contended_per_s = static_cast<double>(2 * increments) /
                      std::chrono::duration<double>(clock_type::now() - t0).count();
  const bool counted = *counter == 2 * increments;
  ::munmap(mapping, sizeof(std::int64_t));
  if (!counted) throw std::runtime_error("mp contended counter is wrong");

  mp::Event ping;
  mp::Event pong;
  mp::Process partner([ping, pong, round_trips]() mutable {
    for (std::int64_t i = 0; i < round_trips; ++i) {
      ping.wait();
      ping.clear();
      pong.set();
    }
  });
  partner.start();
  t0 = clock_type::now();
  for (std::int64_t i = 0; i < round_trips; ++i) {
    ping.set();
    pong.wait();
    pong.clear();
  }
  r.round_trip_us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count() /
                    static_cast<double>(round_trips);
  join_ok(partner);
  return r;
}

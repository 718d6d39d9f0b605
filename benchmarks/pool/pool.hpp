// SPDX-License-Identifier: MIT
// benchmarks/pool/pool.hpp
//
// What each competitor file gives main.cpp, for four workloads, every pool with two workers:
//   cpu-bound: `tasks` calls of crunch(seed, steps), integer arithmetic with no memory traffic;
//              seconds for all of them (the pool already started), and the results' checksum;
//   map:       map(square, 0..items-1) of int64 with the default chunksize or chunksize 1;
//              seconds for the whole map, on a pool that has already run the same map once;
//   apply:     apply_async(square, i).get(), one call in flight at a time; µs per round trip;
//   submit:    an executor's submit(square, i).result(), one at a time; µs per round trip.
// The raw references: the same crunch() serially and on two std::threads, and a futex ping-pong
// between two processes (the one of benchmarks/locks, sleeping on every turn).
#pragma once

#include <cstdint>
#include <vector>

namespace bench {

/// The CPU-bound kernel: a xorshift64 walk, `steps` dependent steps, nothing for the compiler to
/// fold or vectorize. pool.py's crunch() is the same function (masked to 64 bits).
inline std::uint64_t crunch(std::uint64_t seed, std::int64_t steps) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
  for (std::int64_t i = 0; i < steps; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x += static_cast<std::uint64_t>(i);
  }
  return x;
}

/// The tiny task of the map, apply and submit workloads.
inline std::int64_t square(std::int64_t x) { return x * x; }

/// The checksum of crunch(seed, steps) over seeds 0..tasks-1, as every competitor reports it.
struct CpuRun {
  double seconds = 0;
  std::uint64_t checksum = 0;
};

/// The pools of bench_mp.cpp.
enum class Kind {
  processes,  ///< mp::Pool(2); mp::futures::ProcessPoolExecutor(2)
  threads,    ///< mp::dummy::Pool(2); mp::futures::ThreadPoolExecutor(2)
};

/// bench_mp.cpp: starmap(crunch, [(seed, steps)...]) with the default chunksize.
CpuRun mp_cpu(Kind kind, std::int64_t tasks, std::int64_t steps);
/// bench_mp.cpp: the best of `timed` maps map(square, 0..items-1) with `chunksize` (0: the
/// default) on one pool, after an untimed one; throws if a result is wrong.
double mp_map_seconds(Kind kind, std::int64_t items, long chunksize, int timed);
/// bench_mp.cpp: µs per apply_async(square, i).get().
double mp_apply_us(Kind kind, std::int64_t trips);
/// bench_mp.cpp: µs per executor submit(square, i).result().
double mp_submit_us(Kind kind, std::int64_t trips);

/// raw_posix.cpp: the crunch() calls one after the other in this thread.
CpuRun raw_serial(std::int64_t tasks, std::int64_t steps);
/// raw_posix.cpp: two std::threads, task k on thread k % 2 (an even split of equal tasks).
CpuRun raw_threads(std::int64_t tasks, std::int64_t steps);
/// raw_posix.cpp: µs per futex ping-pong round trip with a fork()ed child.
double raw_futex_round_trip_us(std::int64_t trips);

}  // namespace bench

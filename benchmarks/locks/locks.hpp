// SPDX-License-Identifier: MIT
// benchmarks/locks/locks.hpp
//
// What each competitor file gives main.cpp, for three workloads:
//   uncontended: one process acquires and releases a process-shared lock, ns per pair;
//   contended:   two processes increment one shared counter under the lock, increments per second;
//   ping-pong:   two processes hand a turn back and forth (Event set/wait), µs per round trip.
#pragma once

#include <cstdint>

namespace bench {

struct Results {
  double uncontended_ns = 0;
  double contended_per_s = 0;
  double round_trip_us = 0;
};

/// bench_mp.cpp: mp::Lock and mp::Event, the children started with mp::Process (fork).
Results measure_mp(std::int64_t pairs, std::int64_t increments, std::int64_t round_trips);

/// raw_posix.cpp: a robust, process-shared pthread mutex in a MAP_SHARED mapping; futex words for
/// the ping-pong; children from fork().
Results measure_raw(std::int64_t pairs, std::int64_t increments, std::int64_t round_trips);

}  // namespace bench

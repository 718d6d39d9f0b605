// SPDX-License-Identifier: MIT
// benchmarks/process_start/process_start.hpp
//
// What each competitor file gives main.cpp: the wall-clock latency of starting a child that does
// nothing and waiting for it to end, one sample per start, in microseconds.
#pragma once

#include <string_view>
#include <vector>

namespace bench {

/// One competitor's run: the very first start (cold: for forkserver it includes starting the
/// server) and the timed samples that follow the warm-up.
struct Run {
  double first_us = 0;
  std::vector<double> samples_us;
};

/// bench_mp.cpp: `mp::get_context(method).Process(noop)`, start() + join().
/// @throws std::exception if a start fails or a child does not exit with 0.
Run measure_mp(std::string_view method, int warmup, int n);

/// raw_posix.cpp: fork(), `_exit(0)` in the child, waitpid() in the parent.
Run measure_raw_fork(int warmup, int n);

/// raw_posix.cpp: posix_spawn() of /proc/self/exe with MP_BENCH_RAW_CHILD=1 in its environment,
/// which makes the child's main() `_exit(0)` first thing, then waitpid().
Run measure_raw_spawn(int warmup, int n);

/// raw_posix.cpp: true in a child started by measure_raw_spawn().
bool is_raw_child();

}  // namespace bench

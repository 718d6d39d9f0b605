// SPDX-License-Identifier: MIT
// bench_locks: process-shared locks and events, side by side in one run with the floor (a robust
// process-shared pthread mutex, a raw futex ping-pong) and with Python's multiprocessing
// (locks.py, run from here). Prints each workload's numbers and the ratios against the targets.
// Targets are reported, never asserted: the exit status only says whether every competitor ran.
//
// Usage: bench_locks [SCALE | --smoke]   (SCALE multiplies the iteration counts, default 1: ~15 s;
//        --smoke runs 1/100 of them, to exercise the harness in ctest)
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include <multiprocessing.hpp>

#include "../common/harness.hpp"
#include "locks.hpp"

namespace mp = multiprocessing;

namespace {

void row(const char* workload, const char* unit, double ours, double raw,
         std::optional<double> python, bool lower_is_better, const char* raw_target,
         double raw_limit, const char* py_target, double py_limit) {
  const double vs_raw = lower_is_better ? ours / raw : raw / ours;  // how far from the floor
  std::printf("%-12s | %12.2f %-8s | %12.2f | %6.2fx %-7s %-4s", workload, ours, unit, raw, vs_raw,
              raw_target, raw_limit <= 0 ? "" : (vs_raw <= raw_limit ? "PASS" : "MISS"));
  if (python) {
    const double vs_py = lower_is_better ? *python / ours : ours / *python;  // how much faster
    std::printf(" | %12.2f | %6.1fx %-7s %s\n", *python, vs_py, py_target,
                py_limit <= 0 ? "" : (vs_py >= py_limit ? "PASS" : "MISS"));
  } else {
    std::printf(" | %12s |\n", "n/a");
  }
}

}  // namespace

int main(int argc, char* argv[]) {
  return bench::harness_main(argc, argv, "bench_locks", [&](const std::int64_t scale) {
    const std::int64_t pairs = 20'000 * scale, increments = 50'000 * scale, trips = 200 * scale;
    const std::int64_t py_pairs = 2'000 * scale, py_increments = 500 * scale, py_trips = 20 * scale;
    std::puts("measuring raw POSIX ...");
    const bench::Results raw = bench::measure_raw(pairs, increments, trips);
    std::puts("measuring multiprocessing-cpp ...");
    const bench::Results ours = bench::measure_mp(pairs, increments, trips);
    std::puts("measuring Python's multiprocessing (locks.py) ...");
    const auto py = bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT,
                                      {py_pairs, py_increments, py_trips}, 3);
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");
    auto python = [&](const char* key) -> std::optional<double> {
      if (!py) return std::nullopt;
      return py->at(key);
    };
    std::printf(
        "\nworkload     |         ours          |          raw |  vs raw target      |       "
        "python |  vs python target\n");
    std::printf(
        "------------------------------------------------------------------------------------------"
        "------------------\n");
    row("uncontended", "ns", ours.uncontended_ns, raw.uncontended_ns, python("uncontended_ns"),
        true, "<=1.5x", 1.5, "", 0);
    row("contended", "M/s", ours.contended_per_s / 1e6, raw.contended_per_s / 1e6,
        py ? std::optional(python("contended_per_s").value() / 1e6) : std::nullopt, false, "", 0,
        ">=15x", 15);
    row("event rtt", "us", ours.round_trip_us, raw.round_trip_us, python("round_trip_us"), true,
        "<=1.5x", 1.5, ">=4x", 4);
    std::printf(
        "\nuncontended: ns per acquire+release in one process; contended: million increments per\n"
        "second, two processes, one lock; event rtt: µs per set/wait round trip between two\n"
        "processes. vs raw: ours/raw (contended: raw/ours); vs python: python/ours (contended:\n"
        "ours/python). Raw: robust process-shared pthread mutex; futex ping-pong.\n");
    return 0;
  });
}

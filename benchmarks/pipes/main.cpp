// SPDX-License-Identifier: MIT
// bench_pipes: Pipe()/Connection round-trip latency and one-way bandwidth, side by side in one run
// with the floor (a raw socketpair, blocking read/write) and with Python's multiprocessing.Pipe
// (pipes.py, run from here). Prints each workload's numbers and the ratios against the targets.
// Targets are reported, never asserted: the exit status only says whether every competitor ran.
//
// Usage: bench_pipes [SCALE | --smoke]   (SCALE multiplies the iteration counts, default 1: ~20 s;
//        --smoke runs 1/100 of them, to exercise the harness in ctest)
//
// Round trips run in interleaved rounds (raw, ours typed, ours bytes, then again), and each
// competitor keeps its best round, so that the load of a shared machine weighs on all alike.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include <multiprocessing.hpp>

#include "../common/harness.hpp"
#include "pipes.hpp"

namespace mp = multiprocessing;

namespace {

constexpr double kRoundTripTarget = 1.3;  // ours / raw socketpair, at most

/// One table row. vs raw: how many times slower than the floor (ours/raw for a latency,
/// raw/ours for a bandwidth); vs python: how many times faster than Python.
void row(const char* workload, const char* unit, double ours, double raw,
         std::optional<double> python, bool lower_is_better, double raw_limit) {
  const double vs_raw = lower_is_better ? ours / raw : raw / ours;
  std::printf("%-16s | %10.2f %-4s | %10.2f | %6.2fx", workload, ours, unit, raw, vs_raw);
  if (raw_limit > 0) {
    std::printf(" <=%.1fx %-4s", raw_limit, vs_raw <= raw_limit ? "PASS" : "MISS");
  } else {
    std::printf(" %12s", "");
  }
  if (python) {
    const double vs_py = lower_is_better ? *python / ours : ours / *python;
    std::printf(" | %10.2f | %6.1fx\n", *python, vs_py);
  } else {
    std::printf(" | %10s |\n", "n/a");
  }
}

}  // namespace

int main(int argc, char* argv[]) {
  return bench::harness_main(argc, argv, "bench_pipes", [&](const std::int64_t scale) {
    const int rounds = scale == 1 ? 2 : 5;
    const std::int64_t trips = 200 * scale, count_1k = 2'000 * scale, count_1m = 20 * scale;
    const std::int64_t py_trips = 50 * scale, py_count_1k = 500 * scale, py_count_1m = 3 * scale;
    double raw_rtt = 1e300, typed_rtt = 1e300, bytes_rtt = 1e300;
    std::puts(
        "measuring round trips: raw socketpair, Pipe send/recv, Pipe send_bytes/recv_bytes ...");
    for (int r = 0; r < rounds; ++r) {
      raw_rtt = std::min(raw_rtt, bench::raw_round_trip_us(trips));
      typed_rtt = std::min(typed_rtt, bench::mp_round_trip_us(bench::Message::typed, trips));
      bytes_rtt = std::min(bytes_rtt, bench::mp_round_trip_us(bench::Message::bytes, trips));
    }
    std::puts("measuring bandwidth: raw socketpair, Pipe send_bytes/recv_bytes ...");
    double raw_1k = 0, ours_1k = 0, raw_1m = 0, ours_1m = 0;
    for (int r = 0; r < std::min(rounds, 3); ++r) {
      raw_1k = std::max(raw_1k, bench::raw_bandwidth_mb_s(1024, count_1k));
      ours_1k = std::max(ours_1k, bench::mp_bandwidth_mb_s(1024, count_1k));
      raw_1m = std::max(raw_1m, bench::raw_bandwidth_mb_s(std::size_t{1} << 20, count_1m));
      ours_1m = std::max(ours_1m, bench::mp_bandwidth_mb_s(std::size_t{1} << 20, count_1m));
    }
    std::puts("measuring Python's multiprocessing.Pipe (pipes.py) ...");
    const auto py = bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT,
                                      {py_trips, rounds, py_count_1k, py_count_1m}, 4);
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");
    auto python = [&](const char* key) -> std::optional<double> {
      if (!py) return std::nullopt;
      return py->at(key);
    };

    std::printf("\n%-16s | %15s | %10s | %-19s | %10s | %s\n", "workload", "ours", "raw",
                "vs raw  target", "python", "vs python");
    std::printf("%s\n", std::string(98, '-').c_str());
    row("rtt send/recv", "us", typed_rtt, raw_rtt, python("rtt_typed_us"), true, kRoundTripTarget);
    row("rtt send_bytes", "us", bytes_rtt, raw_rtt, python("rtt_bytes_us"), true, kRoundTripTarget);
    row("bandwidth 1 KiB", "MB/s", ours_1k, raw_1k, python("bw_1k_mb_s"), false, 0);
    row("bandwidth 1 MiB", "MB/s", ours_1m, raw_1m, python("bw_1m_mb_s"), false, 0);
    std::printf(
        "\nrtt: µs per round trip of a small message, parent -> child -> parent, best of %d\n",
        rounds);
    std::printf(
        "rounds of %lld (Python: %lld). send/recv: a typed std::int64_t (Python: send(int)\n",
        static_cast<long long>(trips), static_cast<long long>(py_trips));
    std::puts("and recv()); send_bytes: 8 bytes, send_bytes/recv_bytes; raw: 8 bytes, blocking");
    std::puts("write/read on a socketpair. bandwidth: MB/s (1e6 bytes/s) one way with");
    std::printf("send_bytes/recv_bytes (raw: write/read, no framing), best of %d.\n",
                std::min(rounds, 3));
    std::puts("vs raw: ours/raw for rtt, raw/ours for bandwidth (target: at most); vs python: how");
    std::puts("many times faster than Python's multiprocessing.Pipe.");
    return 0;
  });
}

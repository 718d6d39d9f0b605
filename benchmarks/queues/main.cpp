// SPDX-License-Identifier: MIT
// bench_queues: Queue<T> throughput (int messages, 1 producer -> 1 consumer and 2 x 2) and
// bandwidth (1 KiB and 1 MiB messages, 1 -> 1), side by side in one run with the floor (a raw
// shared-memory SPSC ring with futex wake), Boost.Interprocess message_queue and Python's
// multiprocessing.Queue (queues.py, run from here). Prints each workload's numbers and the ratios
// against the targets. Targets are reported, never asserted: the exit status only says whether
// every competitor ran.
//
// Usage: bench_queues [SCALE | --smoke]   (SCALE multiplies the message counts, default 1: ~20 s;
//        --smoke runs 1/100 of them, to exercise the harness in ctest)
//
// The C++ competitors run in interleaved rounds (raw, Boost, ours, then again) and each keeps its
// best round, so that the load of a shared machine weighs on all alike.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <multiprocessing.hpp>

#include "../common/harness.hpp"
#include "queues.hpp"

namespace mp = multiprocessing;

namespace {

struct Competitor {
  const char* name;
  std::function<double(const bench::Workload&)> measure;
  bool available;
};

/// A competitor's best result on one workload (seconds), or why it has none.
struct Cell {
  std::optional<double> seconds;
  std::string error;
};

/// One workload's measurements in interleaved rounds; returns a cell per competitor.
std::vector<Cell> measure_all(const std::vector<Competitor>& competitors, const bench::Workload& w,
                              int rounds) {
  std::vector<Cell> cells(competitors.size());
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < competitors.size(); ++i) {
      if (!competitors[i].available || !cells[i].error.empty()) continue;
      try {
        const double s = competitors[i].measure(w);
        cells[i].seconds = std::min(s, cells[i].seconds.value_or(s));
      } catch (const std::exception& e) {
        cells[i].error = std::string(competitors[i].name) + ": " + e.what();
        cells[i].seconds.reset();
        std::fprintf(stderr, "  %s\n", cells[i].error.c_str());
      }
    }
  }
  return cells;
}

std::string number(std::optional<double> v) {
  if (!v) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", *v);
  return text;
}

/// "12.3x >=50x PASS": ours/other, and the verdict when there is a target.
std::string ratio(std::optional<double> ours, std::optional<double> other, double target) {
  if (!ours || !other || *other <= 0) return target > 0 ? "n/a" : "";
  char text[48];
  if (target > 0) {
    std::snprintf(text, sizeof text, "%.2fx >=%.0fx %s", *ours / *other, target,
                  *ours / *other >= target ? "PASS" : "MISS");
  } else {
    std::snprintf(text, sizeof text, "%.2fx", *ours / *other);
  }
  return text;
}

}  // namespace

int main(int argc, char* argv[]) {
  return bench::harness_main(argc, argv, "bench_queues", [&](const std::int64_t scale) {
    const int rounds = scale == 1 ? 1 : 3;
    const std::int64_t small = 40'000 * scale, count_1k = 10'000 * scale, count_1m = 10 * scale;
    const std::int64_t py_small = 1'500 * scale, py_1k = 800 * scale, py_1m = 3 * scale;

    const std::vector<Competitor> competitors{
        {"raw ring", bench::measure_raw, true},
        {"boost message_queue", bench::measure_boost, true},
        {"mp::Queue", bench::measure_mp, true},
    };
    enum { raw, boost, ours };

    struct Row {
      const char* label;
      bench::Workload w;
      const char* py_key;
      double py_target;     // ours/python at least (0: none)
      double boost_target;  // ours/boost at least (0: none)
    };
    const std::vector<Row> rows{
        {"int 1x1 Mmsg/s", {1, 1, 0, small}, "small_1x1_msgs_s", 50, 2},
        {"int 2x2 Mmsg/s", {2, 2, 0, small}, "small_2x2_msgs_s", 0, 0},
        {"1 KiB 1x1 MB/s", {1, 1, 1024, count_1k}, "bw_1k_mb_s", 0, 0},
        {"1 MiB 1x1 MB/s", {1, 1, std::size_t{1} << 20, count_1m}, "bw_1m_mb_s", 10, 0},
    };

    std::vector<std::vector<Cell>> cells;
    std::vector<std::string> failures;
    for (const Row& row : rows) {
      std::printf("measuring %s: raw ring, boost message_queue, mp::Queue ...\n", row.label);
      std::vector<Competitor> these = competitors;
      if (row.w.producers != 1 || row.w.consumers != 1) these[raw].available = false;  // SPSC only
      cells.push_back(measure_all(these, row.w, rounds));
      for (const Cell& c : cells.back()) {
        if (!c.error.empty()) failures.push_back(c.error);
      }
    }
    std::puts("measuring Python's multiprocessing.Queue (queues.py) ...");
    const auto py =
        bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT, {py_small, py_1k, py_1m}, 4);
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");

    std::printf("\n%-15s | %9s | %9s | %9s | %9s | %8s | %-19s | %-19s\n", "workload", "ours",
                "raw", "boost", "python", "ours/raw", "ours/boost target", "ours/python target");
    std::printf("%s\n", std::string(118, '-').c_str());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& row = rows[i];
      // Rates: million messages per second for ints, MB/s (1e6 bytes) for byte messages.
      const double per = row.w.size == 0 ? static_cast<double>(row.w.count) / 1e6
                                         : static_cast<double>(row.w.count) *
                                               static_cast<double>(row.w.size) / 1e6;
      auto rate = [&](const Cell& c) -> std::optional<double> {
        if (!c.seconds) return std::nullopt;
        return per / *c.seconds;
      };
      std::optional<double> python;
      if (py) python = py->at(row.py_key) / (row.w.size == 0 ? 1e6 : 1.0);
      const auto o = rate(cells[i][ours]), r = rate(cells[i][raw]), b = rate(cells[i][boost]);
      std::printf("%-15s | %9s | %9s | %9s | %9s | %8s | %-19s | %-19s\n", row.label,
                  number(o).c_str(), number(r).c_str(), number(b).c_str(), number(python).c_str(),
                  ratio(o, r, 0).c_str(), ratio(o, b, row.boost_target).c_str(),
                  ratio(o, python, row.py_target).c_str());
    }
    std::printf(
        "\nint: million int messages per second (%lld messages; Python %lld); 1 KiB / 1 MiB: MB/s\n"
        "(1e6 bytes/s) of std::vector<std::byte> messages (Python: bytes), %lld and %lld messages\n"
        "(Python %lld and %lld). Clock: from releasing the ready producers to the last\n"
        "message got; C++: best of %d interleaved rounds. Raw: SPSC ring, so 1x1 only. Boost:\n"
        "message_queue with "
        "4096 / 1024 / 8 slots; ours: Queue<T>() (default maxsize). Ratios: ours/other, higher is\n"
        "better.\n",
        static_cast<long long>(small), static_cast<long long>(py_small),
        static_cast<long long>(count_1k), static_cast<long long>(count_1m),
        static_cast<long long>(py_1k), static_cast<long long>(py_1m), rounds);
    for (const std::string& why : failures) std::printf("error: %s\n", why.c_str());
    return failures.empty() ? 0 : 1;
  });
}

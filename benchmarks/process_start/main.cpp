// SPDX-License-Identifier: MIT
// bench_process_start: start()+join() latency of a no-op child per start method, side by side
// with the floor (raw fork()+waitpid(), raw posix_spawn() of this same binary) and with Python's
// multiprocessing doing the same (process_start.py, run from here). Prints medians, p90s and the
// ratios against the targets. The targets are reported, never asserted: the exit status only says
// whether every competitor ran.
//
// Usage: bench_process_start [N]   (N timed starts per competitor and method, default 500)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

#include "process_start.hpp"

namespace mp = multiprocessing;

namespace {

constexpr int kDefaultSamples = 500;  // about 40 s on 2 cores, most of it Python's spawn

struct Stats {
  double median_us = 0;
  double p90_us = 0;
};

/// Nearest-rank percentile (the same definition as process_start.py's).
double percentile(std::vector<double> sorted, double fraction) {
  std::sort(sorted.begin(), sorted.end());
  const auto rank =
      static_cast<std::size_t>(std::ceil(static_cast<double>(sorted.size()) * fraction));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

Stats stats_of(const bench::Run& run) {
  return {percentile(run.samples_us, 0.5), percentile(run.samples_us, 0.9)};
}

int warmup_count(int n) { return std::min(20, std::max(1, n / 10)); }

/// One C++ competitor: how to measure it and, once measured, its run or why it failed.
struct Competitor {
  std::string name;
  std::function<bench::Run(int warmup, int n)> measure;
  std::optional<bench::Run> run;
  std::string error;
};

/// Measures the competitors in interleaved rounds (the warm-up in the first), so that a change in
/// the machine's load during the run weighs on all of them alike.
void measure_interleaved(std::vector<Competitor>& competitors, int warmup, int n) {
  const int rounds = std::min(n, 10);
  for (int round = 0; round < rounds; ++round) {
    std::cerr << "round " << round + 1 << "/" << rounds << "\n";
    const int share = n / rounds + (round < n % rounds ? 1 : 0);
    for (Competitor& c : competitors) {
      if (!c.error.empty()) {
        continue;
      }
      try {
        bench::Run part = c.measure(round == 0 ? warmup : 0, share);
        if (!c.run) {
          c.run = std::move(part);
        } else {
          c.run->samples_us.insert(c.run->samples_us.end(), part.samples_us.begin(),
                                   part.samples_us.end());
        }
      } catch (const std::exception& e) {
        c.error = c.name + ": " + e.what();
        c.run.reset();
        std::cerr << "  " << c.error << "\n";
      }
    }
  }
}

/// Runs process_start.py and parses its "python <method> <samples> <median_us> <p90_us>" lines.
/// Returns the statistics per method, or sets `problem` (python3 missing, the script failing).
std::map<std::string, Stats> run_python(int n, std::string& problem, bool& python_missing) {
  const std::string command =
      std::string("'") + MP_BENCH_PYTHON + "' '" + MP_BENCH_PY_SCRIPT + "' " + std::to_string(n);
  std::map<std::string, Stats> results;
  (void)std::fflush(nullptr);  // popen() forks: what is buffered must not be printed twice
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    problem = "cannot run " + command;
    return results;
  }
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
    output += buffer.data();
  }
  const int status = ::pclose(pipe);
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    std::string tag;
    std::string method;
    int samples = 0;
    Stats stats;
    if (fields >> tag >> method >> samples >> stats.median_us >> stats.p90_us && tag == "python") {
      results[method] = stats;
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    python_missing = true;
    problem = std::string(MP_BENCH_PYTHON) + " not found: install python3 to compare with Python";
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    problem = command + " failed (status " + std::to_string(status) + ")";
  }
  return results;
}

struct Row {
  std::string method;
  const Competitor* ours = nullptr;
  std::string baseline_name;
  const Competitor* baseline = nullptr;
  double target_ratio = 0;  // ours/baseline at most this
};

void print_table(const std::vector<Row>& rows, const std::map<std::string, Stats>& python, int n) {
  constexpr double kSpeedupTarget = 10.0;
  std::printf(
      "\nprocess start: construct + start() + join() of a no-op child, microseconds\n"
      "(median and p90 of %d starts after %d warm-up starts; %u CPUs)\n\n",
      n, warmup_count(n), std::thread::hardware_concurrency());
  const int width =
      std::printf("%-10s | %9s %9s | %-13s %9s %9s | %7s %7s %-4s | %10s %9s | %8s %7s %-4s\n",
                  "method", "ours med", "p90", "baseline", "med", "p90", "ratio", "target", "",
                  "python med", "p90", "speed-up", "target", "");
  std::printf("%s\n", std::string(static_cast<std::size_t>(std::max(width - 1, 0)), '-').c_str());
  for (const Row& row : rows) {
    std::printf("%-10s | ", row.method.c_str());
    std::optional<Stats> ours;
    if (row.ours->run) {
      ours = stats_of(*row.ours->run);
      std::printf("%9.1f %9.1f | ", ours->median_us, ours->p90_us);
    } else {
      std::printf("%9s %9s | ", "failed", "");
    }
    std::optional<Stats> base;
    if (row.baseline->run) {
      base = stats_of(*row.baseline->run);
      std::printf("%-13s %9.1f %9.1f | ", row.baseline_name.c_str(), base->median_us, base->p90_us);
    } else {
      std::printf("%-13s %9s %9s | ", row.baseline_name.c_str(), "failed", "");
    }
    if (ours && base) {
      const double ratio = ours->median_us / base->median_us;
      std::printf("%6.2fx %6.1fx %-4s | ", ratio, row.target_ratio,
                  ratio <= row.target_ratio ? "PASS" : "MISS");
    } else {
      std::printf("%7s %6.1fx %-4s | ", "-", row.target_ratio, "");
    }
    const auto py = python.find(row.method);
    if (py != python.end()) {
      std::printf("%10.1f %9.1f | ", py->second.median_us, py->second.p90_us);
    } else {
      std::printf("%10s %9s | ", "-", "-");
    }
    if (ours && py != python.end()) {
      const double speedup = py->second.median_us / ours->median_us;
      std::printf("%7.1fx %6.0fx %-4s\n", speedup, kSpeedupTarget,
                  speedup >= kSpeedupTarget ? "PASS" : "MISS");
    } else {
      std::printf("%8s %6.0fx\n", "-", kSpeedupTarget);
    }
  }
  std::printf(
      "\nratio: ours / baseline, medians (target: at most); speed-up: python / ours, medians "
      "(target:"
      " at least)\n");
  for (const Row& row : rows) {
    if (row.ours->run) {
      std::printf("%s: first start %.1f us", row.method.c_str(), row.ours->run->first_us);
      std::printf("%s\n", row.method == "forkserver" ? " (includes starting the server)" : "");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (bench::is_raw_child()) {
    ::_exit(0);  // the raw posix_spawn competitor: exec this binary, exit at once
  }
  mp::freeze_support();

  int n = kDefaultSamples;
  if (argc > 1) {
    const std::string_view arg = argv[1];
    const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), n);
    if (ec != std::errc{} || end != arg.data() + arg.size() || n < 1 || argc > 2) {
      std::cerr << "usage: " << argv[0] << " [N]  (N >= 1 timed starts per method, default "
                << kDefaultSamples << ")\n";
      return 2;
    }
  }
  const int warmup = warmup_count(n);

  std::vector<Competitor> competitors{
      {"raw fork+waitpid", bench::measure_raw_fork, {}, {}},
      {"raw posix_spawn", bench::measure_raw_spawn, {}, {}},
  };
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    competitors.push_back({std::string("multiprocessing-cpp ") + method,
                           [method](int w, int k) { return bench::measure_mp(method, w, k); },
                           {},
                           {}});
  }
  std::cerr << "measuring " << competitors.size() << " competitors, " << n << " starts each\n";
  measure_interleaved(competitors, warmup, n);

  const Competitor& raw_fork = competitors[0];
  const Competitor& raw_spawn = competitors[1];
  const std::vector<Row> rows{{"fork", &competitors[2], "fork+waitpid", &raw_fork, 1.5},
                              {"spawn", &competitors[3], "posix_spawn", &raw_spawn, 1.5},
                              {"forkserver", &competitors[4], "fork+waitpid", &raw_fork, 2.0}};

  std::cerr << "measuring Python's multiprocessing (" << MP_BENCH_PY_SCRIPT << ") ...\n";
  std::string python_problem;
  bool python_missing = false;
  const auto python = run_python(n, python_problem, python_missing);

  print_table(rows, python, n);
  std::vector<std::string> failures;
  if (!python_problem.empty()) {
    std::printf("python: %s\n", python_problem.c_str());
    if (!python_missing) {
      failures.push_back(python_problem);
    }
  }
  for (const Competitor& c : competitors) {
    if (!c.error.empty()) {
      failures.push_back(c.error);
    }
  }
  for (const std::string& why : failures) {
    std::printf("error: %s\n", why.c_str());
  }
  return failures.empty() ? 0 : 1;
}

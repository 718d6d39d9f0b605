// SPDX-License-Identifier: MIT
// bench_pool: processes against threads. mp::Pool(2), mp::dummy::Pool(2) and the futures executors,
// side by side in one run with the floor (serial code, two bare std::threads, a raw futex
// ping-pong between two processes) and with Python's multiprocessing.Pool(2), ThreadPool(2) and
// concurrent.futures (pool.py, run from here), on four workloads (see pool.hpp): a CPU-bound job,
// map of a tiny function (default chunksize and chunksize 1), the apply_async(...).get() round
// trip and the executor submit(...).result() round trip. Prints one table with the ratios against
// the targets and writes it as CSV next to the executable (bench_pool.csv). Targets are reported,
// never asserted: the exit status only says whether every C++ competitor ran and the CSV was
// written.
//
// Usage: bench_pool [SCALE | --smoke]   (SCALE multiplies the work, default 1: ~25 s on 2 cores;
//        --smoke runs 1/100 of it, to exercise the harness in ctest)
//
// The C++ competitors of a workload run in interleaved rounds and each keeps its best round, so
// that the load of a shared machine weighs on all alike; Python's side runs once, after them.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <multiprocessing.hpp>

#include "../common/harness.hpp"
#include "pool.hpp"

namespace mp = multiprocessing;

namespace {

/// One C++ competitor of a workload: how to measure it once (seconds or µs: lower is better).
struct Competitor {
  std::string name;
  std::function<double()> measure;
};

/// A competitor's best round, or why it has none.
struct Cell {
  std::optional<double> value;
  std::string error;
};

std::vector<Cell> measure_all(const std::vector<Competitor>& competitors, int rounds,
                              std::vector<std::string>& failures) {
  std::vector<Cell> cells(competitors.size());
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < competitors.size(); ++i) {
      if (!cells[i].error.empty()) continue;
      try {
        const double v = competitors[i].measure();
        cells[i].value = std::min(v, cells[i].value.value_or(v));
      } catch (const std::exception& e) {
        cells[i].error = competitors[i].name + ": " + e.what();
        cells[i].value.reset();
        std::fprintf(stderr, "  %s\n", cells[i].error.c_str());
        failures.push_back(cells[i].error);
      }
    }
  }
  return cells;
}

/// One line of the table (and of the CSV).
struct Row {
  std::string workload;  // printed on a workload's first row only
  std::string competitor;
  std::optional<double> value;
  std::string unit;
  std::optional<double> vs_serial;  // speedup over serial code of the same language
  std::optional<double> vs_raw;     // cpu-bound: speedup / raw threads' speedup; else time / raw
  std::optional<double> vs_python;  // how many times faster than Python's counterpart
  std::string target;
  std::string verdict;  // PASS, MISS or empty
};

std::optional<double> quotient(std::optional<double> a, std::optional<double> b) {
  if (!a || !b || *b <= 0) return std::nullopt;
  return *a / *b;
}

std::string verdict(std::optional<double> ratio, bool pass) {
  if (!ratio) return "n/a";
  return pass ? "PASS" : "MISS";
}

/// Three significant digits, without an exponent for the magnitudes of this table.
std::string number(std::optional<double> v) {
  if (!v) return "n/a";
  char text[32];
  const double a = *v < 0 ? -*v : *v;
  const int decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : 4;
  std::snprintf(text, sizeof text, "%.*f", decimals, *v);
  return text;
}

std::string times(std::optional<double> v) { return v ? number(v) + "x" : ""; }

void print_table(const std::vector<Row>& rows) {
  // Columns: workload, competitor, value, unit, vs serial, vs raw, vs python, target + verdict.
  const std::vector<std::string> head{"workload",  "competitor", "value",     "",
                                      "vs serial", "vs raw",     "vs python", "target"};
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    std::string goal = r.target;
    if (!r.verdict.empty()) goal += " " + r.verdict;
    cells.push_back({r.workload, r.competitor, number(r.value), r.value ? r.unit : "",
                     times(r.vs_serial), times(r.vs_raw), times(r.vs_python), goal});
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
  }
  auto render = [&](const std::vector<std::string>& line) {
    std::string out;
    for (std::size_t c = 0; c < line.size(); ++c) {
      const bool right = c == 2 || (c >= 4 && c <= 6);  // the numbers
      const std::string pad(width[c] - line[c].size(), ' ');
      out += right ? pad + line[c] : line[c] + pad;
      if (c + 1 < line.size()) out += c <= 1 ? " | " : c == 2 ? " " : "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  };
  std::vector<std::string> lines{render(head)};
  std::size_t longest = 0;
  for (const auto& line : cells) {
    lines.push_back(render(line));
    longest = std::max(longest, lines.back().size());
  }
  std::printf("%s\n%s\n", lines[0].c_str(), std::string(longest, '-').c_str());
  for (std::size_t i = 1; i < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"") == std::string::npos) return s;
  std::string out = "\"";
  for (const char ch : s) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

std::string csv_number(std::optional<double> v) {
  if (!v) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", *v);
  return text;
}

/// Writes the rows as CSV; false (after saying why) when the file cannot be written.
bool write_csv(const char* path, const std::vector<Row>& rows) {
  FILE* out = std::fopen(path, "w");
  if (out == nullptr) {
    std::perror(path);
    return false;
  }
  std::fprintf(out, "workload,competitor,value,unit,vs_serial,vs_raw,vs_python,target,verdict\n");
  std::string workload;
  for (const Row& r : rows) {
    if (!r.workload.empty()) workload = r.workload;  // every CSV line names its workload
    std::fprintf(out, "%s,%s,%s,%s,%s,%s,%s,%s,%s\n", csv_field(workload).c_str(),
                 csv_field(r.competitor).c_str(), csv_number(r.value).c_str(),
                 csv_field(r.unit).c_str(), csv_number(r.vs_serial).c_str(),
                 csv_number(r.vs_raw).c_str(), csv_number(r.vs_python).c_str(),
                 csv_field(r.target).c_str(), r.verdict.c_str());
  }
  return std::fclose(out) == 0;
}

/// The 1-minute load average (/proc/loadavg), "?" when unreadable.
std::string load_average() {
  FILE* in = std::fopen("/proc/loadavg", "r");
  if (in == nullptr) return "?";
  char text[16] = "?";
  const int got = std::fscanf(in, "%15s", text);
  std::fclose(in);
  return got == 1 ? text : "?";
}

std::string count(std::int64_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return std::to_string(n / 1'000'000) + "M";
  if (n >= 1'000 && n % 1'000 == 0) return std::to_string(n / 1'000) + "k";
  return std::to_string(n);
}

}  // namespace

int main(int argc, char* argv[]) {
  return bench::harness_main(argc, argv, "bench_pool", [&](const std::int64_t scale) {
    const bool smoke = scale == 1;
    const int cpu_rounds = smoke ? 1 : 3, rounds = smoke ? 1 : 3;
    // cpu-bound: 16 equal tasks, ~1 s serial on the project's VM for both languages; Python's
    // steps are ~130 times as slow, so it does 1/125 of the work (speedups are what compare).
    const std::int64_t cpu_tasks = 16;
    const std::int64_t cpu_steps = 25'000'000 * scale / 100, py_cpu_steps = 200'000 * scale / 100;
    const std::int64_t map_items = 200'000 * scale / 100;
    const std::int64_t map1_items = 200'000 * scale / 100, py_map1_items = 20'000 * scale / 100;
    const std::int64_t trips = 5'000 * scale / 100, py_trips = 2'000 * scale / 100;
    const std::int64_t raw_trips = 20'000 * scale / 100;
    using bench::Kind;
    std::vector<std::string> failures;
    const std::string load_at_start = load_average();

    std::printf(
        "measuring cpu-bound (%lld x crunch(%s steps)): serial, std::thread x2, mp::Pool(2), "
        "mp::dummy::Pool(2) ...\n",
        static_cast<long long>(cpu_tasks), count(cpu_steps).c_str());
    std::optional<std::uint64_t> checksum;
    auto checked = [&checksum](const char* who, bench::CpuRun r) {
      if (!checksum) checksum = r.checksum;
      if (r.checksum != *checksum) throw std::runtime_error(std::string(who) + ": wrong checksum");
      return r.seconds;
    };
    const auto cpu = measure_all(
        {{"serial", [&] { return checked("serial", bench::raw_serial(cpu_tasks, cpu_steps)); }},
         {"std::thread",
          [&] { return checked("std::thread", bench::raw_threads(cpu_tasks, cpu_steps)); }},
         {"mp::Pool",
          [&] {
            return checked("mp::Pool", bench::mp_cpu(Kind::processes, cpu_tasks, cpu_steps));
          }},
         {"mp::dummy::Pool",
          [&] {
            return checked("mp::dummy::Pool", bench::mp_cpu(Kind::threads, cpu_tasks, cpu_steps));
          }}},
        cpu_rounds, failures);

    std::printf(
        "measuring map(square, %s int64), default chunksize and chunksize 1: mp::Pool(2), "
        "mp::dummy::Pool(2) ...\n",
        count(map_items).c_str());
    const auto map = measure_all(
        {{"mp::Pool", [&] { return bench::mp_map_seconds(Kind::processes, map_items, 0, 3); }},
         {"mp::dummy::Pool",
          [&] { return bench::mp_map_seconds(Kind::threads, map_items, 0, 3); }}},
        rounds, failures);
    const auto map1 = measure_all(
        {{"mp::Pool", [&] { return bench::mp_map_seconds(Kind::processes, map1_items, 1, 1); }},
         {"mp::dummy::Pool",
          [&] { return bench::mp_map_seconds(Kind::threads, map1_items, 1, 1); }}},
        rounds, failures);

    std::puts("measuring round trips: futex ping-pong, apply_async().get(), submit().result() ...");
    const auto trip = measure_all(
        {{"raw futex", [&] { return bench::raw_futex_round_trip_us(raw_trips); }},
         {"mp::Pool", [&] { return bench::mp_apply_us(Kind::processes, trips); }},
         {"mp::dummy::Pool", [&] { return bench::mp_apply_us(Kind::threads, trips); }},
         {"ProcessPoolExecutor", [&] { return bench::mp_submit_us(Kind::processes, trips); }},
         {"ThreadPoolExecutor", [&] { return bench::mp_submit_us(Kind::threads, trips); }}},
        rounds, failures);

    std::puts(
        "measuring Python's multiprocessing.Pool, ThreadPool, concurrent.futures (pool.py) ...");
    const auto py =
        bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT,
                          {cpu_tasks, py_cpu_steps, map_items, py_map1_items, py_trips}, 11);
    // As in the other harnesses, a missing Python leaves its columns n/a but fails nothing.
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");
    auto python = [&](const char* key) -> std::optional<double> {
      if (!py) return std::nullopt;
      const auto it = py->find(key);
      if (it == py->end()) return std::nullopt;
      return it->second;
    };
    auto rate = [](std::optional<double> seconds, std::int64_t items) -> std::optional<double> {
      if (!seconds || *seconds <= 0) return std::nullopt;
      return static_cast<double>(items) / *seconds / 1e6;
    };
    auto per_million = [](std::optional<double> per_s) -> std::optional<double> {
      if (!per_s) return std::nullopt;
      return *per_s / 1e6;
    };

    std::vector<Row> rows;
    {
      const auto serial = cpu[0].value, threads = cpu[1].value;
      const auto pool = cpu[2].value, dummy = cpu[3].value;
      const auto raw_speedup = quotient(serial, threads);
      const auto pool_speedup = quotient(serial, pool), dummy_speedup = quotient(serial, dummy);
      const auto pool_vs_raw = quotient(pool_speedup, raw_speedup);
      const auto py_serial = python("cpu_serial_s"), py_pool = python("cpu_pool_s");
      const auto py_threads = python("cpu_threads_s");
      const auto share = cpu_steps / std::max<std::int64_t>(py_cpu_steps, 1);
      const std::string label = "cpu-bound, " + std::to_string(cpu_tasks) + " tasks";
      rows.push_back({label, "serial loop", serial, "s", 1.0, {}, {}, "", ""});
      rows.push_back({"", "std::thread x2 (raw)", threads, "s", raw_speedup, 1.0, {}, "", ""});
      rows.push_back({"",
                      "mp::Pool(2)",
                      pool,
                      "s",
                      pool_speedup,
                      pool_vs_raw,
                      {},
                      ">= 0.95x raw",
                      verdict(pool_vs_raw, pool_vs_raw && *pool_vs_raw >= 0.95)});
      rows.push_back({"",
                      "mp::dummy::Pool(2)",
                      dummy,
                      "s",
                      dummy_speedup,
                      quotient(dummy_speedup, raw_speedup),
                      {},
                      "",
                      ""});
      rows.push_back({"",
                      "Python serial (1/" + std::to_string(share) + " work)",
                      py_serial,
                      "s",
                      py_serial ? std::optional(1.0) : std::nullopt,
                      {},
                      {},
                      "",
                      ""});
      rows.push_back({"",
                      "Python Pool(2)",
                      py_pool,
                      "s",
                      quotient(py_serial, py_pool),
                      quotient(quotient(py_serial, py_pool), raw_speedup),
                      {},
                      "",
                      ""});
      rows.push_back({"",
                      "Python ThreadPool(2)",
                      py_threads,
                      "s",
                      quotient(py_serial, py_threads),
                      quotient(quotient(py_serial, py_threads), raw_speedup),
                      {},
                      "",
                      ""});
    }
    auto map_rows = [&](const std::string& label, const std::vector<Cell>& cells,
                        std::int64_t items, std::int64_t py_items, const char* py_pool_key,
                        const char* py_threads_key, double target) {
      const auto pool = rate(cells[0].value, items), dummy = rate(cells[1].value, items);
      const auto py_pool = per_million(python(py_pool_key));
      const auto py_threads = per_million(python(py_threads_key));
      const auto pool_vs_py = quotient(pool, py_pool);
      const std::string py_note = py_items == items ? "" : " (" + count(py_items) + " items)";
      char goal[32];
      std::snprintf(goal, sizeof goal, ">= %gx Python", target);
      rows.push_back({label,
                      "mp::Pool(2)",
                      pool,
                      "M/s",
                      {},
                      {},
                      pool_vs_py,
                      goal,
                      verdict(pool_vs_py, pool_vs_py && *pool_vs_py >= target)});
      rows.push_back(
          {"", "mp::dummy::Pool(2)", dummy, "M/s", {}, {}, quotient(dummy, py_threads), "", ""});
      rows.push_back({"", "Python Pool(2)" + py_note, py_pool, "M/s", {}, {}, {}, "", ""});
      rows.push_back({"", "Python ThreadPool(2)" + py_note, py_threads, "M/s", {}, {}, {}, "", ""});
    };
    map_rows("map x*x, " + count(map_items) + " items", map, map_items, map_items,
             "map_pool_items_s", "map_threads_items_s", 10);
    map_rows("map x*x, chunksize=1", map1, map1_items, py_map1_items, "map1_pool_items_s",
             "map1_threads_items_s", 50);
    {
      const auto raw = trip[0].value, pool = trip[1].value, dummy = trip[2].value;
      const auto ppe = trip[3].value, tpe = trip[4].value;
      const auto py_pool = python("apply_pool_us"), py_threads = python("apply_threads_us");
      const auto py_ppe = python("submit_process_us"), py_tpe = python("submit_thread_us");
      const auto pool_vs_raw = quotient(pool, raw);
      rows.push_back(
          {"apply_async().get()", "raw futex ping-pong", raw, "us", {}, 1.0, {}, "", ""});
      rows.push_back({"",
                      "mp::Pool(2)",
                      pool,
                      "us",
                      {},
                      pool_vs_raw,
                      quotient(py_pool, pool),
                      "<= 3x raw",
                      verdict(pool_vs_raw, pool_vs_raw && *pool_vs_raw <= 3)});
      rows.push_back({"",
                      "mp::dummy::Pool(2)",
                      dummy,
                      "us",
                      {},
                      quotient(dummy, raw),
                      quotient(py_threads, dummy),
                      "",
                      ""});
      rows.push_back({"", "Python Pool(2)", py_pool, "us", {}, quotient(py_pool, raw), {}, "", ""});
      rows.push_back({"",
                      "Python ThreadPool(2)",
                      py_threads,
                      "us",
                      {},
                      quotient(py_threads, raw),
                      {},
                      "",
                      ""});
      rows.push_back({"submit().result()",
                      "ProcessPoolExecutor(2)",
                      ppe,
                      "us",
                      {},
                      quotient(ppe, raw),
                      quotient(py_ppe, ppe),
                      "",
                      ""});
      rows.push_back({"",
                      "ThreadPoolExecutor(2)",
                      tpe,
                      "us",
                      {},
                      quotient(tpe, raw),
                      quotient(py_tpe, tpe),
                      "",
                      ""});
      rows.push_back({"",
                      "Python ProcessPoolExecutor(2)",
                      py_ppe,
                      "us",
                      {},
                      quotient(py_ppe, raw),
                      {},
                      "",
                      ""});
      rows.push_back({"",
                      "Python ThreadPoolExecutor(2)",
                      py_tpe,
                      "us",
                      {},
                      quotient(py_tpe, raw),
                      {},
                      "",
                      ""});
    }

    std::printf("\n");
    print_table(rows);
    std::printf(
        "\nAll pools have 2 workers (processes: fork), started before the clock starts.\n"
        "cpu-bound: seconds for %lld calls of crunch(seed, %s steps), a xorshift64 walk, by\n"
        "starmap with the default chunksize as the pool's first call (Python: %s steps per call,\n"
        "its steps being ~130x slower); vs serial: speedup over the same language's serial loop;\n"
        "vs raw: that speedup / std::thread x2's. map: million items/s of map(square, xs) over %s\n"
        "int64 on a pool that has run the same map once: the best of 3 maps with the default\n"
        "chunksize (ceil(n / 8)), one map with chunksize 1 (Python's over %s items, scaled to\n"
        "items/s); vs python: ours / Python's. Round trips: us per call, one in flight, after 20\n"
        "untimed (%lld calls; Python %lld; the futex ping-pong %lld, benchmarks/locks' raw\n"
        "reference: two processes, a futex sleep on every turn); vs raw: ours / the ping-pong's;\n"
        "vs python: Python's / ours. Python's counterpart is the same kind: processes against\n"
        "processes (Pool, ProcessPoolExecutor), threads against threads (ThreadPool,\n"
        "ThreadPoolExecutor).\n"
        "C++: best of %d interleaved rounds (cpu-bound: %d); Python: one run. Load average %s\n"
        "at the start, %s at the end, %u CPUs: the cpu-bound speedups need both cores free.\n",
        static_cast<long long>(cpu_tasks), count(cpu_steps).c_str(), count(py_cpu_steps).c_str(),
        count(map_items).c_str(), count(py_map1_items).c_str(), static_cast<long long>(trips),
        static_cast<long long>(py_trips), static_cast<long long>(raw_trips), rounds, cpu_rounds,
        load_at_start.c_str(), load_average().c_str(), std::thread::hardware_concurrency());
    if (write_csv(MP_BENCH_CSV, rows)) {
      std::printf("csv: %s\n", MP_BENCH_CSV);
    } else {
      failures.emplace_back(std::string("cannot write ") + MP_BENCH_CSV);
    }
    for (const std::string& why : failures) std::printf("error: %s\n", why.c_str());
    return failures.empty() ? 0 : 1;
  });
}

// SPDX-License-Identifier: MIT
// bench_managers: a Manager's dict and list used from a child process, side by side in one run
// with a hand-written Boost.Interprocess map in shared memory, std containers under a std::mutex
// in a thread, and Python's Manager() (managers.py, run from here). Prints operations per second
// and the ratios; the target (issue #6) is >= 20x Python for dict set, dict get and list append.
// Targets are reported, never asserted: the exit status only says whether every competitor ran.
//
// Usage: bench_managers [SCALE | --smoke]   (SCALE multiplies the operation counts, default 1:
//        ~15 s; --smoke runs 1/100 of them, to exercise the harness in ctest)
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <string>

#include <multiprocessing.hpp>

#include "../common/harness.hpp"
#include "managers.hpp"

namespace mp = multiprocessing;

namespace {

void row(const char* workload, double ours, double raw, double thread, std::optional<double> python,
         double py_limit) {
  std::printf("%-13s | %9.3f | %9.3f %5.2fx | %9.3f %5.2fx", workload, ours / 1e6, raw / 1e6,
              ours / raw, thread / 1e6, ours / thread);
  if (python) {
    const double vs_py = ours / *python;
    std::printf(" | %9.4f %7.1fx %s\n", *python / 1e6, vs_py,
                py_limit <= 0 ? "" : (vs_py >= py_limit ? ">=20x PASS" : ">=20x MISS"));
  } else {
    std::printf(" | %9s\n", "n/a");
  }
}

}  // namespace

int main(int argc, char* argv[]) {
  mp::freeze_support();
  const std::optional<std::int64_t> scale_arg = bench::parse_scale(argc, argv);
  if (!scale_arg) return 2;
  const std::int64_t scale = *scale_arg;  // in hundredths
  const std::int64_t keys = 1000;
  const std::int64_t ops = std::max<std::int64_t>(keys, 2'000'000 * scale / 100);
  const std::int64_t py_ops = std::max<std::int64_t>(keys, 20'000 * scale / 100);
  try {
    std::puts("measuring a std::mutex map in a thread ...");
    const bench::Results thread = bench::measure_thread(ops, keys);
    std::puts("measuring Boost.Interprocess containers in shared memory ...");
    const bench::Results raw = bench::measure_raw(ops, keys);
    std::puts("measuring multiprocessing-cpp's Manager ...");
    const bench::Results ours = bench::measure_mp(ops, keys);
    std::puts("measuring Python's Manager (managers.py) ...");
    const auto py = bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT, {py_ops, keys}, 4);
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");
    auto python = [&](const char* key) -> std::optional<double> {
      if (!py) return std::nullopt;
      return py->at(key);
    };
    std::printf(
        "\nworkload      |  ours M/s | boost.ipc  ours/ |    thread  ours/ |    python   "
        "ours/python\n");
    std::printf(
        "-----------------------------------------------------------------------------------------"
        "\n");
    row("dict set", ours.dict_set, raw.dict_set, thread.dict_set, python("dict_set"), 20);
    row("dict get", ours.dict_get, raw.dict_get, thread.dict_get, python("dict_get"), 20);
    row("list append", ours.list_append, raw.list_append, thread.list_append, python("list_append"),
        20);
    row("dict set str", ours.dict_set_str, raw.dict_set_str, thread.dict_set_str,
        python("dict_set_str"), 0);
    std::printf(
        "\nMillions of operations per second from one child process over %lld integer keys (dict\n"
        "set str: keys \"k<i>\"). boost.ipc: Boost.Interprocess map/vector in a shared buffer "
        "under\n"
        "an interprocess_mutex (not crash-safe); thread: std::unordered_map/std::vector under a\n"
        "std::mutex from a std::thread. Our operations are crash-atomic (a SIGKILLed client\n"
        "leaves the store consistent); neither competitor is.\n",
        static_cast<long long>(keys));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_managers: %s\n", e.what());
    return 1;
  }
  return 0;
}

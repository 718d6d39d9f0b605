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
  return bench::harness_main(argc, argv, "bench_managers", [&](const std::int64_t scale) {
    const std::int64_t keys = 1000;  // scale is in hundredths
    const std::int64_t ops = std::max<std::int64_t>(keys, 2'000'000 * scale / 100);
    const std::int64_t py_ops = std::max<std::int64_t>(keys, 20'000 * scale / 100);
    std::puts("measuring a std::mutex map in a thread ...");
    const bench::Results thread = bench::measure_thread(ops, keys);
    std::puts("measuring Boost.Interprocess containers in shared memory ...");
    const bench::Results raw = bench::measure_raw(ops, keys);
    std::puts("measuring multiprocessing-cpp's Manager ...");
    const bench::Results ours = bench::measure_mp(ops, keys);
    std::puts("measuring Python's Manager (managers.py) ...");
    const auto py = bench::run_python(MP_BENCH_PYTHON, MP_BENCH_PY_SCRIPT, {py_ops, keys}, 5);
    if (!py) std::puts("(Python's side did not run: is python3 installed?)");
    auto python = [&](const char* key) -> std::optional<double> {
      if (!py) return std::nullopt;
      return py->at(key);
    };
    std::printf("\n%-13s | %9s | %16s | %16s | %s\n", "workload", "ours M/s", "boost.ipc  ours/",
                "thread  ours/", "   python   ours/python");
    std::printf("%s\n", std::string(89, '-').c_str());
    row("dict set", ours.dict_set, raw.dict_set, thread.dict_set, python("dict_set"), 20);
    row("dict get", ours.dict_get, raw.dict_get, thread.dict_get, python("dict_get"), 20);
    row("list append", ours.list_append, raw.list_append, thread.list_append, python("list_append"),
        20);
    row("dict set str", ours.dict_set_str, raw.dict_set_str, thread.dict_set_str,
        python("dict_set_str"), 0);
    std::printf("%-13s | %9.3f | %16s | %16s", "remote set", ours.remote_dict_set / 1e6, "-", "-");
    if (const auto p = python("remote_dict_set")) {
      std::printf(" | %9.4f %7.1fx\n", *p / 1e6, ours.remote_dict_set / *p);
    } else {
      std::printf(" | %9s\n", "n/a");
    }
    std::printf(
        "\nMillions of operations per second from one child process over %lld integer keys.\n"
        "dict set str: keys \"k<i>\"; remote set: from a program that connected to a\n"
        "BaseManager over TCP with an authkey. boost.ipc: Boost.Interprocess map/vector in a\n"
        "shared buffer under an interprocess_mutex (not crash-safe); thread:\n"
        "std::unordered_map/std::vector under a std::mutex from a std::thread. Our operations\n"
        "are crash-atomic (a SIGKILLed client leaves the store consistent); neither\n"
        "competitor's is.\n",
        static_cast<long long>(keys));
    return 0;
  });
}

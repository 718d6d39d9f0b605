// SPDX-License-Identifier: MIT
// Competitor: multiprocessing-cpp. The same loop as process_start.py: construct, start(), join().
#include <chrono>
#include <stdexcept>
#include <string>

#include <multiprocessing.hpp>

#include "process_start.hpp"

namespace mp = multiprocessing;

namespace {

// A function pointer: a valid target under every start method.
void noop() {}

}  // namespace

bench::Run bench::measure_mp(std::string_view method, int warmup, int n) {
  auto ctx = mp::get_context(method);
  Run run;
  for (int i = 0; i < warmup + n; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    auto p = ctx.Process(noop);
    p.start();
    p.join();
    const std::chrono::duration<double, std::micro> elapsed =
        std::chrono::steady_clock::now() - begin;
    if (p.exitcode() != 0) {
      throw std::runtime_error(std::string(method) + ": child exited with " +
                               (p.exitcode() ? std::to_string(*p.exitcode()) : "nothing"));
    }
    if (i == 0) {
      run.first_us = elapsed.count();
    }
    if (i >= warmup) {
      run.samples_us.push_back(elapsed.count());
    }
  }
  return run;
}

// SPDX-License-Identifier: MIT
// Ours: mp::Pool and mp::dummy::Pool (one class template over processes and over threads), and
// mp::futures::ProcessPoolExecutor / ThreadPoolExecutor, used as a Python program uses them. Each
// measurement starts its own pool before the clock starts (pool start-up is bench_process_start's
// subject, not this one's) and, except for the cpu-bound job, warms it up: workers running, the
// task's code known to them; for map, one untimed map of the same input.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include <multiprocessing.hpp>

#include "pool.hpp"

namespace mp = multiprocessing;

namespace {

using clock_type = std::chrono::steady_clock;

constexpr int kWorkers = 2;
constexpr std::int64_t kWarmupTrips = 20;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

template <class Pool>
void warm_up(Pool& pool) {
  (void)pool.map(bench::square, iota(4 * kWorkers), 1);
}

template <class Pool>
bench::CpuRun cpu(std::int64_t tasks, std::int64_t steps) {
  std::vector<std::tuple<std::uint64_t, std::int64_t>> calls;
  for (std::int64_t k = 0; k < tasks; ++k) calls.emplace_back(static_cast<std::uint64_t>(k), steps);
  // The starmap is the pool's first call, as in `with Pool(2) as p: p.starmap(...)`. Once a job's
  // chunks prove quick, a worker may take up to a millisecond of them at once (pool_core's
  // prefetch), and one worker could be handed 6 of the 8 chunks while the other idles: that case
  // is not what this measures.
  Pool pool(kWorkers);
  const auto t0 = clock_type::now();
  const std::vector<std::uint64_t> results = pool.starmap(bench::crunch, calls);
  bench::CpuRun r;
  r.seconds = seconds_since(t0);
  r.checksum = std::accumulate(results.begin(), results.end(), std::uint64_t{0});
  return r;
}

template <class Pool>
double map_seconds(std::int64_t items, long chunksize, int timed) {
  const std::vector<std::int64_t> xs = iota(items);
  const std::optional<long> size = chunksize > 0 ? std::optional(chunksize) : std::nullopt;
  Pool pool(kWorkers);
  (void)pool.map(bench::square, xs, size);  // untimed: the first map also pays for fresh memory
  double best = 0;
  for (int i = 0; i < timed; ++i) {
    const auto t0 = clock_type::now();
    const std::vector<std::int64_t> ys = pool.map(bench::square, xs, size);
    const double s = seconds_since(t0);
    best = i == 0 ? s : std::min(best, s);
    if (ys.size() != xs.size()) throw std::runtime_error("map: wrong result count");
    for (std::size_t k = 0; k < xs.size(); ++k) {
      if (ys[k] != xs[k] * xs[k]) throw std::runtime_error("map: wrong result");
    }
  }
  return best;
}

/// µs per call of `one_call(i)` (which returns square(i) once it came back), one in flight,
/// after kWarmupTrips untimed calls; the sum of the results is checked.
template <class Call>
double round_trip_us(std::int64_t trips, const char* what, Call&& one_call) {
  for (std::int64_t i = 0; i < kWarmupTrips; ++i) (void)one_call(i);
  std::int64_t sum = 0;
  const auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < trips; ++i) sum += one_call(i);
  const double us = seconds_since(t0) * 1e6 / static_cast<double>(trips);
  if (sum != (trips - 1) * trips * (2 * trips - 1) / 6)
    throw std::runtime_error(std::string(what) + ": wrong result");
  return us;
}

template <class Pool>
double apply_us(std::int64_t trips) {
  Pool pool(kWorkers);
  warm_up(pool);
  return round_trip_us(trips, "apply_async", [&pool](std::int64_t i) {
    return pool.apply_async(bench::square, i).get();
  });
}

template <class Executor>
double submit_us(std::int64_t trips) {
  Executor ex(kWorkers);
  return round_trip_us(trips, "submit",
                       [&ex](std::int64_t i) { return ex.submit(bench::square, i).result(); });
}

}  // namespace

bench::CpuRun bench::mp_cpu(Kind kind, std::int64_t tasks, std::int64_t steps) {
  return kind == Kind::processes ? cpu<mp::Pool>(tasks, steps) : cpu<mp::dummy::Pool>(tasks, steps);
}

double bench::mp_map_seconds(Kind kind, std::int64_t items, long chunksize, int timed) {
  return kind == Kind::processes ? map_seconds<mp::Pool>(items, chunksize, timed)
                                 : map_seconds<mp::dummy::Pool>(items, chunksize, timed);
}

double bench::mp_apply_us(Kind kind, std::int64_t trips) {
  return kind == Kind::processes ? apply_us<mp::Pool>(trips) : apply_us<mp::dummy::Pool>(trips);
}

double bench::mp_submit_us(Kind kind, std::int64_t trips) {
  return kind == Kind::processes ? submit_us<mp::futures::ProcessPoolExecutor>(trips)
                                 : submit_us<mp::futures::ThreadPoolExecutor>(trips);
}

// SPDX-License-Identifier: MIT
// Competitor: multiprocessing-cpp's Queue<T>, used as a Python program uses multiprocessing.Queue:
// the handle captured by the children's targets (mp::Process, the default start method).
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <multiprocessing.hpp>
#include <multiprocessing/queues.hpp>

#include "queues.hpp"

namespace mp = multiprocessing;

namespace {

/// One workload over mp::Queue<T>: T is int (the end marker -1) or std::vector<std::byte> (the
/// end marker empty).
template <class T>
double run(const bench::Workload& w) {
  constexpr bool ints = std::is_same_v<T, int>;
  bench::Stage* stage = bench::map_stage();
  mp::Queue<T> q;
  std::vector<mp::Process> children;
  for (int k = 0; k < w.consumers; ++k) {
    children.emplace_back([q, stage, w]() mutable {
      std::int64_t got = 0, bad = 0;
      bench::consumer_ready(*stage);
      for (;;) {
        T message = q.get();
        if constexpr (ints) {
          if (message < 0) break;
        } else {
          if (message.empty()) break;
          if (message.size() != w.size) ++bad;
        }
        ++got;
      }
      bench::consumer_done(*stage, got, bad);
    });
  }
  for (int k = 0; k < w.producers; ++k) {
    children.emplace_back([q, stage, w, k]() mutable {
      const std::int64_t n = bench::share(w, k);
      T message{};
      if constexpr (!ints) message.assign(w.size, std::byte{0x5a});
      bench::await_go(*stage);
      for (std::int64_t i = 0; i < n; ++i) {
        if constexpr (ints) {
          q.put(static_cast<int>(i));
        } else {
          q.put(message);
        }
      }
      if constexpr (ints) {
        q.put(-1);
      } else {
        q.put(T{});
      }
    });
  }
  for (mp::Process& p : children) p.start();
  if (!bench::release(*stage, w)) {
    for (mp::Process& p : children) p.kill();
  }
  bool ok = true;
  for (mp::Process& p : children) {
    p.join();
    ok = ok && p.exitcode() == 0;
  }
  const bench::Tally result = bench::tally(*stage);
  bench::unmap_stage(stage);
  return bench::finish(result, w, ok, "mp::Queue");
}

}  // namespace

double bench::measure_mp(const Workload& w) {
  return w.size == 0 ? run<int>(w) : run<std::vector<std::byte>>(w);
}

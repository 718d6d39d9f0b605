// SPDX-License-Identifier: MIT
// benchmarks/queues/queues.hpp
//
// What each competitor file gives main.cpp, and the stage they all run on.
//
// A workload: `producers` child processes put `count` messages in all (an equal share each, then
// one end marker each), `consumers` child processes get until they meet an end marker. Messages
// are `int`s when `size` is 0, otherwise `size` bytes (std::vector<std::byte>, Python's bytes).
// The clock starts when the last child is ready and the producers are released together, and
// stops when the last consumer has its last message: process start-up is not measured.
#pragma once

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace bench {

struct Workload {
  int producers = 1;
  int consumers = 1;
  std::size_t size = 0;  ///< 0: int messages; otherwise bytes per message
  std::int64_t count = 0;
};

/// bench_mp.cpp: mp::Queue<int> / mp::Queue<std::vector<std::byte>>, children from mp::Process.
/// Defined only when include/multiprocessing/queues.hpp exists (see CMakeLists.txt).
/// @returns the seconds from the producers' release to the last message received.
double measure_mp(const Workload& w);

/// boost_message_queue.cpp: boost::interprocess::message_queue (a named, bounded queue of
/// fixed-size slots in shared memory), children from fork().
double measure_boost(const Workload& w);

/// raw_posix.cpp: a single-producer single-consumer byte ring in a MAP_SHARED|MAP_ANONYMOUS
/// mapping, spinning briefly, then sleeping on a futex that the peer wakes only when it sleeps.
/// One producer and one consumer only.
double measure_raw(const Workload& w);

/// The page all competitors' children share (mapped before the children are started).
struct Stage {
  std::atomic<std::uint32_t> go{0};       ///< futex word: 1 releases the producers
  std::atomic<std::int32_t> ready{0};     ///< children waiting for go (or, consumers, data)
  std::atomic<std::int64_t> start_ns{0};  ///< when go was set (CLOCK_MONOTONIC)
  std::atomic<std::int64_t> end_ns{0};    ///< latest consumer end
  std::atomic<std::int64_t> received{0};  ///< messages the consumers got, end markers aside
  std::atomic<std::int64_t> bad{0};       ///< messages of the wrong size or value
};

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline Stage* map_stage() {
  void* p =
      ::mmap(nullptr, sizeof(Stage), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap stage");
  return new (p) Stage{};
}

inline void unmap_stage(Stage* s) { ::munmap(s, sizeof(Stage)); }

/// In a producer: count itself ready, then sleep until the parent releases everyone.
inline void await_go(Stage& s) {
  s.ready.fetch_add(1);
  while (s.go.load() == 0) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&s.go), FUTEX_WAIT, 0, nullptr, nullptr,
              0);
  }
}

/// In a consumer, before its first get.
inline void consumer_ready(Stage& s) { s.ready.fetch_add(1); }

/// In a consumer, after its end marker.
inline void consumer_done(Stage& s, std::int64_t got, std::int64_t bad) {
  const std::int64_t t = now_ns();
  s.received.fetch_add(got);
  s.bad.fetch_add(bad);
  for (std::int64_t seen = s.end_ns.load(); seen < t && !s.end_ns.compare_exchange_weak(seen, t);) {
  }
}

/// In the parent, once every child is started: waits until they are all ready, then starts the
/// clock and releases the producers. False when they are not all ready within 30 s (a child
/// failed): the caller kills them and reports it.
[[nodiscard]] inline bool release(Stage& s, const Workload& w) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (s.ready.load() < w.producers + w.consumers) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  s.start_ns.store(now_ns());
  s.go.store(1);
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&s.go), FUTEX_WAKE, w.producers, nullptr,
            nullptr, 0);
  return true;
}

/// What a run left on the stage, copied out so that the stage can be unmapped first.
struct Tally {
  std::int64_t received = 0;
  std::int64_t bad = 0;
  double seconds = 0;
};

inline Tally tally(const Stage& s) {
  return {s.received.load(), s.bad.load(),
          static_cast<double>(s.end_ns.load() - s.start_ns.load()) / 1e9};
}

/// In the parent, once every child has exited: checks the counts and returns the seconds.
/// @throws std::runtime_error naming `who` when a child failed or a message went missing.
inline double finish(const Tally& t, const Workload& w, bool children_ok, const char* who) {
  if (!children_ok) throw std::runtime_error(std::string(who) + ": a child failed");
  if (t.received != w.count || t.bad != 0) {
    throw std::runtime_error(std::string(who) + ": consumers got " + std::to_string(t.received) +
                             " messages of " + std::to_string(w.count) + ", " +
                             std::to_string(t.bad) + " of them wrong");
  }
  return t.seconds;
}

/// The messages producer `k` of `w` puts (the first ones take the remainder).
inline std::int64_t share(const Workload& w, int k) {
  return w.count / w.producers + (k < w.count % w.producers ? 1 : 0);
}

}  // namespace bench

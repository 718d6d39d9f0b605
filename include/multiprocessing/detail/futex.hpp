// SPDX-License-Identifier: MIT
// multiprocessing/detail/futex.hpp
//
// Futex wait/wake on a std::atomic<std::uint32_t> word, in two flavours: shared (the word may live
// in a MAP_SHARED segment and be waited on by several processes) and private (threads of one
// process only; cheaper for the kernel). std::atomic::wait/notify is never used for process-shared
// words: libstdc++ implements it with FUTEX_PRIVATE_FLAG, which does not wake other processes.
//
// Waits take an absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET), computed once per blocking
// call, so that spurious wakeups and EINTR never extend a timeout.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <optional>
#include <type_traits>

#include "../timeout.hpp"

namespace multiprocessing::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::is_standard_layout_v<std::atomic<std::uint32_t>>,
              "futex words must be plain lock-free 32-bit atomics");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "shared state needs lock-free 64-bit atomics");

/// An absolute point on CLOCK_MONOTONIC (std::chrono::steady_clock is CLOCK_MONOTONIC on Linux),
/// or "never".
class mono_deadline {
 public:
  using clock = std::chrono::steady_clock;
  mono_deadline() noexcept = default;  // never
  explicit mono_deadline(const Timeout& t) noexcept {
    if (const auto d = t.get()) at_ = clock::now() + *d;
  }
  explicit mono_deadline(clock::time_point at) noexcept : at_(at) {}
  [[nodiscard]] bool never() const noexcept { return !at_; }
  [[nodiscard]] bool expired() const noexcept { return at_ && clock::now() >= *at_; }
  [[nodiscard]] std::optional<clock::time_point> at() const noexcept { return at_; }
  /// The earlier of this deadline and now + `slice`.
  [[nodiscard]] mono_deadline capped(clock::duration slice) const noexcept {
    const auto cap = clock::now() + slice;
    return mono_deadline(at_ && *at_ < cap ? *at_ : cap);
  }

 private:
  std::optional<clock::time_point> at_;
};

enum class futex_result { woken, timed_out };

/// Sleeps while `word` holds `expected`, until woken or `until` passes. Returns timed_out only when
/// the deadline has passed; a wakeup, a changed value, EINTR and spurious returns all report
/// woken (the caller re-checks its condition, as with every futex).
inline futex_result futex_wait(const std::atomic<std::uint32_t>& word, std::uint32_t expected,
                               const mono_deadline& until, bool shared) noexcept {
  timespec ts{};
  const timespec* tsp = nullptr;
  if (const auto at = until.at()) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at->time_since_epoch()).count();
    if (ns <= 0) return futex_result::timed_out;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  const int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  // The futex word is the atomic's object representation (checked above).
  const long rc = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op, expected,
                            tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == -1 && errno == ETIMEDOUT) return futex_result::timed_out;
  return futex_result::woken;
}

/// Wakes up to `n` sleepers of `word` (INT_MAX: all). Returns how many were woken.
inline int futex_wake(const std::atomic<std::uint32_t>& word, int n, bool shared) noexcept {
  const int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
  const long rc = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), op, n,
                            nullptr, nullptr, 0);
  return rc < 0 ? 0 : static_cast<int>(rc);
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace multiprocessing::detail

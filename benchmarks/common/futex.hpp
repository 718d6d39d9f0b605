// SPDX-License-Identifier: MIT
// The raw wake-up reference of the harnesses: a futex word in a MAP_SHARED mapping, waited on
// and set with bare syscalls (every wait sleeps, no spinning: the same rules as an Event wait).
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace bench::futex {

inline void wait(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, value, nullptr, nullptr, 0);
}

inline void wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

/// Waits until `word` holds `value`.
inline void await(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  for (std::uint32_t seen = word.load(); seen != value; seen = word.load()) wait(word, seen);
}

/// Stores `value` and wakes one waiter.
inline void set(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  word.store(value);
  wake(word);
}

}  // namespace bench::futex

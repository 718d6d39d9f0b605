// SPDX-License-Identifier: MIT
// multiprocessing/detail/sync_core.hpp
//
// The pieces shared by every primitive of synchronize.hpp and their thread twins in dummy.hpp:
//   * the backend policies: process_backend keeps a primitive's state in a shared_object (memfd,
//     MAP_SHARED) and uses shared futexes; thread_backend keeps it in a std::shared_ptr and uses
//     private futexes. One template per primitive, instantiated with either;
//   * who we are (pid, tid, the process's start time), cached and refreshed after fork;
//   * whether a recorded lock holder is still alive;
//   * lock_word: the robust futex mutex every lock is built on.
//
// lock_word (after Drepper, "Futexes are tricky", mutex 3): `word` is 0 when unlocked, otherwise
// the holder's pid, with bit 31 set while some thread may sleep on it. Uncontended acquire is one
// CAS (plus two relaxed stores recording the holder), release one exchange; the kernel is entered
// only when there are sleepers. Because the holder's pid is *in* the word, a holder that dies
// between taking the lock and recording anything else is still identifiable.
//
// Holder death (process backend): before its first sleep an acquirer probes the holder's pid with
// kill(pid, 0) (a holder already gone and reaped is taken over at once); then it sleeps in slices
// of recovery_slice, and after a slice with no wakeup it checks the holder in the word. The holder
// is dead when /proc/<pid> is gone or a zombie, or when the pid now belongs to a process whose
// start time (/proc/<pid>/stat field 22) differs from the one the holder recorded (`stamp`) - seen
// twice in a row, since a live holder may not have written its stamp yet. An acquirer whose
// deadline passes while the holder kept the lock checks it once more before giving up, so short and
// zero timeouts recover a dead holder too; acquire(block = false) never checks (it stays one CAS).
// A dead holder's lock is taken over with a CAS on the exact word observed, so two sleepers never
// both recover it. The taker's acquire() succeeds normally; the recovery is reported by
// `recovered` (set until the taker releases) and `recoveries`.
#pragma once

#include <pthread.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): kill() is POSIX
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "futex.hpp"
#include "shm.hpp"

namespace multiprocessing::detail {

// --- who we are ----------------------------------------------------------------------------------

/// Start time of process `pid` in clock ticks since boot (/proc/<pid>/stat field 22), 0 when the
/// process does not exist, and its state letter in `state` (Z: zombie).
inline std::uint64_t process_start_time(pid_t pid, char* state = nullptr) noexcept {
  char path[64];
  (void)std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  std::FILE* f = std::fopen(path, "re");
  if (f == nullptr) return 0;
  char buf[1024];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  (void)std::fclose(f);
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may contain spaces and ')'
  if (p == nullptr) return 0;
  ++p;
  if (state != nullptr) *state = p[1];
  // Fields after ')' start at field 3; field 22 is the 20th of them.
  for (int field = 3; field < 22 && *p != '\0'; ++field) {
    p = std::strchr(p + 1, ' ');
    if (p == nullptr) return 0;
  }
  return std::strtoull(p + 1, nullptr, 10);
}

struct self_identity {
  std::uint32_t pid = 0;
  std::uint64_t stamp = 0;  // pid << 40 | start time (40 bits of ticks: centuries)
};

inline constexpr int stamp_pid_shift = 40;
inline constexpr std::uint64_t stamp_time_mask = (std::uint64_t{1} << stamp_pid_shift) - 1;

inline std::atomic<std::uint32_t> cached_pid{0};
inline std::atomic<std::uint64_t> cached_stamp{0};
inline thread_local std::uint32_t cached_tid = 0;

inline void reset_identity_after_fork() noexcept {
  cached_pid.store(0, std::memory_order_relaxed);
  cached_stamp.store(0, std::memory_order_relaxed);
  cached_tid = 0;  // the forking thread is the child's only thread
}

inline std::uint32_t self_pid() noexcept {
  std::uint32_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const int registered = ::pthread_atfork(nullptr, nullptr, reset_identity_after_fork);
  (void)registered;
  pid = static_cast<std::uint32_t>(::getpid());
  cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}

inline std::uint64_t self_stamp() noexcept {
  std::uint64_t stamp = cached_stamp.load(std::memory_order_relaxed);
  if (stamp != 0) return stamp;
  const std::uint32_t pid = self_pid();
  stamp = (std::uint64_t{pid} << stamp_pid_shift) |
          (process_start_time(static_cast<pid_t>(pid)) & stamp_time_mask);
  cached_stamp.store(stamp, std::memory_order_relaxed);
  return stamp;
}

inline std::uint32_t self_tid() noexcept {
  if (cached_tid == 0) {
    self_pid();  // registers the fork handler that resets cached_tid
    cached_tid = static_cast<std::uint32_t>(::syscall(SYS_gettid));
  }
  return cached_tid;
}

enum class holder_status { alive, dead, suspect };

/// Whether the process `pid`, which recorded `stamp` (maybe not yet: then alive is assumed), lives.
inline holder_status check_holder(std::uint32_t pid, std::uint64_t stamp) noexcept {
  if (::kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) return holder_status::dead;
  char state = '?';
  const std::uint64_t start = process_start_time(static_cast<pid_t>(pid), &state);
  if (start == 0 || state == 'Z' || state == 'X') return holder_status::dead;
  if ((stamp >> stamp_pid_shift) == pid && (stamp & stamp_time_mask) != (start & stamp_time_mask)) {
    return holder_status::suspect;  // the pid was reused, or the holder has not stamped yet
  }
  return holder_status::alive;
}

// --- backends ------------------------------------------------------------------------------------

/// State in a memfd segment shared by processes; shared futexes; holder death is detected.
struct process_backend {
  static constexpr bool shared = true;
  static constexpr bool robust = true;
  template <class State>
  using holder = shared_object<State>;
  template <class State, class... Args>
  [[nodiscard]] static holder<State> make(const char* what, Args&&... args) {
    return shared_object<State>::create(what, 0, std::forward<Args>(args)...);
  }
};

/// State on the heap shared by threads; private futexes.
struct thread_backend {
  static constexpr bool shared = false;
  static constexpr bool robust = false;
  template <class State>
  using holder = std::shared_ptr<State>;
  template <class State, class... Args>
  [[nodiscard]] static holder<State> make(const char* /*what*/, Args&&... args) {
    return std::make_shared<State>(std::forward<Args>(args)...);
  }
};

// --- the lock word -------------------------------------------------------------------------------

/// How long a sleeper on a lock sleeps before checking that the holder still lives.
inline constexpr std::chrono::milliseconds recovery_slice{50};

struct lock_word {
  static constexpr std::uint32_t waiters_bit = 1u << 31;
  static constexpr std::uint32_t pid_mask = waiters_bit - 1;

  std::atomic<std::uint32_t> word{0};       // 0, or holder pid | waiters_bit
  std::atomic<std::uint32_t> owner_tid{0};  // thread that acquired (0 once released)
  std::atomic<std::uint64_t> stamp{0};      // holder's pid << 40 | start time
  std::atomic<std::uint32_t> count{0};      // RLock recursion depth
  std::atomic<std::uint32_t> recovered{0};  // 1 while held by a taker-over of a dead holder
  std::atomic<std::uint64_t> recoveries{0};

  /// True when the calling thread acquired the lock (and has not released it).
  [[nodiscard]] bool is_mine() const noexcept {
    return (word.load(std::memory_order_relaxed) & pid_mask) == self_pid() &&
           owner_tid.load(std::memory_order_relaxed) == self_tid();
  }

  [[nodiscard]] bool locked() const noexcept { return word.load(std::memory_order_relaxed) != 0; }

  /// Takes the lock. Returns false when !block and it is held, or when `until` passed first.
  template <class Backend>
  bool acquire(bool block, const mono_deadline& until) {
    const std::uint32_t me = self_pid();
    std::uint32_t c = 0;
    if (word.compare_exchange_strong(c, me, std::memory_order_acquire, std::memory_order_relaxed)) {
      took<Backend>(false);
      return true;
    }
    return acquire_slow<Backend>(me, block, until);
  }

  /// Releases the lock whoever holds it (Python's Lock allows that). False when it was unlocked.
  template <class Backend>
  bool release() noexcept {
    if (word.load(std::memory_order_relaxed) == 0) return false;
    owner_tid.store(0, std::memory_order_relaxed);
    recovered.store(0, std::memory_order_relaxed);
    const std::uint32_t prev = word.exchange(0, std::memory_order_release);
    if ((prev & waiters_bit) != 0) futex_wake(word, 1, Backend::shared);
    return prev != 0;
  }

 private:
  template <class Backend>
  void took(bool recovered_now) noexcept {
    owner_tid.store(self_tid(), std::memory_order_relaxed);
    if constexpr (Backend::robust) stamp.store(self_stamp(), std::memory_order_relaxed);
    if (recovered_now) {
      recovered.store(1, std::memory_order_relaxed);
      recoveries.fetch_add(1, std::memory_order_relaxed);
    }
  }

  template <class Backend>
  bool acquire_slow(std::uint32_t me, bool block, const mono_deadline& until) {
    for (int spin = 0; spin < 100; ++spin) {
      std::uint32_t c = word.load(std::memory_order_relaxed);
      if (c == 0 &&
          word.compare_exchange_weak(c, me, std::memory_order_acquire, std::memory_order_relaxed)) {
        took<Backend>(false);
        return true;
      }
      if (!block) return false;
      cpu_relax();
    }
    std::uint32_t suspect_word = 0;
    std::uint64_t suspect_stamp = 0;
    bool first_sleep = true;
    for (;;) {
      std::uint32_t c = word.load(std::memory_order_relaxed);
      if (c == 0) {
        // Others may still sleep: keep the waiters bit (at worst one needless wake).
        if (word.compare_exchange_weak(c, me | waiters_bit, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
          took<Backend>(false);
          return true;
        }
        continue;
      }
      if ((c & waiters_bit) == 0) {
        if (!word.compare_exchange_weak(c, c | waiters_bit, std::memory_order_relaxed)) continue;
        c |= waiters_bit;
      }
      if constexpr (Backend::robust) {
        // Before the first sleep, one cheap probe: a holder that is already gone (and reaped) is
        // taken over at once instead of after a slice.
        if (first_sleep) {
          first_sleep = false;
          if (::kill(static_cast<pid_t>(c & pid_mask), 0) == -1 && errno == ESRCH &&
              word.compare_exchange_strong(c, me | waiters_bit, std::memory_order_acquire,
                                           std::memory_order_relaxed)) {
            took<Backend>(true);
            return true;
          }
          if (word.load(std::memory_order_relaxed) != c) continue;
        }
        const auto r = futex_wait(word, c, until.capped(recovery_slice), true);
        const bool expired = until.expired();
        if (r == futex_result::woken && !expired) continue;
        if (const std::uint32_t now = word.load(std::memory_order_relaxed); now != c) {
          if (!expired) continue;
          // Out of time, but the holder just changed: one last try if it is free now.
          std::uint32_t z = 0;
          if (now == 0 && word.compare_exchange_strong(z, me | waiters_bit,
                                                       std::memory_order_acquire,
                                                       std::memory_order_relaxed)) {
            took<Backend>(false);
            return true;
          }
          return false;
        }
        // The holder kept the lock for a whole slice, or until our deadline: is it alive? Checked
        // before giving up too, so that acquirers with short (even zero) timeouts still recover a
        // dead holder's lock.
        const std::uint64_t s = stamp.load(std::memory_order_relaxed);
        const auto status = check_holder(c & pid_mask, s);
        bool dead = status == holder_status::dead;
        if (status == holder_status::suspect) {
          dead = suspect_word == c && suspect_stamp == s;
          suspect_word = c;
          suspect_stamp = s;
        } else {
          suspect_word = 0;
        }
        if (dead && word.compare_exchange_strong(c, me | waiters_bit, std::memory_order_acquire,
                                                 std::memory_order_relaxed)) {
          took<Backend>(true);
          return true;
        }
        if (expired) return false;
      } else {
        if (futex_wait(word, c, until, false) == futex_result::timed_out) return false;
      }
    }
  }
};

}  // namespace multiprocessing::detail

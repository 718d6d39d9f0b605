// SPDX-License-Identifier: MIT
// multiprocessing/synchronize.hpp
//
// Defines Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier: synchronization
// primitives shared by processes (Python: multiprocessing.synchronize). Each object lives in its
// own anonymous shared segment; the C++ objects are handles, and copying one shares the object
// (a Python reference). Handles are inherited under fork and serializable, so they can be passed
// as Process arguments under spawn and forkserver. The thread twins (multiprocessing::dummy) are
// the same templates over thread_backend.
//
// Waiting uses futexes on words inside the shared state (never std::atomic::wait, whose private
// futexes do not wake other processes), with absolute CLOCK_MONOTONIC deadlines computed once per
// call. `Timeout` is any duration (negative: do not wait) or nothing (wait forever).
//
// Holder death. A process that dies (even by SIGKILL) while holding a Lock, an RLock or a
// Condition's lock does not block the others forever: a blocked acquirer notices that the holder
// is gone (its pid and start time are recorded in the lock) at once if it was already reaped,
// otherwise within about 50-100 ms, and takes the lock over (an acquire whose timeout is shorter,
// even zero, checks the holder once before giving up; acquire(false) and try_lock() never check,
// as they must stay one atomic instruction). Its acquire() returns true as usual;
// owner_died() then returns true until it releases the lock, and recoveries() counts such
// take-overs. As with a robust mutex's EOWNERDEAD, the data the lock protected may be half-updated:
// check owner_died() where that matters. A Semaphore slot held by a dead process is not given back
// (a semaphore has no owner); a Barrier party that dies before calling wait() never arrives (one
// that dies inside wait() has arrived and counts for its cycle). In both cases waiters with a
// timeout still return (a Barrier waiter that times out breaks the barrier for everyone, as in
// Python).
//
// Differences from Python, all deliberate: Condition.notify() never waits for the woken threads to
// acknowledge (CPython's does, so a sleeper killed at the wrong moment hangs the notifier); RLock
// release by a non-owner and Condition use without the lock throw ProcessError where Python raises
// AssertionError; a dead holder's lock is recovered instead of hanging everyone.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "detail/code_ref.hpp"
#include "detail/futex.hpp"
#include "detail/sync_core.hpp"
#include "detail/target.hpp"
#include "errors.hpp"
#include "serialize.hpp"
#include "timeout.hpp"

namespace multiprocessing {

namespace detail {

template <class Backend>
class basic_condition;

/// The std Lockable/TimedLockable vocabulary, for any handle with acquire(block, timeout) and
/// release(): std::lock_guard, std::unique_lock and std::scoped_lock work (Python: `with lock:`).
template <class Derived>
class lockable_mixin {
 public:
  void lock() { self().acquire(true, Timeout{}); }
  void unlock() { self().release(); }
  [[nodiscard]] bool try_lock() { return self().acquire(false, Timeout{}); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return self().acquire(true, Timeout(d));
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) {
    return self().acquire(true, Timeout(tp - Clock::now()));
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

// --- Lock ----------------------------------------------------------------------------------------

/// A non-recursive lock (Python: multiprocessing.Lock). Any thread of any process may release it.
template <class Backend>
class basic_lock : public lockable_mixin<basic_lock<Backend>> {
 public:
  basic_lock() : state_(Backend::template make<lock_word>("Lock")) {}

  /// Takes the lock, waiting up to `timeout` when `block`.
  /// Python: Lock.acquire(block=True, timeout=None); block=false ignores timeout.
  /// @returns true when acquired, false when it was held (!block) or the timeout passed.
  /// Memory ordering: acquire; what the previous holder did before release() is visible.
  /// Peer death: a holder that died is detected within ~50 ms (before returning false, when the
  /// timeout is shorter) and the lock taken over (returns true, owner_died() becomes true).
  /// acquire(false) never checks the holder.
  bool acquire(bool block = true, Timeout timeout = {}) {
    return state_->template acquire<Backend>(
        block, block ? mono_deadline(timeout) : mono_deadline(mono_deadline::clock::now()));
  }

  /// Releases the lock (from any thread or process). Python: Lock.release().
  /// @throws ValueError when it is not locked ("semaphore or lock released too many times").
  /// Memory ordering: release.
  void release() {
    if (!state_->template release<Backend>()) {
      throw ValueError("Lock.release(): semaphore or lock released too many times");
    }
  }

  /// True while this process holds a lock it took over from a holder that died holding it.
  [[nodiscard]] bool owner_died() const noexcept {
    return state_->recovered.load(std::memory_order_relaxed) != 0 &&
           (state_->word.load(std::memory_order_relaxed) & lock_word::pid_mask) == self_pid();
  }
  /// How many times a dead holder's lock was taken over, in every process.
  [[nodiscard]] std::uint64_t recoveries() const noexcept {
    return state_->recoveries.load(std::memory_order_relaxed);
  }

  /// Python's SemLock._is_mine(): acquired by the calling thread.
  [[nodiscard]] bool is_mine() const noexcept { return state_->is_mine(); }

  void save(serialize::Writer& out) const { state_.save(out); }
  static basic_lock load(serialize::Reader& in) {
    return basic_lock(shared_object<lock_word>::load(in, "Lock"));
  }

 private:
  friend class basic_condition<Backend>;
  explicit basic_lock(typename Backend::template holder<lock_word> s) : state_(std::move(s)) {}
  // Condition support: release all and restore.
  std::uint32_t release_save() {
    release();
    return 1;
  }
  void acquire_restore(std::uint32_t /*count*/) { acquire(true, Timeout{}); }

  typename Backend::template holder<lock_word> state_;
};

// --- RLock ---------------------------------------------------------------------------------------

/// A recursive lock (Python: multiprocessing.RLock): the owning thread may take it again and must
/// release it as many times. Owner: (pid, tid).
template <class Backend>
class basic_rlock : public lockable_mixin<basic_rlock<Backend>> {
 public:
  basic_rlock() : state_(Backend::template make<lock_word>("RLock")) {}

  /// Takes the lock, or deepens the recursion when the calling thread owns it.
  /// Python: RLock.acquire(block=True, timeout=None).
  /// @returns true when acquired, false when !block and another owns it or the timeout passed.
  /// Memory ordering: acquire. Peer death: as Lock.acquire() (the recursion restarts at 1).
  bool acquire(bool block = true, Timeout timeout = {}) {
    if (state_->is_mine()) {
      state_->count.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (!state_->template acquire<Backend>(
            block, block ? mono_deadline(timeout) : mono_deadline(mono_deadline::clock::now()))) {
      return false;
    }
    state_->count.store(1, std::memory_order_relaxed);
    return true;
  }

  /// Undoes one acquire(); the lock is free once the count reaches 0. Python: RLock.release().
  /// @throws ProcessError when the calling thread does not own it (Python: AssertionError).
  /// Memory ordering: release (on the last release).
  void release() {
    if (!state_->is_mine()) {
      throw ProcessError(
          "RLock.release(): cannot release un-acquired lock (not owned by this thread)");
    }
    if (state_->count.fetch_sub(1, std::memory_order_relaxed) > 1) return;
    state_->template release<Backend>();
  }

  /// See Lock::owner_died().
  [[nodiscard]] bool owner_died() const noexcept {
    return state_->recovered.load(std::memory_order_relaxed) != 0 && state_->is_mine();
  }
  [[nodiscard]] std::uint64_t recoveries() const noexcept {
    return state_->recoveries.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool is_mine() const noexcept { return state_->is_mine(); }
  /// The recursion depth when the calling thread owns it, otherwise 0.
  [[nodiscard]] std::uint32_t count() const noexcept {
    return state_->is_mine() ? state_->count.load(std::memory_order_relaxed) : 0;
  }

  void save(serialize::Writer& out) const { state_.save(out); }
  static basic_rlock load(serialize::Reader& in) {
    return basic_rlock(shared_object<lock_word>::load(in, "RLock"));
  }

 private:
  friend class basic_condition<Backend>;
  explicit basic_rlock(typename Backend::template holder<lock_word> s) : state_(std::move(s)) {}
  std::uint32_t release_save() {
    const std::uint32_t n = state_->count.load(std::memory_order_relaxed);
    state_->count.store(1, std::memory_order_relaxed);
    release();
    return n;
  }
  void acquire_restore(std::uint32_t n) {
    acquire(true, Timeout{});
    state_->count.store(n, std::memory_order_relaxed);
  }

  typename Backend::template holder<lock_word> state_;
};

// --- Semaphore -----------------------------------------------------------------------------------

struct semaphore_state {
  semaphore_state(std::uint32_t v, std::uint32_t m) : value(v), max(m) {}
  std::atomic<std::uint32_t> value;  // futex word
  std::atomic<std::uint32_t> waiters{0};
  std::uint32_t max;  // 0: unbounded
};

inline constexpr std::uint32_t sem_value_max = INT_MAX;

/// A counting semaphore (Python: multiprocessing.Semaphore / BoundedSemaphore when Bounded).
template <class Backend, bool Bounded>
class basic_semaphore : public lockable_mixin<basic_semaphore<Backend, Bounded>> {
 public:
  /// @throws ValueError when value is negative or too large.
  explicit basic_semaphore(int value = 1)
      : state_(Backend::template make<semaphore_state>(Bounded ? "BoundedSemaphore" : "Semaphore",
                                                       checked(value),
                                                       Bounded ? checked(value) : 0u)) {}

  /// Takes one unit, waiting up to `timeout` when `block` and none is left.
  /// Python: Semaphore.acquire(block=True, timeout=None).
  /// @returns true when a unit was taken, false otherwise.
  /// Memory ordering: acquire (pairs with the release() whose unit was taken).
  /// Peer death: units held by a dead process are never given back; waiters with a timeout return.
  bool acquire(bool block = true, Timeout timeout = {}) {
    if (try_take()) return true;
    if (!block) return false;
    const mono_deadline until(timeout);
    for (int spin = 0; spin < 50; ++spin) {
      cpu_relax();
      if (try_take()) return true;
    }
    auto& s = *state_;
    for (;;) {
      s.waiters.fetch_add(1, std::memory_order_seq_cst);
      const auto r = s.value.load(std::memory_order_seq_cst) == 0
                         ? futex_wait(s.value, 0, until, Backend::shared)
                         : futex_result::woken;
      s.waiters.fetch_sub(1, std::memory_order_relaxed);
      if (try_take()) return true;
      if (r == futex_result::timed_out || until.expired()) return false;
    }
  }

  /// Gives back one unit. Python: Semaphore.release().
  /// @throws ValueError for a BoundedSemaphore already at its initial value, or on overflow.
  /// Memory ordering: release.
  void release() {
    auto& s = *state_;
    std::uint32_t v = s.value.load(std::memory_order_relaxed);
    for (;;) {
      if ((Bounded && v >= s.max) || v >= sem_value_max) {
        throw ValueError(std::string(Bounded ? "BoundedSemaphore" : "Semaphore") +
                         ".release(): semaphore or lock released too many times");
      }
      if (s.value.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst)) break;
    }
    if (s.waiters.load(std::memory_order_seq_cst) != 0) futex_wake(s.value, 1, Backend::shared);
  }

  /// The current value. Python: Semaphore.get_value().
  [[nodiscard]] int get_value() const noexcept {
    return static_cast<int>(state_->value.load(std::memory_order_relaxed));
  }

  void save(serialize::Writer& out) const { state_.save(out); }
  static basic_semaphore load(serialize::Reader& in) {
    return basic_semaphore(shared_object<semaphore_state>::load(in, "Semaphore"));
  }

 private:
  explicit basic_semaphore(typename Backend::template holder<semaphore_state> s)
      : state_(std::move(s)) {}
  static std::uint32_t checked(int value) {
    if (value < 0)
      throw ValueError("Semaphore: initial value must be >= 0, not " + std::to_string(value));
    return static_cast<std::uint32_t>(value);
  }
  bool try_take() noexcept {
    auto& v = state_->value;
    std::uint32_t c = v.load(std::memory_order_relaxed);
    while (c != 0) {
      if (v.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

  typename Backend::template holder<semaphore_state> state_;
};

// --- Condition -----------------------------------------------------------------------------------

/// Condition state: a ticket scheme. A waiter takes ticket t (under the lock) and is notified once
/// `notified` passes t. notify(n) advances `notified` over the next n live tickets, skipping those
/// whose waiter timed out (the `cancelled` bitmap), and wakes the sleepers; it never waits for
/// anyone, so a waiter killed at any point cannot hang a notifier.
struct condition_state {
  static constexpr std::uint32_t capacity = 4096;  // outstanding tickets tracked exactly
  std::atomic<std::uint32_t> notified{0};          // futex word
  std::atomic<std::uint32_t> next_ticket{0};
  std::atomic<std::uint64_t> cancelled[capacity / 64] = {};

  [[nodiscard]] bool is_cancelled(std::uint32_t t) const noexcept {
    return ((cancelled[(t % capacity) / 64].load(std::memory_order_relaxed) >> (t % 64)) & 1u) != 0;
  }
  void set_cancelled(std::uint32_t t, bool on) noexcept {
    auto& w = cancelled[(t % capacity) / 64];
    const std::uint64_t bit = std::uint64_t{1} << (t % 64);
    w.store(
        on ? (w.load(std::memory_order_relaxed) | bit) : (w.load(std::memory_order_relaxed) & ~bit),
        std::memory_order_relaxed);
  }
};

/// A condition variable (Python: multiprocessing.Condition) over a Lock or an RLock.
template <class Backend>
class basic_condition : public lockable_mixin<basic_condition<Backend>> {
 public:
  using lock_type = std::variant<basic_rlock<Backend>, basic_lock<Backend>>;

  /// Over a new RLock (Python: Condition()).
  basic_condition() : basic_condition(basic_rlock<Backend>()) {}
  /// Over `lock` (Python: Condition(lock)); the handle shares it.
  explicit basic_condition(basic_lock<Backend> lock)
      : basic_condition(lock_type(std::move(lock))) {}
  explicit basic_condition(basic_rlock<Backend> lock)
      : basic_condition(lock_type(std::move(lock))) {}

  /// Python: Condition.acquire(block=True, timeout=None) - the underlying lock's.
  bool acquire(bool block = true, Timeout timeout = {}) {
    return std::visit([&](auto& l) { return l.acquire(block, timeout); }, lock_);
  }
  /// Python: Condition.release().
  void release() {
    std::visit([](auto& l) { l.release(); }, lock_);
  }
  // lock(), unlock(), try_lock(), try_lock_for(), try_lock_until(): the lock's, through
  // lockable_mixin (std::unique_lock<Condition> is Python's `with cond:`).

  /// Releases the lock (an RLock fully), waits until notified or the timeout passes, and takes the
  /// lock back (an RLock at its former depth) before returning.
  /// Python: Condition.wait(timeout=None).
  /// @returns true when notified, false when the timeout passed first. Spurious futex wakeups are
  ///   never visible: true means a notify() or notify_all() chose this waiter. (Exception: with
  ///   more than 4096 waiters at once, the oldest is woken early - a documented spurious wakeup.)
  /// @throws ProcessError when the calling thread does not hold the lock.
  /// Memory ordering: the lock's (everything the notifier did under the lock is visible).
  /// Peer death: a notifier or waiter dying does not hang anyone (a waiter that dies while
  ///   waiting may absorb one notify(1)); a holder dying with the lock is recovered as for Lock.
  bool wait(Timeout timeout = {}) { return wait_until_(mono_deadline(timeout)); }

  /// Waits until `pred()` is true, re-checking after each wakeup, up to `timeout` in total.
  /// Python: Condition.wait_for(predicate, timeout=None).
  /// @returns the last value of pred(). @throws ProcessError as wait().
  template <class Pred>
  bool wait_for(Pred pred, Timeout timeout = {}) {
    const mono_deadline until(timeout);
    bool result = static_cast<bool>(pred());
    while (!result) {
      if (until.expired()) break;
      wait_until_(until);
      result = static_cast<bool>(pred());
    }
    return result;
  }

  /// Wakes up to `n` of the threads waiting now. Python: Condition.notify(n=1).
  /// Never blocks. @throws ProcessError when the calling thread does not hold the lock.
  void notify(int n = 1) {
    if (!is_mine()) throw ProcessError("Condition.notify(): cannot notify on un-acquired lock");
    auto& s = *state_;
    std::uint32_t at = s.notified.load(std::memory_order_relaxed);
    const std::uint32_t end = s.next_ticket.load(std::memory_order_relaxed);
    const std::uint32_t start = at;
    int woken = 0;
    while (woken < n && at != end) {
      if (s.is_cancelled(at)) {
        s.set_cancelled(at, false);
      } else {
        ++woken;
      }
      ++at;
    }
    if (at == start) return;
    s.notified.store(at, std::memory_order_release);
    if (woken > 0) futex_wake(s.notified, INT_MAX, Backend::shared);
  }
  /// Wakes every waiting thread. Python: Condition.notify_all().
  void notify_all() { notify(INT_MAX); }

  /// The lock (a handle sharing it).
  [[nodiscard]] const lock_type& get_lock() const noexcept { return lock_; }
  /// Holder-death reporting of the underlying lock (see Lock::owner_died()).
  [[nodiscard]] bool owner_died() const {
    return std::visit([](const auto& l) { return l.owner_died(); }, lock_);
  }
  [[nodiscard]] std::uint64_t recoveries() const {
    return std::visit([](const auto& l) { return l.recoveries(); }, lock_);
  }

  void save(serialize::Writer& out) const {
    out.save(static_cast<std::uint8_t>(lock_.index()));
    std::visit([&](const auto& l) { l.save(out); }, lock_);
    state_.save(out);
  }
  static basic_condition load(serialize::Reader& in) {
    const auto index = in.load<std::uint8_t>();
    if (index > 1) serialize::Reader::fail("Condition: bad lock kind " + std::to_string(index));
    lock_type l = index == 0 ? lock_type(basic_rlock<Backend>::load(in))
                             : lock_type(basic_lock<Backend>::load(in));
    return basic_condition(std::move(l), shared_object<condition_state>::load(in, "Condition"));
  }

 private:
  explicit basic_condition(lock_type l)
      : lock_(std::move(l)), state_(Backend::template make<condition_state>("Condition")) {}
  basic_condition(lock_type l, typename Backend::template holder<condition_state> s)
      : lock_(std::move(l)), state_(std::move(s)) {}

  [[nodiscard]] bool is_mine() const {
    return std::visit([](const auto& l) { return l.is_mine(); }, lock_);
  }

  bool wait_until_(const mono_deadline& until) {
    if (!is_mine()) throw ProcessError("Condition.wait(): cannot wait on un-acquired lock");
    auto& s = *state_;
    std::uint32_t t = s.next_ticket.load(std::memory_order_relaxed);
    if (t - s.notified.load(std::memory_order_relaxed) >= condition_state::capacity) {
      // Too many waiters to track: wake the oldest early (documented spurious wakeup).
      const std::uint32_t oldest = s.notified.load(std::memory_order_relaxed);
      s.set_cancelled(oldest, false);
      s.notified.store(oldest + 1, std::memory_order_release);
      futex_wake(s.notified, INT_MAX, Backend::shared);
    }
    s.next_ticket.store(t + 1, std::memory_order_relaxed);
    const std::uint32_t saved = std::visit([](auto& l) { return l.release_save(); }, lock_);
    bool notified = false;
    for (;;) {
      const std::uint32_t n = s.notified.load(std::memory_order_acquire);
      if (static_cast<std::int32_t>(n - t) > 0) {
        notified = true;
        break;
      }
      if (futex_wait(s.notified, n, until, Backend::shared) == futex_result::timed_out) break;
    }
    std::visit([saved](auto& l) { l.acquire_restore(saved); }, lock_);
    if (!notified) {
      if (static_cast<std::int32_t>(s.notified.load(std::memory_order_relaxed) - t) > 0) {
        notified = true;  // notified while we were taking the lock back
      } else {
        s.set_cancelled(t, true);
      }
    }
    return notified;
  }

  lock_type lock_;
  typename Backend::template holder<condition_state> state_;
};

// --- Event ---------------------------------------------------------------------------------------

struct event_state {
  std::atomic<std::uint32_t> flag{0};  // futex word
  std::atomic<std::uint32_t> waiters{0};
};

/// A flag processes wait for (Python: multiprocessing.Event).
template <class Backend>
class basic_event {
 public:
  basic_event() : state_(Backend::template make<event_state>("Event")) {}

  /// Python: Event.is_set().
  [[nodiscard]] bool is_set() const noexcept {
    return state_->flag.load(std::memory_order_acquire) != 0;
  }
  /// Sets the flag and wakes every waiter. Python: Event.set().
  /// Memory ordering: release; a wait() returning true sees what preceded set().
  void set() noexcept {
    auto& s = *state_;
    if (s.flag.exchange(1, std::memory_order_seq_cst) == 0 &&
        s.waiters.load(std::memory_order_seq_cst) != 0) {
      futex_wake(s.flag, INT_MAX, Backend::shared);
    }
  }
  /// Python: Event.clear().
  void clear() noexcept { state_->flag.store(0, std::memory_order_release); }

  /// Waits until the flag is set or the timeout passes. Python: Event.wait(timeout=None).
  /// @returns the flag when returning: false only when the timeout passed with it clear.
  /// Memory ordering: acquire. Peer death: a setter that dies never sets; use a timeout.
  bool wait(Timeout timeout = {}) {
    auto& s = *state_;
    if (s.flag.load(std::memory_order_acquire) != 0) return true;
    const mono_deadline until(timeout);
    // A set() that comes within a few microseconds (a peer answering) is caught by spinning: no
    // futex sleep here, no wake-up syscall there. Bounded in time, so a long wait costs nothing.
    const auto spin_until = std::chrono::steady_clock::now() + event_spin;
    if (timeout.forever() || *timeout.get() >= event_spin) {
      do {
        for (int i = 0; i < 64; ++i) {
          if (s.flag.load(std::memory_order_acquire) != 0) return true;
          cpu_relax();
        }
      } while (std::chrono::steady_clock::now() < spin_until);
    }
    s.waiters.fetch_add(1, std::memory_order_seq_cst);
    while (s.flag.load(std::memory_order_seq_cst) == 0) {
      if (futex_wait(s.flag, 0, until, Backend::shared) == futex_result::timed_out) break;
    }
    s.waiters.fetch_sub(1, std::memory_order_relaxed);
    return s.flag.load(std::memory_order_acquire) != 0;
  }

  /// How long wait() spins before sleeping.
  static constexpr std::chrono::microseconds event_spin{20};

  void save(serialize::Writer& out) const { state_.save(out); }
  static basic_event load(serialize::Reader& in) {
    return basic_event(shared_object<event_state>::load(in, "Event"));
  }

 private:
  explicit basic_event(typename Backend::template holder<event_state> s) : state_(std::move(s)) {}
  typename Backend::template holder<event_state> state_;
};

// --- Barrier -------------------------------------------------------------------------------------

struct barrier_state {
  barrier_state(std::uint32_t p, std::int64_t t) : parties(p), timeout_ns(t) {}
  lock_word lock;
  std::atomic<std::uint32_t> epoch{0};  // futex word: bumped on every release, break and reset
  std::atomic<std::uint32_t> generation{0};
  std::atomic<std::uint32_t> count{0};
  std::atomic<std::uint32_t> broken{0};
  std::atomic<std::uint64_t> aborted{0};  // bit g % 64: generation g ended broken
  std::uint32_t parties;
  std::int64_t timeout_ns;  // default timeout, -1: none
};

/// A barrier for a fixed number of parties (Python: multiprocessing.Barrier).
template <class Backend>
class basic_barrier {
 public:
  /// Python: Barrier(parties, action=None, timeout=None).
  /// `action` runs once per cycle, in the last party to arrive, before anyone is released. Under
  /// spawn/forkserver it must be a function pointer or a captureless lambda (it crosses exec as a
  /// code reference); under fork any callable works.
  /// @throws ValueError when parties < 1.
  explicit basic_barrier(int parties, Timeout timeout = {})
      : basic_barrier(parties, nullptr, timeout) {}
  template <class F>
  requires std::is_invocable_v<F&> || std::is_null_pointer_v<F> basic_barrier(int parties, F action,
                                                                              Timeout timeout = {})
      : state_(Backend::template make<barrier_state>("Barrier", checked(parties), to_ns(timeout))) {
    if constexpr (!std::is_null_pointer_v<F>) {
      if constexpr (is_function_pointer_v<F>) {
        action_addr_ = code_address(action);
      } else if constexpr (std::is_class_v<F> && std::is_empty_v<F> &&
                           std::is_convertible_v<F, void (*)()>) {
        action_addr_ = code_address(static_cast<void (*)()>(action));
      }
      action_ = std::function<void()>(std::move(action));
    }
  }

  /// Waits until all parties have called wait(). Python: Barrier.wait(timeout=None).
  /// @param timeout overrides the constructor's default when given.
  /// @returns this party's arrival index, 0 .. parties()-1 (the last arrival gets parties()-1).
  /// @throws BrokenBarrierError when the barrier is or becomes broken: abort(), reset() while
  ///   waiting, a timeout (which breaks it for everyone) or an exception from the action (which
  ///   then propagates from the last party's wait instead).
  /// Memory ordering: everything each party did before wait() is visible to all after it.
  /// Peer death: a party that dies never arrives; waiters with a timeout break the barrier.
  int wait(std::optional<Timeout> timeout = std::nullopt) {
    auto& s = *state_;
    const mono_deadline until(timeout ? *timeout : default_timeout());
    lock_();
    if (s.broken.load(std::memory_order_relaxed) != 0) {
      unlock_();
      throw BrokenBarrierError("Barrier.wait(): the barrier is broken");
    }
    const std::uint32_t g = s.generation.load(std::memory_order_relaxed);
    const std::uint32_t index = s.count.fetch_add(1, std::memory_order_relaxed);
    if (index + 1 == s.parties) {
      if (action_) {
        try {
          action_();
        } catch (...) {
          break_(g);
          unlock_();
          throw;
        }
      }
      next_generation_(g, false);
      unlock_();
      return static_cast<int>(index);
    }
    unlock_();
    for (;;) {
      const std::uint32_t e = s.epoch.load(std::memory_order_acquire);
      if (const int r = outcome_(g, index); r >= 0) return r;
      if (futex_wait(s.epoch, e, until, Backend::shared) == futex_result::timed_out) {
        lock_();
        if (s.generation.load(std::memory_order_relaxed) == g &&
            s.broken.load(std::memory_order_relaxed) == 0) {
          break_(g);
        }
        unlock_();
        if (const int r = outcome_(g, index); r >= 0) return r;
        throw BrokenBarrierError("Barrier.wait(): timed out, the barrier is broken");
      }
    }
  }

  /// Returns the barrier to its initial state; current waiters get BrokenBarrierError.
  /// Python: Barrier.reset().
  void reset() {
    auto& s = *state_;
    lock_();
    const std::uint32_t g = s.generation.load(std::memory_order_relaxed);
    if (s.broken.load(std::memory_order_relaxed) != 0) {
      s.broken.store(0, std::memory_order_relaxed);
      next_generation_(g, true);
    } else if (s.count.load(std::memory_order_relaxed) > 0) {
      next_generation_(g, true);
    }
    unlock_();
  }
  /// Puts the barrier into the broken state: waiters (current and future, until reset()) get
  /// BrokenBarrierError. Python: Barrier.abort().
  void abort() {
    lock_();
    break_(state_->generation.load(std::memory_order_relaxed));
    unlock_();
  }

  /// Python: Barrier.parties.
  [[nodiscard]] int parties() const noexcept { return static_cast<int>(state_->parties); }
  /// The number of parties currently waiting. Python: Barrier.n_waiting.
  [[nodiscard]] int n_waiting() const noexcept {
    return static_cast<int>(state_->count.load(std::memory_order_relaxed));
  }
  /// Python: Barrier.broken.
  [[nodiscard]] bool broken() const noexcept {
    return state_->broken.load(std::memory_order_relaxed) != 0;
  }

  void save(serialize::Writer& out) const {
    if (action_ && !action_addr_) {
      throw SerializationError(
          "Barrier: its action is not a function pointer or captureless lambda and cannot cross "
          "exec (use fork, or pass a plain function)");
    }
    state_.save(out);
    out.save(static_cast<std::uint8_t>(action_addr_ ? 1 : 0));
    if (action_addr_) out.save(make_code_ref(*action_addr_));
  }
  static basic_barrier load(serialize::Reader& in) {
    basic_barrier b(shared_object<barrier_state>::load(in, "Barrier"));
    if (in.load<std::uint8_t>() != 0) {
      const std::uintptr_t addr = resolve_code_ref(in.load<code_ref>());
      void (*fn)() = nullptr;
      std::memcpy(&fn, &addr, sizeof fn);
      b.action_ = fn;
      b.action_addr_ = addr;
    }
    return b;
  }

 private:
  explicit basic_barrier(typename Backend::template holder<barrier_state> s)
      : state_(std::move(s)) {}
  static std::uint32_t checked(int parties) {
    if (parties < 1) {
      throw ValueError("Barrier: parties must be >= 1, not " + std::to_string(parties));
    }
    return static_cast<std::uint32_t>(parties);
  }
  static std::int64_t to_ns(const Timeout& t) { return t.get() ? t.get()->count() : -1; }
  [[nodiscard]] Timeout default_timeout() const {
    const std::int64_t ns = state_->timeout_ns;
    return ns < 0 ? Timeout{} : Timeout(std::chrono::nanoseconds(ns));
  }
  void lock_() { state_->lock.template acquire<Backend>(true, mono_deadline{}); }
  void unlock_() { state_->lock.template release<Backend>(); }

  // Under the lock. Ends generation g, broken or not, and wakes every waiter.
  void next_generation_(std::uint32_t g, bool aborted) {
    auto& s = *state_;
    const std::uint64_t bit = std::uint64_t{1} << (g % 64);
    const std::uint64_t next_bit = std::uint64_t{1} << ((g + 1) % 64);
    std::uint64_t mask = s.aborted.load(std::memory_order_relaxed);
    mask = aborted ? (mask | bit) : (mask & ~bit);
    s.aborted.store(mask & ~next_bit, std::memory_order_relaxed);
    s.count.store(0, std::memory_order_relaxed);
    s.generation.store(g + 1, std::memory_order_relaxed);
    s.epoch.fetch_add(1, std::memory_order_release);
    futex_wake(s.epoch, INT_MAX, Backend::shared);
  }
  // Under the lock.
  void break_(std::uint32_t g) {
    auto& s = *state_;
    s.aborted.fetch_or(std::uint64_t{1} << (g % 64), std::memory_order_relaxed);
    s.broken.store(1, std::memory_order_relaxed);
    s.count.store(0, std::memory_order_relaxed);
    s.epoch.fetch_add(1, std::memory_order_release);
    futex_wake(s.epoch, INT_MAX, Backend::shared);
  }
  // The waiter's result once generation g has ended: index, or throws; -1 while g still runs.
  int outcome_(std::uint32_t g, std::uint32_t index) {
    auto& s = *state_;
    if (s.generation.load(std::memory_order_acquire) != g) {
      if ((s.aborted.load(std::memory_order_relaxed) >> (g % 64)) & 1u) {
        throw BrokenBarrierError("Barrier.wait(): the barrier was reset or broken while waiting");
      }
      return static_cast<int>(index);
    }
    if (s.broken.load(std::memory_order_acquire) != 0) {
      throw BrokenBarrierError("Barrier.wait(): the barrier was broken while waiting");
    }
    return -1;
  }

  typename Backend::template holder<barrier_state> state_;
  std::function<void()> action_;
  std::optional<std::uintptr_t> action_addr_;
};

template <class T>
struct is_process_sync_handle : std::false_type {};
template <>
struct is_process_sync_handle<basic_lock<process_backend>> : std::true_type {};
template <>
struct is_process_sync_handle<basic_rlock<process_backend>> : std::true_type {};
template <bool B>
struct is_process_sync_handle<basic_semaphore<process_backend, B>> : std::true_type {};
template <>
struct is_process_sync_handle<basic_condition<process_backend>> : std::true_type {};
template <>
struct is_process_sync_handle<basic_event<process_backend>> : std::true_type {};
template <>
struct is_process_sync_handle<basic_barrier<process_backend>> : std::true_type {};

}  // namespace detail

/// Process handles cross exec: the memfd of their state travels beside the bytes.
template <class T>
struct serializer<T, std::enable_if_t<detail::is_process_sync_handle<T>::value>> {
  static void save(serialize::Writer& out, const T& handle) { handle.save(out); }
  static T load(serialize::Reader& in) { return T::load(in); }
};

using Lock = detail::basic_lock<detail::process_backend>;
using RLock = detail::basic_rlock<detail::process_backend>;
using Semaphore = detail::basic_semaphore<detail::process_backend, false>;
using BoundedSemaphore = detail::basic_semaphore<detail::process_backend, true>;
using Condition = detail::basic_condition<detail::process_backend>;
using Event = detail::basic_event<detail::process_backend>;
using Barrier = detail::basic_barrier<detail::process_backend>;

}  // namespace multiprocessing

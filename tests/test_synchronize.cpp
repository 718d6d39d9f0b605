// SPDX-License-Identifier: MIT
// Tests for multiprocessing/synchronize.hpp and the thread twins of dummy.hpp. Most bodies are
// templates over a "world" (processes started through ForkContext or SpawnContext, or std::threads
// with the dummy twins) and run once per world, tagged [fork], [spawn] or [thread]. The
// holder-death tests SIGKILL real children. Every blocking call has a finite timeout; no sleep is
// used for synchronization.
#include <signal.h>  // NOLINT(modernize-deprecated-headers): sigaction is POSIX
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <concepts>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::elapsed_since;
using clk = std::chrono::steady_clock;

namespace {

/// A few ints in shared memory that cross every start method (test helper).
struct SharedInts {
  static constexpr int size = 16;
  struct block {
    std::array<std::atomic<long>, size> v{};
    long plain = 0;  // updated only under a lock
  };
  mp::detail::shared_object<block> obj = mp::detail::shared_object<block>::create("test-ints", 0);
  std::atomic<long>& operator[](int i) const { return obj->v[static_cast<std::size_t>(i)]; }
  long& plain() const { return obj->plain; }
};

}  // namespace

template <>
struct mp::serializer<SharedInts> {
  static void save(serialize::Writer& out, const SharedInts& s) { s.obj.save(out); }
  static SharedInts load(serialize::Reader& in) {
    SharedInts s{mp::detail::shared_object<SharedInts::block>::load(in, "test-ints")};
    return s;
  }
};

namespace {

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(what);
}

/// Processes: children run a function pointer under the context Ctx; failure = exit code != 0.
template <class Ctx>
struct Procs : test_support::process_workers<Ctx> {
  using Lock = mp::Lock;
  using RLock = mp::RLock;
  using Semaphore = mp::Semaphore;
  using BoundedSemaphore = mp::BoundedSemaphore;
  using Condition = mp::Condition;
  using Event = mp::Event;
  using Barrier = mp::Barrier;
};

/// Threads with the dummy twins; failure = an exception escaping the function.
struct Threads : test_support::thread_workers {
  using Lock = mp::dummy::Lock;
  using RLock = mp::dummy::RLock;
  using Semaphore = mp::dummy::Semaphore;
  using BoundedSemaphore = mp::dummy::BoundedSemaphore;
  using Condition = mp::dummy::Condition;
  using Event = mp::dummy::Event;
  using Barrier = mp::dummy::Barrier;
};

#define SYNC_CASE(name, tags, body)                                               \
  TEST_CASE(name " (fork)", tags "[fork]") { body<Procs<mp::ForkContext>>(); }    \
  TEST_CASE(name " (spawn)", tags "[spawn]") { body<Procs<mp::SpawnContext>>(); } \
  TEST_CASE(name " (thread)", tags "[thread]") { body<Threads>(); }

template <class Fn>
void check_times_out(Fn fn, std::chrono::milliseconds at_least) {
  const auto t0 = clk::now();
  CHECK_FALSE(fn());
  const auto took = elapsed_since(t0);
  CHECK(took >= at_least);
  CHECK(took < at_least + 2s);
}

// --- Lock ----------------------------------------------------------------------------------------

template <class L, class E>
void hold_until(L lock, E held, E go) {
  require(lock.acquire(true, 10s), "acquire");
  held.set();
  require(go.wait(30s), "go");
  lock.release();
}

template <class L>
void release_foreign(L lock) {
  lock.release();  // Python's Lock may be released by anyone
}

template <class W>
void lock_basics() {
  typename W::Lock l;
  CHECK(l.acquire());
  CHECK_FALSE(l.acquire(false));
  check_times_out([&] { return l.acquire(true, 200ms); }, 200ms);
  check_times_out([&] { return l.acquire(true, -1s); }, 0ms);
  l.release();
  CHECK_THROWS_AS(l.release(), mp::ValueError);
  CHECK_THROWS_WITH(l.release(), Catch::Contains("released too many times"));
  {
    std::lock_guard<typename W::Lock> g(l);
    CHECK_FALSE(l.try_lock());
  }
  {
    std::unique_lock<typename W::Lock> u(l, std::defer_lock);
    CHECK(u.try_lock_for(100ms));
    typename W::Lock other, third;
    std::scoped_lock both(other, third);
    CHECK_FALSE(third.try_lock());
  }
  CHECK(l.try_lock_until(clk::now() + 100ms));
  l.unlock();
  CHECK(l.recoveries() == 0);
  CHECK_FALSE(l.owner_died());
}

template <class W>
void lock_across() {
  typename W::Lock l;
  typename W::Event held, go;
  auto w = W::start(&hold_until<typename W::Lock, typename W::Event>, l, held, go);
  REQUIRE(held.wait(30s));
  CHECK_FALSE(l.acquire(false));
  check_times_out([&] { return l.acquire(true, 200ms); }, 200ms);
  go.set();
  const auto t0 = clk::now();
  CHECK(l.acquire(true, 10s));
  CHECK(elapsed_since(t0) < 5s);
  CHECK(w.join());
  // Released by another process or thread.
  auto r = W::start(&release_foreign<typename W::Lock>, l);
  CHECK(r.join());
  CHECK(l.acquire(false));
  l.release();
}

template <class L>
void add_many(L lock, SharedInts ints, int n) {
  for (int i = 0; i < n; ++i) {
    std::lock_guard<L> g(lock);
    ++ints.plain();
  }
}

template <class W>
void lock_counter() {
  typename W::Lock l;
  SharedInts ints;
  std::vector<typename W::worker> ws;
  for (int i = 0; i < 4; ++i) ws.push_back(W::start(&add_many<typename W::Lock>, l, ints, 10000));
  for (auto& w : ws) CHECK(w.join());
  CHECK(ints.plain() == 40000);
}

SYNC_CASE("Lock: acquire, timeouts, release errors, std vocabulary", "[synchronize]", lock_basics)
SYNC_CASE("Lock: held by another party, released by anyone", "[synchronize]", lock_across)
SYNC_CASE("Lock: 4 parties x 10000 increments reach 40000", "[synchronize]", lock_counter)

// --- RLock ---------------------------------------------------------------------------------------

template <class L>
void rlock_foreign(L lock, SharedInts out) {
  out[0] = lock.acquire(false) ? 1 : 2;
  try {
    lock.release();
    out[1] = 1;
  } catch (const mp::ProcessError&) {
    out[1] = 2;
  }
}

template <class W>
void rlock_basics() {
  typename W::RLock r;
  CHECK(r.acquire());
  CHECK(r.acquire(false));
  CHECK(r.acquire(true, 1s));
  CHECK(r.count() == 3);
  SharedInts out;
  auto w = W::start(&rlock_foreign<typename W::RLock>, r, out);
  CHECK(w.join());
  CHECK(out[0] == 2);  // held by us
  CHECK(out[1] == 2);  // not theirs to release
  r.release();
  r.release();
  CHECK(r.is_mine());
  r.release();
  CHECK_FALSE(r.is_mine());
  CHECK_THROWS_AS(r.release(), mp::ProcessError);
  CHECK_THROWS_WITH(r.release(), Catch::Contains("cannot release un-acquired lock"));
  {
    std::scoped_lock g(r);
    std::lock_guard<typename W::RLock> again(r);
    CHECK(r.count() == 2);
  }
  CHECK(r.count() == 0);
}

SYNC_CASE("RLock: recursion, ownership, release by non-owner", "[synchronize]", rlock_basics)

// --- the std vocabulary --------------------------------------------------------------------------

/// The std named requirements Lockable and TimedLockable (what std::unique_lock's timed
/// constructors, std::scoped_lock and std::lock need).
template <class L>
concept timed_lockable = requires(L& l) {
  l.lock();
  l.unlock();
  { l.try_lock() } -> std::convertible_to<bool>;
  { l.try_lock_for(1ms) } -> std::convertible_to<bool>;
  { l.try_lock_until(clk::now() + 1ms) } -> std::convertible_to<bool>;
  { l.try_lock_until(std::chrono::system_clock::now() + 1ms) } -> std::convertible_to<bool>;
};
static_assert(timed_lockable<mp::Lock> && timed_lockable<mp::RLock> &&
              timed_lockable<mp::Semaphore> && timed_lockable<mp::BoundedSemaphore> &&
              timed_lockable<mp::Condition>);
static_assert(timed_lockable<mp::dummy::Lock> && timed_lockable<mp::dummy::RLock> &&
              timed_lockable<mp::dummy::Semaphore> && timed_lockable<mp::dummy::BoundedSemaphore> &&
              timed_lockable<mp::dummy::Condition>);
static_assert(timed_lockable<mp::Value<int>> && timed_lockable<mp::Value<int, mp::Lock>> &&
              timed_lockable<mp::Array<int>> && timed_lockable<mp::Array<int, mp::Lock>>);

template <class L, class R, class S, class C, class E>
void hold_all_until(L l, R r, S s, C c, E held, E go) {
  require(l.acquire(true, 10s) && r.acquire(true, 10s) && s.acquire(true, 10s) &&
              c.acquire(true, 10s),
          "acquire");
  held.set();
  require(go.wait(30s), "go");
  c.release();
  s.release();
  r.release();
  l.release();
}

template <class W>
void std_vocabulary_across() {
  typename W::Lock l;
  typename W::RLock r;
  typename W::BoundedSemaphore s(1);
  typename W::Condition c;
  typename W::Event held, go;
  auto w = W::start(&hold_all_until<typename W::Lock, typename W::RLock,
                                    typename W::BoundedSemaphore, typename W::Condition,
                                    typename W::Event>,
                    l, r, s, c, held, go);
  REQUIRE(held.wait(30s));
  auto times_out = [](auto& lockable) {
    const auto t0 = clk::now();
    std::unique_lock u(lockable, 100ms);  // try_lock_for
    const auto took = elapsed_since(t0);
    CHECK_FALSE(u.owns_lock());
    CHECK(took >= 100ms);
    CHECK(took < 2100ms);
    std::unique_lock v(lockable, std::chrono::system_clock::now() + 50ms);  // try_lock_until
    CHECK_FALSE(v.owns_lock());
    std::unique_lock t(lockable, std::try_to_lock);
    CHECK_FALSE(t.owns_lock());
  };
  times_out(l);
  times_out(r);
  times_out(s);
  times_out(c);
  go.set();
  {
    std::unique_lock ul(l, 30s);
    std::unique_lock ur(r, 30s);
    std::unique_lock us(s, 30s);
    std::unique_lock uc(c, 30s);
    CHECK((ul.owns_lock() && ur.owns_lock() && us.owns_lock() && uc.owns_lock()));
  }
  CHECK(w.join());
  std::scoped_lock all(l, r, s, c);  // std::lock's deadlock avoidance over try_lock
  CHECK(l.is_mine());
}

SYNC_CASE("Lock/RLock/BoundedSemaphore/Condition: std::unique_lock timeouts against another party",
          "[synchronize]", std_vocabulary_across)

// --- Semaphore -----------------------------------------------------------------------------------

template <class S, class E>
void sem_take(S sem, E took, int n) {
  for (int i = 0; i < n; ++i) require(sem.acquire(true, 30s), "acquire");
  took.set();
}

template <class W>
void semaphore_basics() {
  typename W::Semaphore s(2);
  CHECK(s.get_value() == 2);
  CHECK(s.acquire());
  CHECK(s.acquire(false));
  CHECK(s.get_value() == 0);
  CHECK_FALSE(s.acquire(false));
  check_times_out([&] { return s.acquire(true, 200ms); }, 200ms);
  typename W::Event took;
  auto w = W::start(&sem_take<typename W::Semaphore, typename W::Event>, s, took, 2);
  CHECK_FALSE(took.wait(100ms));
  s.release();
  s.release();
  CHECK(took.wait(30s));
  CHECK(w.join());
  CHECK(s.get_value() == 0);
  s.release();
  s.release();
  s.release();  // a plain Semaphore may exceed its initial value
  CHECK(s.get_value() == 3);
  CHECK_THROWS_AS(typename W::Semaphore(-1), mp::ValueError);

  typename W::BoundedSemaphore b(2);
  CHECK_THROWS_AS(b.release(), mp::ValueError);
  CHECK(b.acquire());
  b.release();
  CHECK_THROWS_WITH(b.release(), Catch::Contains("released too many times"));
  CHECK(b.get_value() == 2);
  {
    std::lock_guard<typename W::BoundedSemaphore> g(b);
    CHECK(b.get_value() == 1);
  }
}

SYNC_CASE("Semaphore: counting, timeouts, BoundedSemaphore over-release", "[synchronize]",
          semaphore_basics)

// --- Event ---------------------------------------------------------------------------------------

template <class E>
void event_echo(E in, E out) {
  require(in.wait(30s), "in");
  out.set();
}

template <class W>
void event_basics() {
  typename W::Event e;
  CHECK_FALSE(e.is_set());
  check_times_out([&] { return e.wait(200ms); }, 200ms);
  check_times_out([&] { return e.wait(-5ms); }, 0ms);
  e.set();
  CHECK(e.is_set());
  CHECK(e.wait());
  CHECK(e.wait(0s));
  e.clear();
  CHECK_FALSE(e.wait(10ms));
  typename W::Event in, out;
  auto w = W::start(&event_echo<typename W::Event>, in, out);
  CHECK_FALSE(out.wait(50ms));
  in.set();
  CHECK(out.wait(30s));
  CHECK(w.join());
}

SYNC_CASE("Event: set, clear, wait with and without timeout", "[synchronize]", event_basics)

// --- Condition -----------------------------------------------------------------------------------

template <class C, class S>
void cond_waiter(C c, S ready, S woke, SharedInts out, int slot) {
  require(c.acquire(true, 30s), "acquire");
  ready.release();
  out[slot] = c.wait(30s) ? 1 : 2;
  c.release();
  woke.release();
}

template <class W>
void condition_basics() {
  typename W::Condition c;
  CHECK_THROWS_AS(c.wait(10ms), mp::ProcessError);
  CHECK_THROWS_WITH(c.wait(10ms), Catch::Contains("un-acquired lock"));
  CHECK_THROWS_AS(c.notify(), mp::ProcessError);
  CHECK(c.acquire());
  CHECK(c.acquire());  // an RLock by default
  check_times_out([&] { return c.wait(200ms); }, 200ms);
  CHECK(std::get<typename W::RLock>(c.get_lock()).count() == 2);  // restored depth
  check_times_out([&] { return c.wait_for([] { return false; }, 200ms); }, 200ms);
  CHECK(c.wait_for([] { return true; }, 0s));
  c.notify_all();  // nobody waits: no effect
  c.release();
  c.release();

  typename W::Lock plain;
  typename W::Condition over_lock(plain);
  {
    std::unique_lock<typename W::Condition> g(over_lock);
    CHECK(plain.is_mine());
    check_times_out([&] { return over_lock.wait(100ms); }, 100ms);
    CHECK(plain.is_mine());
  }
  CHECK_FALSE(plain.is_mine());
}

template <class W>
void condition_notify_n() {
  typename W::Condition c;
  typename W::Semaphore ready(0), woke(0);
  SharedInts out;
  std::vector<typename W::worker> ws;
  for (int i = 0; i < 3; ++i) {
    ws.push_back(W::start(&cond_waiter<typename W::Condition, typename W::Semaphore>, c, ready,
                          woke, out, i));
  }
  for (int i = 0; i < 3; ++i) REQUIRE(ready.acquire(true, 30s));
  REQUIRE(c.acquire(true, 10s));  // every waiter has released it inside wait()
  c.notify(2);
  c.release();
  CHECK(woke.acquire(true, 30s));
  CHECK(woke.acquire(true, 30s));
  CHECK_FALSE(woke.acquire(true, 300ms));  // notify(2) woke exactly two
  REQUIRE(c.acquire(true, 10s));
  c.notify_all();
  c.release();
  CHECK(woke.acquire(true, 30s));
  for (auto& w : ws) CHECK(w.join());
  for (int i = 0; i < 3; ++i) CHECK(out[i] == 1);
}

template <class C, class E>
void cond_setter(C c, E flag) {
  require(c.acquire(true, 30s), "acquire");
  flag.set();
  c.notify_all();
  c.release();
}

template <class W>
void condition_wait_for() {
  typename W::Condition c;
  typename W::Event flag;
  REQUIRE(c.acquire(true, 10s));
  auto w = W::start(&cond_setter<typename W::Condition, typename W::Event>, c, flag);
  CHECK(c.wait_for([&] { return flag.is_set(); }, 30s));
  c.release();
  CHECK(w.join());
}

template <class W>
void condition_timeout_does_not_absorb_notify() {
  // A waiter that timed out must not swallow a later notify(1) meant for a live waiter.
  typename W::Condition c;
  typename W::Semaphore ready(0), woke(0);
  SharedInts out;
  REQUIRE(c.acquire(true, 10s));
  CHECK_FALSE(c.wait(50ms));  // our ticket is cancelled
  c.release();
  auto w =
      W::start(&cond_waiter<typename W::Condition, typename W::Semaphore>, c, ready, woke, out, 0);
  REQUIRE(ready.acquire(true, 30s));
  REQUIRE(c.acquire(true, 10s));
  c.notify(1);
  c.release();
  CHECK(woke.acquire(true, 30s));
  CHECK(w.join());
  CHECK(out[0] == 1);
}

SYNC_CASE("Condition: ownership errors, timeouts, RLock depth restored", "[synchronize]",
          condition_basics)
SYNC_CASE("Condition: notify(n) wakes exactly n, notify_all the rest", "[synchronize]",
          condition_notify_n)
SYNC_CASE("Condition: wait_for sees a predicate set by another party", "[synchronize]",
          condition_wait_for)
SYNC_CASE("Condition: a timed-out waiter does not absorb a notify", "[synchronize]",
          condition_timeout_does_not_absorb_notify)

// A bounded buffer in shared memory with two Conditions over one Lock (the seeds' producer and
// consumer): every item produced is consumed exactly once, nobody hangs.
inline constexpr int buffer_capacity = 4;
inline constexpr int items_per_producer = 2000;

template <class C>
void produce(C not_full, C not_empty, SharedInts buf, int base) {
  // buf[0] = count, buf[1] = head, buf[2..5] = ring, buf[8] = checksum of consumed items
  for (int i = 0; i < items_per_producer; ++i) {
    require(not_full.acquire(true, 30s), "acquire");
    require(not_full.wait_for([&] { return buf[0] < buffer_capacity; }, 30s), "not_full");
    const long tail = (buf[1] + buf[0]) % buffer_capacity;
    buf[2 + static_cast<int>(tail)] = base + i;
    ++buf[0];
    not_empty.notify();
    not_full.release();
  }
}

template <class C>
void consume(C not_full, C not_empty, SharedInts buf, int n) {
  for (int i = 0; i < n; ++i) {
    require(not_empty.acquire(true, 30s), "acquire");
    require(not_empty.wait_for([&] { return buf[0] > 0; }, 30s), "not_empty");
    const long item = buf[2 + static_cast<int>(buf[1].load())];
    buf[1] = (buf[1] + 1) % buffer_capacity;
    --buf[0];
    buf[8] += item;
    ++buf[9];
    not_full.notify();
    not_empty.release();
  }
}

template <class W>
void condition_producer_consumer() {
  typename W::Lock l;
  typename W::Condition not_full(l), not_empty(l);
  SharedInts buf;
  std::vector<typename W::worker> ws;
  ws.push_back(W::start(&produce<typename W::Condition>, not_full, not_empty, buf, 0));
  ws.push_back(W::start(&produce<typename W::Condition>, not_full, not_empty, buf, 100000));
  ws.push_back(
      W::start(&consume<typename W::Condition>, not_full, not_empty, buf, items_per_producer));
  consume(not_full, not_empty, buf, items_per_producer);
  for (auto& w : ws) CHECK(w.join());
  long expected = 0;
  for (int i = 0; i < items_per_producer; ++i) expected += i + 100000 + i;
  CHECK(buf[9] == 2 * items_per_producer);
  CHECK(buf[8] == expected);
  CHECK(buf[0] == 0);
}

SYNC_CASE("Condition: producers and consumers over two Conditions sharing a Lock", "[synchronize]",
          condition_producer_consumer)

// --- Barrier -------------------------------------------------------------------------------------

std::optional<SharedInts> g_action_ints;  // where barrier_action counts (set in every party)
void barrier_action() { ++(*g_action_ints)[15]; }

template <class B>
void barrier_party(B b, SharedInts out, int slot) {
  if (!g_action_ints) g_action_ints = out;  // a spawned child; threads and forks share the parent's
  for (int cycle = 0; cycle < 2; ++cycle) {
    const int i = b.wait(30s);
    require(i >= 0 && i < b.parties(), "index");
    out[slot * 2 + cycle] = i;
  }
}

template <class B>
void barrier_broken_party(B b, SharedInts out) {
  try {
    (void)b.wait(30s);
    out[0] = 1;
  } catch (const mp::BrokenBarrierError&) {
    out[0] = 2;
  }
}

template <class W>
void barrier_basics() {
  CHECK_THROWS_AS(typename W::Barrier(0), mp::ValueError);
  CHECK_THROWS_AS(typename W::Barrier(-2), mp::ValueError);
  SharedInts out;
  g_action_ints = out;
  typename W::Barrier b(3, &barrier_action);
  CHECK(b.parties() == 3);
  CHECK(b.n_waiting() == 0);
  CHECK_FALSE(b.broken());
  auto w1 = W::start(&barrier_party<typename W::Barrier>, b, out, 1);
  auto w2 = W::start(&barrier_party<typename W::Barrier>, b, out, 2);
  for (int cycle = 0; cycle < 2; ++cycle) out[cycle] = b.wait(30s);
  CHECK(w1.join());
  CHECK(w2.join());
  for (int cycle = 0; cycle < 2; ++cycle) {
    std::set<long> seen{out[cycle].load(), out[2 + cycle].load(), out[4 + cycle].load()};
    CHECK(seen == std::set<long>{0, 1, 2});
  }
  CHECK(out[15] == 2);  // the action ran once per cycle
}

template <class W>
void barrier_timeout_breaks() {
  typename W::Barrier b(3);
  SharedInts out;
  auto w = W::start(&barrier_broken_party<typename W::Barrier>, b, out);
  const auto t0 = clk::now();
  CHECK_THROWS_AS(b.wait(300ms), mp::BrokenBarrierError);
  const auto took = elapsed_since(t0);
  CHECK(took >= 300ms);
  CHECK(took < 2300ms);
  CHECK(w.join());
  CHECK(out[0] == 2);  // broken for everyone
  CHECK(b.broken());
  CHECK_THROWS_AS(b.wait(1s), mp::BrokenBarrierError);
  b.reset();
  CHECK_FALSE(b.broken());
  // The default timeout given at construction.
  typename W::Barrier d(2, nullptr, 200ms);
  check_times_out(
      [&] {
        try {
          (void)d.wait();
          return true;
        } catch (const mp::BrokenBarrierError&) {
          return false;
        }
      },
      200ms);
}

template <class W>
void barrier_abort_and_reset() {
  typename W::Barrier b(2);
  SharedInts out;
  auto w = W::start(&barrier_broken_party<typename W::Barrier>, b, out);
  for (int i = 0; i < 3000 && b.n_waiting() != 1; ++i) std::this_thread::sleep_for(1ms);  // poll
  CHECK(b.n_waiting() == 1);
  b.abort();
  CHECK(w.join());
  CHECK(out[0] == 2);
  CHECK(b.broken());
  b.reset();
  CHECK_FALSE(b.broken());
  auto w2 = W::start(&barrier_broken_party<typename W::Barrier>, b, out);
  for (int i = 0; i < 3000 && b.n_waiting() != 1; ++i) std::this_thread::sleep_for(1ms);  // poll
  b.reset();  // waiters of the current cycle are broken
  CHECK(w2.join());
  CHECK(out[0] == 2);
  CHECK_FALSE(b.broken());
  auto w3 = W::start(&barrier_broken_party<typename W::Barrier>, b, out);
  CHECK(b.wait(30s) >= 0);
  CHECK(w3.join());
  CHECK(out[0] == 1);
}

void throwing_action() { throw std::runtime_error("action failed"); }

template <class W>
void barrier_action_throws() {
  typename W::Barrier b(2, &throwing_action);
  SharedInts out;
  auto w = W::start(&barrier_broken_party<typename W::Barrier>, b, out);
  for (int i = 0; i < 3000 && b.n_waiting() != 1; ++i) std::this_thread::sleep_for(1ms);  // poll
  REQUIRE(b.n_waiting() == 1);
  CHECK_THROWS_WITH(b.wait(30s), "action failed");  // the last party runs the action
  CHECK(w.join());
  CHECK(out[0] == 2);  // the others see the barrier broken
  CHECK(b.broken());
}

SYNC_CASE("Barrier: indices, action once per cycle, parties", "[synchronize]", barrier_basics)
SYNC_CASE("Barrier: a timeout breaks it for everyone, reset() repairs", "[synchronize]",
          barrier_timeout_breaks)
SYNC_CASE("Barrier: abort() and reset() break the waiters", "[synchronize]",
          barrier_abort_and_reset)
SYNC_CASE("Barrier: an exception from the action breaks the barrier", "[synchronize]",
          barrier_action_throws)

// --- holder death (processes only) ---------------------------------------------------------------

template <class L>
void hold_and_hang(L lock, mp::Event held) {
  if (!lock.acquire(true, 10s)) ::_exit(3);
  held.set();
  for (;;) ::pause();
}

void barrier_wait_and_hang(mp::Barrier b) {
  (void)b.wait(30s);  // killed inside it
  for (;;) ::pause();
}

void cond_wait_and_hang(mp::Condition c, mp::Event ready) {
  if (!c.acquire(true, 10s)) ::_exit(3);
  ready.set();
  (void)c.wait();
  for (;;) ::pause();
}

template <class Ctx, class L>
void killed_holder() {
  const auto dev_shm_before = test_support::unexpected_dev_shm_entries();
  L lock;
  mp::Event held;
  Ctx ctx;
  auto p = ctx.Process(&hold_and_hang<L>, lock, held);
  p.start();
  REQUIRE(held.wait(30s));
  CHECK_FALSE(lock.acquire(false));
  CHECK(test_support::count_mappings(*p.pid(), "memfd:mp-") >= 2);  // the lock and the event...
  CHECK(test_support::count_mappings(*p.pid(), "/dev/shm/") == 0);  // ...never a named segment
  p.kill();
  const auto t0 = clk::now();
  CHECK(lock.acquire(true, 5s));
  CHECK(elapsed_since(t0) < 2s);
  CHECK(lock.owner_died());
  CHECK(lock.recoveries() == 1);
  lock.release();
  CHECK_FALSE(lock.owner_died());
  CHECK(lock.acquire(false));
  CHECK_FALSE(lock.owner_died());
  lock.release();
  CHECK(p.join(10s));
  CHECK(p.exitcode() == -SIGKILL);
  CHECK(test_support::unexpected_dev_shm_entries() == dev_shm_before);  // nothing left behind
}

TEMPLATE_TEST_CASE("Lock/RLock/Condition: a holder killed by SIGKILL is recovered",
                   "[synchronize][fork][spawn]", (Procs<mp::ForkContext>),
                   (Procs<mp::SpawnContext>)) {
  using Ctx = std::conditional_t<std::is_same_v<TestType, Procs<mp::ForkContext>>, mp::ForkContext,
                                 mp::SpawnContext>;
  SECTION("Lock") { killed_holder<Ctx, mp::Lock>(); }
  SECTION("RLock") { killed_holder<Ctx, mp::RLock>(); }
  SECTION("Condition") { killed_holder<Ctx, mp::Condition>(); }
  SECTION("Lock whose dead holder was already reaped") {
    mp::Lock lock;
    mp::Event held;
    Ctx ctx;
    auto p = ctx.Process(&hold_and_hang<mp::Lock>, lock, held);
    p.start();
    REQUIRE(held.wait(30s));
    p.kill();
    REQUIRE(p.join(10s));
    const auto t0 = clk::now();
    CHECK(lock.acquire(true, 5s));
    CHECK(elapsed_since(t0) < 1s);
    CHECK(lock.owner_died());
    lock.release();
    CHECK(lock.recoveries() == 1);
  }
  SECTION("Condition over a Lock: a killed waiter does not hang notify") {
    mp::Lock l;
    mp::Condition c(l);
    mp::Event ready;
    Ctx ctx;
    auto p = ctx.Process(&cond_wait_and_hang, c, ready);
    p.start();
    REQUIRE(ready.wait(30s));
    REQUIRE(c.acquire(true, 5s));  // the child is inside wait()
    c.release();
    p.kill();
    CHECK(p.join(10s));
    REQUIRE(c.acquire(true, 5s));
    c.notify();
    c.notify_all();
    check_times_out([&] { return c.wait(100ms); }, 100ms);
    c.release();
  }
  SECTION("Semaphore slot and Barrier party of a dead process: timeouts still fire") {
    mp::Semaphore s(1);
    mp::Event held;
    Ctx ctx;
    auto p = ctx.Process(&hold_and_hang<mp::Semaphore>, s, held);
    p.start();
    REQUIRE(held.wait(30s));
    p.kill();
    CHECK(p.join(10s));
    check_times_out([&] { return s.acquire(true, 200ms); }, 200ms);
    CHECK(s.get_value() == 0);  // the dead process's unit is not given back (documented)
  }
  SECTION("Barrier party killed inside wait(): it counts as arrived, timeouts break the rest") {
    mp::Barrier b(3);
    Ctx ctx;
    auto p = ctx.Process(&barrier_wait_and_hang, b);
    p.start();
    for (int i = 0; i < 3000 && b.n_waiting() != 1; ++i) std::this_thread::sleep_for(1ms);  // poll
    REQUIRE(b.n_waiting() == 1);
    p.kill();
    REQUIRE(p.join(10s));
    CHECK(b.n_waiting() == 1);  // it arrived before it died
    const auto t0 = clk::now();
    CHECK_THROWS_AS(b.wait(200ms), mp::BrokenBarrierError);  // the third party never comes
    const auto took = elapsed_since(t0);
    CHECK(took >= 200ms);
    CHECK(took < 2200ms);
    CHECK(b.broken());
    mp::Barrier two(2);
    auto q = ctx.Process(&barrier_wait_and_hang, two);
    q.start();
    for (int i = 0; i < 3000 && two.n_waiting() != 1; ++i) std::this_thread::sleep_for(1ms);  // poll
    REQUIRE(two.n_waiting() == 1);
    q.kill();
    REQUIRE(q.join(10s));
    CHECK(two.wait(5s) == 1);  // the dead party had arrived: this cycle completes
    CHECK_THROWS_AS(two.wait(100ms), mp::BrokenBarrierError);  // the next one: alone, times out
  }
}

template <class Ctx, class L>
void killed_holder_short_timeouts() {
  L lock;
  mp::Event held;
  Ctx ctx;
  auto p = ctx.Process(&hold_and_hang<L>, lock, held);
  p.start();
  REQUIRE(held.wait(30s));
  p.kill();
  REQUIRE(test_support::wait_pid_gone(*p.pid(), 10'000ms));  // dead (a zombie until joined)
  CHECK_FALSE(lock.acquire(false));  // non-blocking: one CAS, never checks the holder
  CHECK(lock.recoveries() == 0);
  CHECK(lock.acquire(true, 0s));  // a zero timeout checks the holder once before giving up
  CHECK(lock.owner_died());
  CHECK(lock.recoveries() == 1);
  lock.release();
  CHECK(p.join(10s));
}

TEMPLATE_TEST_CASE("Lock/RLock/Condition: a zero-timeout acquire recovers a killed holder",
                   "[synchronize][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  SECTION("Lock") { killed_holder_short_timeouts<TestType, mp::Lock>(); }
  SECTION("RLock") { killed_holder_short_timeouts<TestType, mp::RLock>(); }
  SECTION("Condition") { killed_holder_short_timeouts<TestType, mp::Condition>(); }
}

template <class L>
void recover_and_count(L lock, SharedInts out, int slot) {
  require(lock.acquire(true, 10s), "acquire");
  if (lock.owner_died()) ++out[0];
  ++out.plain();
  out[slot] = 1;
  lock.release();
}

TEMPLATE_TEST_CASE("Lock: several waiters race to recover a killed holder, exactly one does",
                   "[synchronize][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  mp::Lock lock;
  mp::Event held;
  SharedInts out;
  TestType ctx;
  auto holder = ctx.Process(&hold_and_hang<mp::Lock>, lock, held);
  holder.start();
  REQUIRE(held.wait(30s));
  std::vector<mp::Process> waiters;
  for (int i = 1; i <= 3; ++i) {
    waiters.push_back(ctx.Process(&recover_and_count<mp::Lock>, lock, out, i));
    waiters.back().start();
  }
  holder.kill();
  recover_and_count(lock, out, 4);
  for (auto& w : waiters) {
    CHECK(w.join(30s));
    CHECK(w.exitcode() == 0);
  }
  CHECK(holder.join(10s));
  CHECK(out[0] == 1);
  CHECK(lock.recoveries() == 1);
  CHECK(out.plain() == 4);
}

void sleep_forever() {
  for (;;) ::pause();
}

TEST_CASE("Lock: holder liveness uses pid and start time, so a reused pid is not mistaken",
          "[synchronize][fork]") {
  namespace d = mp::detail;
  const auto me = d::self_pid();
  CHECK(d::check_holder(me, d::self_stamp()) == d::holder_status::alive);
  CHECK(d::check_holder(me, 0) == d::holder_status::alive);  // not stamped yet: assume alive
  CHECK(d::check_holder(me, d::self_stamp() ^ 1) == d::holder_status::suspect);

  mp::ForkContext ctx;
  auto p = ctx.Process(&sleep_forever);
  p.start();
  const auto pid = static_cast<std::uint32_t>(*p.pid());
  const std::uint64_t start = d::process_start_time(static_cast<pid_t>(pid));
  CHECK(start != 0);
  CHECK(d::check_holder(pid, (std::uint64_t{pid} << d::stamp_pid_shift) | start) ==
        d::holder_status::alive);

  // A lock "held" by a process that is gone, whose pid now belongs to `p`: the stamp's start time
  // differs from p's, so the lock is taken over (after two consistent checks).
  auto word = d::shared_object<d::lock_word>::create("test-lock", 0);
  word->word.store(pid | d::lock_word::waiters_bit);
  word->stamp.store((std::uint64_t{pid} << d::stamp_pid_shift) | (start + 1));
  const auto t0 = clk::now();
  CHECK(word->acquire<d::process_backend>(true, d::mono_deadline(mp::Timeout(5s))));
  CHECK(elapsed_since(t0) < 2s);
  CHECK(word->recoveries.load() == 1);
  CHECK(word->release<d::process_backend>());

  // The same with the right start time: p is alive, so the acquire times out.
  word->word.store(pid);
  word->stamp.store((std::uint64_t{pid} << d::stamp_pid_shift) | start);
  check_times_out(
      [&] { return word->acquire<d::process_backend>(true, d::mono_deadline(mp::Timeout(300ms))); },
      300ms);

  p.kill();
  REQUIRE(p.join(10s));
  CHECK(d::check_holder(pid, 0) == d::holder_status::dead);
}

// --- handle passing under forkserver -------------------------------------------------------------

void use_everything(mp::Lock l, mp::RLock r, mp::BoundedSemaphore s, mp::Condition c, mp::Event e,
                    mp::Barrier b, SharedInts out) {
  g_action_ints = out;
  require(l.acquire(true, 10s), "lock");
  l.release();
  require(r.acquire(true, 10s) && r.acquire(false), "rlock");
  r.release();
  r.release();
  require(s.acquire(true, 10s), "semaphore");
  require(c.acquire(true, 10s), "condition");
  c.notify();
  c.release();
  e.set();
  out[0] = b.wait(30s) + 1;
}

/// One handle of every kind for use_everything, and what it must have done with them.
struct every_handle {
  every_handle() { g_action_ints = out; }
  mp::Lock l;
  mp::RLock r;
  mp::BoundedSemaphore s{1};
  mp::Condition c;
  mp::Event e;
  SharedInts out;
  mp::Barrier b{2, [] { ++(*g_action_ints)[15]; }};  // a captureless lambda crosses exec

  void check_used() const {
    CHECK(e.is_set());
    CHECK(s.get_value() == 0);
    CHECK(out[0] >= 1);
    CHECK(out[15] == 1);
  }
};

TEMPLATE_TEST_CASE("synchronize: every handle crosses every start method",
                   "[synchronize][fork][spawn][forkserver]", mp::ForkContext, mp::SpawnContext,
                   mp::ForkServerContext) {
  every_handle h;
  TestType ctx;
  auto p = ctx.Process(&use_everything, h.l, h.r, h.s, h.c, h.e, h.b, h.out);
  p.start();
  CHECK(h.b.wait(30s) >= 0);
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  h.check_used();
}

TEMPLATE_TEST_CASE("synchronize: every handle crosses into a Pool task",
                   "[synchronize][pool][fork][spawn][forkserver]", mp::ForkContext,
                   mp::SpawnContext, mp::ForkServerContext) {
  every_handle h;
  TestType ctx;
  auto pool = ctx.Pool(1);
  auto task = pool.apply_async(&use_everything, h.l, h.r, h.s, h.c, h.e, h.b, h.out);
  CHECK(h.b.wait(30s) >= 0);  // the task is the other party
  task.get(30s);
  h.check_used();
  CHECK(h.l.acquire(false));  // released by the task
  h.l.release();
  pool.close();
  CHECK(pool.join(30s));
}

// --- timeouts survive signals (EINTR) ------------------------------------------------------------

std::atomic<int> g_signals{0};
extern "C" void count_signal(int /*sig*/) { g_signals.fetch_add(1, std::memory_order_relaxed); }

/// Times out on each primitive while the parent keeps interrupting it with SIGUSR1 (installed
/// without SA_RESTART, so every futex sleep returns EINTR): out[i] = 1 when wait i returned false
/// after its full 300 ms, 2 otherwise; out[8] = signals received.
void timed_waits_under_signals(mp::Lock held, mp::Semaphore empty, mp::Condition c, mp::Event never,
                               mp::Barrier b, mp::Event ready, mp::Event done, SharedInts out) {
  struct sigaction sa {};
  sa.sa_handler = count_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  if (::sigaction(SIGUSR1, &sa, nullptr) != 0) ::_exit(3);
  ready.set();
  auto timed = [&](int slot, auto fn) {
    const auto t0 = clk::now();
    const bool got = fn();
    const auto took = elapsed_since(t0);
    out[slot] = (!got && took >= 300ms && took < 3s) ? 1 : 2;
  };
  timed(0, [&] { return held.acquire(true, 300ms); });
  timed(1, [&] { return empty.acquire(true, 300ms); });
  timed(2, [&] {
    if (!c.acquire(true, 10s)) return true;
    const bool notified = c.wait(300ms);
    c.release();
    return notified;
  });
  timed(3, [&] { return c.acquire(true, 10s) && c.wait_for([] { return false; }, 300ms); });
  c.release();
  timed(4, [&] { return never.wait(300ms); });
  timed(5, [&] {
    try {
      (void)b.wait(300ms);
      return true;
    } catch (const mp::BrokenBarrierError&) {
      return false;
    }
  });
  out[8] = g_signals.load();
  done.set();
}

TEMPLATE_TEST_CASE("synchronize: signals (EINTR) neither cut timeouts short nor fake a wakeup",
                   "[synchronize][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  mp::Lock held;
  mp::Semaphore empty(0);
  mp::Condition c;
  mp::Event never, ready, done;
  mp::Barrier b(2);
  SharedInts out;
  REQUIRE(held.acquire(true, 5s));
  TestType ctx;
  auto p = ctx.Process(&timed_waits_under_signals, held, empty, c, never, b, ready, done, out);
  p.start();
  REQUIRE(ready.wait(30s));
  const pid_t pid = *p.pid();
  // A signal every 2 ms until the child is done (bounded: 30 s).
  for (int i = 0; i < 15000 && !done.wait(2ms); ++i) ::kill(pid, SIGUSR1);
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  for (int i = 0; i < 6; ++i) {
    INFO("wait " << i);
    CHECK(out[i] == 1);
  }
  CHECK(out[8] > 10);  // the waits really were interrupted
  held.release();
}

TEST_CASE("Barrier: a capturing action cannot cross exec", "[synchronize][spawn]") {
  int local = 0;
  mp::Barrier b(2, [&local] { ++local; });
  mp::SpawnContext ctx;
  auto p = ctx.Process(&barrier_broken_party<mp::Barrier>, b, SharedInts{});
  CHECK_THROWS_WITH(p.start(), Catch::Contains("cannot cross exec"));
}

}  // namespace

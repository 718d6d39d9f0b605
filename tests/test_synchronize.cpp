// SPDX-License-Identifier: MIT
// Tests for multiprocessing/synchronize.hpp and the thread twins of dummy.hpp. Most bodies are
// templates over a "world" (processes started through ForkContext or SpawnContext, or std::threads
// with the dummy twins) and run once per world, tagged [fork], [spawn] or [thread]. The
// holder-death tests SIGKILL real children. Every blocking call has a finite timeout; no sleep is
// used for synchronization.
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
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
  if (!lock.acquire(true, 10s)) std::exit(3);
  held.set();
  for (;;) ::pause();
}

void cond_wait_and_hang(mp::Condition c, mp::Event ready) {
  if (!c.acquire(true, 10s)) std::exit(3);
  ready.set();
  (void)c.wait();
  for (;;) ::pause();
}

template <class Ctx, class L>
void killed_holder() {
  L lock;
  mp::Event held;
  Ctx ctx;
  auto p = ctx.Process(&hold_and_hang<L>, lock, held);
  p.start();
  REQUIRE(held.wait(30s));
  CHECK_FALSE(lock.acquire(false));
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
    mp::Barrier b(2);
    const auto t0 = clk::now();
    CHECK_THROWS_AS(b.wait(200ms), mp::BrokenBarrierError);
    CHECK(elapsed_since(t0) >= 200ms);
  }
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

TEMPLATE_TEST_CASE("synchronize: every handle crosses every start method",
                   "[synchronize][fork][spawn][forkserver]", mp::ForkContext, mp::SpawnContext,
                   mp::ForkServerContext) {
  mp::Lock l;
  mp::RLock r;
  mp::BoundedSemaphore s(1);
  mp::Condition c;
  mp::Event e;
  SharedInts out;
  g_action_ints = out;
  mp::Barrier b(2, [] { ++(*g_action_ints)[15]; });  // a captureless lambda crosses exec
  TestType ctx;
  auto p = ctx.Process(&use_everything, l, r, s, c, e, b, out);
  p.start();
  CHECK(b.wait(30s) >= 0);
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK(e.is_set());
  CHECK(s.get_value() == 0);
  CHECK(out[0] >= 1);
  CHECK(out[15] == 1);
}

TEST_CASE("Barrier: a capturing action cannot cross exec", "[synchronize][spawn]") {
  int local = 0;
  mp::Barrier b(2, [&local] { ++local; });
  mp::SpawnContext ctx;
  auto p = ctx.Process(&barrier_broken_party<mp::Barrier>, b, SharedInts{});
  CHECK_THROWS_WITH(p.start(), Catch::Contains("cannot cross exec"));
}

}  // namespace

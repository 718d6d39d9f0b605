// SPDX-License-Identifier: MIT
// Tests for multiprocessing/sharedctypes.hpp: Value, Array, RawValue and RawArray — initial values,
// references into shared memory, locks (fresh RLock, shared Lock, none), handles crossing fork,
// spawn and forkserver with the children's writes visible in the parent, a lock-protected counter
// incremented by two processes, a lock holder SIGKILLed, and no /dev/shm entry ever.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <list>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
using test_support::PipeEnd;
using namespace std::chrono_literals;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

struct Point {  // a user struct: trivially copyable, no pointers
  int x;
  double y;
  char tag;
};

enum class Color : std::uint8_t { red, green, blue };

/// /dev/shm entries, leaving out the names test_shared_memory (maybe running alongside) uses.
std::set<std::string> dev_shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    const auto name = entry.path().filename().string();
    if (name.rfind("mptest_", 0) != 0 && name.rfind("psm_", 0) != 0) names.insert(name);
  }
  return names;
}

/// True when /proc/self/maps has a mapping whose path contains `what`.
bool mapped(const std::string& what) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(what) != std::string::npos) return true;
  }
  return false;
}


// -- child targets (plain functions: they cross spawn and forkserver) --

void write_values(mp::Value<double> d, mp::Array<int> a, mp::Value<Point> p) {
  d.value() = 3.25;
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<int>(i * i);
  p.value(Point{7, -1.5, 'c'});
}

void write_raw(mp::RawValue<std::int64_t> v, mp::RawArray<Point> points,
               mp::RawArray<Color> colors) {
  v.value() = -42;
  points[1] = Point{1, 2.0, 'r'};
  colors.at(2) = Color::blue;
}

void increment(mp::Value<std::int64_t> counter, mp::Array<double> sums, int times) {
  for (int i = 0; i < times; ++i) {
    {
      std::lock_guard guard(counter.get_lock());
      counter.value() += 1;
    }
    std::lock_guard guard(sums);  // `with sums:` — the array's own lock
    sums[0] += 0.5;
    sums[1] = sums[0] * 2;
  }
}

template <class L>
void try_shared_lock(mp::Value<int, L> a, mp::Array<int, L> b, PipeEnd checked) {
  // The parent holds the lock the two objects share: neither can take it.
  if (a.get_lock().acquire(false)) ::_exit(3);
  if (b.try_lock()) ::_exit(4);
  if (b.try_lock_for(50ms)) ::_exit(7);
  const char ok = 'c';
  if (::write(checked.fd, &ok, 1) != 1) ::_exit(6);
  if (!b.acquire(true, 30s)) ::_exit(5);  // released by the parent once we reported in
  b[0] = 11;
  b.release();
}

void check_without_lock(mp::Value<int> v, mp::Array<int> a) {
  try {
    (void)v.get_lock();
    ::_exit(3);
  } catch (const mp::AttributeError&) {
  }
  try {
    (void)a.get_lock();
    ::_exit(4);
  } catch (const mp::AttributeError&) {
  }
  v.value() = 9;
  a[0] = 10;
}

void hold_lock_and_hang(mp::Value<int> v, PipeEnd ready) {
  v.get_lock().acquire();
  v.value() = 1;
  const char ok = 'r';
  if (::write(ready.fd, &ok, 1) != 1) ::_exit(4);
  for (;;) ::pause();
}

/// Holds a Lock, an RLock and a Semaphore unit it was given, creates one of every library object
/// of its own, reports, and waits to be SIGKILLed.
void hold_everything_and_hang(mp::Lock l, mp::RLock r, mp::Semaphore s, mp::BoundedSemaphore bs,
                              mp::Condition c, mp::Event e, mp::Barrier b, mp::Value<int> v,
                              mp::Array<double> a, mp::RawValue<long> rv, mp::RawArray<char> ra,
                              PipeEnd ready) {
  if (!l.acquire(true, 10s) || !r.acquire(true, 10s) || !s.acquire(true, 10s)) ::_exit(3);
  v.value() = 1;
  a[0] = 2.0;
  rv.value() = 3;
  ra[0] = 'x';
  (void)bs, (void)c, (void)e, (void)b;
  // Objects of its own, alive when it dies.
  mp::Lock own_lock;
  mp::Condition own_condition;
  mp::Event own_event;
  mp::Barrier own_barrier(2);
  mp::Value<int> own_value(5);
  mp::Array<int> own_array(100);
  mp::RawArray<int> own_raw(100);
  if (!own_lock.acquire(true, 10s) || !own_condition.acquire(true, 10s)) ::_exit(5);
  const char ok = 'r';
  if (::write(ready.fd, &ok, 1) != 1) ::_exit(4);
  for (;;) ::pause();
}

template <class Handle>
Handle round_trip(const Handle& h) {
  mp::Writer w;
  w.save(h);
  mp::Reader r(w.bytes(), w.fds());
  return r.load<Handle>();
}

}  // namespace

// -- single process
// ---------------------------------------------------------------------------------

TEST_CASE("Value: zero or initial value, T& into shared memory, copies share", "[sharedctypes]") {
  mp::Value<int> zero;
  CHECK(zero.value() == 0);
  mp::Value<int> v(5);
  CHECK(v.value() == 5);
  v.value() += 1;
  CHECK(v.value() == 6);
  v.value(41);
  CHECK(v.get_obj() == 41);
  CHECK(&v.get_obj() == &v.value());
  const mp::Value<int> copy = v;
  copy.value() += 1;
  CHECK(v.value() == 42);

  mp::Value<Point> p(Point{1, 2.5, 'a'});
  CHECK(p.value().x == 1);
  p.value().y = 4.0;
  CHECK(p.get_obj().y == 4.0);
  mp::Value<Point> pz;
  CHECK((pz.value().x == 0 && pz.value().y == 0.0 && pz.value().tag == 0));
  mp::Value<std::array<std::uint16_t, 4>> arr({1, 2, 3, 4});
  CHECK(arr.value()[3] == 4);
  mp::Value<Color> c(Color::green);
  CHECK(c.value() == Color::green);
  mp::Value<bool> b(true);
  CHECK(b.value());
}

TEST_CASE("Value: a fresh RLock, an explicit Lock, or none", "[sharedctypes]") {
  mp::Value<int> v(0);
  mp::RLock& l = v.get_lock();
  CHECK(l.acquire());
  CHECK(l.acquire(false));  // recursive, as Python's default RLock
  l.release();
  l.release();
  {
    std::lock_guard g(v);  // Python: `with v:`
    v.value() += 1;
  }
  CHECK(v.try_lock());
  v.unlock();

  mp::Lock shared;
  mp::Value<int, mp::Lock> a(1, shared);
  mp::Value b(2.5, shared);  // CTAD: Value<double, mp::Lock>
  static_assert(std::is_same_v<decltype(b), mp::Value<double, mp::Lock>>);
  CHECK(a.get_lock().acquire(false));
  CHECK_FALSE(b.get_lock().acquire(false));  // the same, non-recursive lock
  CHECK_FALSE(shared.acquire(false));
  a.release();
  CHECK(b.acquire(false));
  b.release();

  mp::RLock rl;  // Python: Value('i', 0, lock=RLock()) - the default lock type, shared
  mp::Value<int> c(0, rl);
  mp::Array<int> d(2, rl);
  CHECK(c.acquire());
  CHECK(d.acquire(false));  // the same RLock, owned by this thread: recursion
  CHECK(rl.count() == 2);
  d.release();
  c.release();
  CHECK_FALSE(rl.is_mine());
  {
    std::unique_lock u(c, 100ms);  // TimedLockable
    CHECK(u.owns_lock());
  }

  mp::Value<int> none(3, false);
  CHECK_THROWS_AS(none.get_lock(), mp::AttributeError);
  CHECK_THROWS_AS(none.try_lock_for(1ms), mp::AttributeError);
  CHECK_THROWS_AS(none.acquire(), mp::AttributeError);
  none.value(4);  // the setter works without a lock
  CHECK(none.value() == 4);
}

TEST_CASE("Array: zeroed, from a list, a vector or a range, with indexing, at, iteration, span",
          "[sharedctypes]") {
  mp::Array<double> a(10);
  CHECK(a.size() == 10);
  CHECK(std::all_of(a.begin(), a.end(), [](double x) { return x == 0.0; }));
  a[3] = 1.5;
  CHECK(a.get_obj()[3] == 1.5);
  CHECK(a.get_obj().size() == 10);
  CHECK(a.at(3) == 1.5);
  CHECK_THROWS_AS(a.at(10), std::out_of_range);

  mp::Array<int> b{1, 2, 3};
  CHECK(b.size() == 3);
  CHECK(std::accumulate(b.begin(), b.end(), 0) == 6);
  mp::Array<int> one{5};  // as std::vector: one element
  CHECK(one.size() == 1);
  CHECK(one[0] == 5);

  const std::vector<long> v{4, 5, 6, 7};
  mp::Array c(v);
  static_assert(std::is_same_v<decltype(c), mp::Array<long>>);
  CHECK(std::vector<long>(c.begin(), c.end()) == v);
  std::list<int> l{9, 8};
  mp::Array<double> d(l);
  CHECK(d[1] == 8.0);

  mp::Array<Point> points(3);
  points[2].tag = 'z';
  CHECK(points[2].tag == 'z');
  CHECK(points[0].x == 0);

  mp::Array<int> empty(0);
  CHECK(empty.empty());
  CHECK(empty.begin() == empty.end());

  const mp::Array<int> copy = b;
  copy[0] = 100;
  CHECK(b[0] == 100);

  CHECK(b.get_lock().acquire());
  b.get_lock().release();
  mp::Array<int> nolock(4, false);
  CHECK_THROWS_AS(nolock.get_lock(), mp::AttributeError);
  mp::Lock shared;
  mp::Array<int, mp::Lock> e(4, shared);
  mp::Array<int, mp::Lock> f{{1, 2}, shared};
  CHECK(e.try_lock());
  CHECK_FALSE(f.try_lock());
  e.unlock();
}

TEST_CASE("RawValue and RawArray: the same data, no lock", "[sharedctypes]") {
  mp::RawValue<int> rv;
  CHECK(rv.value() == 0);
  mp::RawValue<double> rd(2.5);
  rd.value(3.5);
  CHECK(rd.get_obj() == 3.5);
  mp::RawArray<int> ra(8);
  CHECK(ra.size() == 8);
  CHECK(std::all_of(ra.begin(), ra.end(), [](int x) { return x == 0; }));
  mp::RawArray<int> rb{1, 2};
  CHECK(rb[1] == 2);
  CHECK_THROWS_AS(rb.at(2), std::out_of_range);
  mp::RawArray rc(std::vector<std::uint8_t>{1, 2, 3});
  static_assert(std::is_same_v<decltype(rc), mp::RawArray<std::uint8_t>>);
  CHECK(rc.get_obj().size() == 3);
}

TEST_CASE("Value/Array: handles serialize with their segment and their lock", "[sharedctypes]") {
  mp::Lock shared;
  mp::Value<int, mp::Lock> v(1, shared);
  auto v2 = round_trip(v);
  CHECK(&v2.value() != &v.value());  // another mapping...
  v2.value() = 77;
  CHECK(v.value() == 77);  // ...of the same segment
  CHECK(v.get_lock().acquire(false));
  CHECK_FALSE(v2.get_lock().acquire(false));  // and the same lock
  v.release();

  mp::Array<Point> a(4);
  auto a2 = round_trip(a);
  CHECK(a2.size() == 4);
  a2[3].x = 5;
  CHECK(a[3].x == 5);

  mp::Value<int> none(0, false);
  CHECK_THROWS_AS(round_trip(none).get_lock(), mp::AttributeError);
  mp::RawArray<double> raw{1.0, 2.0};
  CHECK(round_trip(raw)[1] == 2.0);
  mp::RawValue<char> rv('q');
  CHECK(round_trip(rv).value() == 'q');
}

TEST_CASE("RawArray: a segment too small for its header's count is rejected when loading",
          "[sharedctypes]") {
  mp::RawArray<char> chars{'a', 'b'};  // a 2-byte tail
  mp::Writer w;
  w.save(chars);
  mp::Reader r(w.bytes(), w.fds());
  CHECK_THROWS_AS(r.load<mp::RawArray<double>>(), mp::SerializationError);
}

TEST_CASE("Value/Array: memfd segments, never /dev/shm", "[sharedctypes]") {
  const auto before = dev_shm_entries();
  mp::Value<int> v(1);
  mp::Array<int> a(1000);
  mp::RawValue<int> rv(1);
  mp::RawArray<int> ra(1000);
  CHECK(mapped("memfd:mp-Value"));
  CHECK(mapped("memfd:mp-Array"));
  CHECK(mapped("memfd:mp-RawValue"));
  CHECK(mapped("memfd:mp-RawArray"));
  CHECK(dev_shm_entries() == before);
}

// -- across processes -----------------------------------------------------------------------------

TEMPLATE_TEST_CASE("Value/Array: a child's writes are visible in the parent",
                   "[sharedctypes][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  const auto before = dev_shm_entries();
  mp::Value<double> d;
  mp::Array<int> a(6);
  mp::Value<Point> p;
  auto child = ctx.Process(write_values, d, a, p);
  child.start();
  REQUIRE(child.join(30s));
  CHECK(child.exitcode() == 0);
  CHECK(d.value() == 3.25);
  CHECK(std::vector<int>(a.begin(), a.end()) == std::vector<int>{0, 1, 4, 9, 16, 25});
  CHECK(p.value().x == 7);
  CHECK(p.value().y == -1.5);
  CHECK(p.value().tag == 'c');

  mp::RawValue<std::int64_t> rv;
  mp::RawArray<Point> points(2);
  mp::RawArray<Color> colors(3);
  auto raw = ctx.Process(write_raw, rv, points, colors);
  raw.start();
  REQUIRE(raw.join(30s));
  CHECK(raw.exitcode() == 0);
  CHECK(rv.value() == -42);
  CHECK(points[1].tag == 'r');
  CHECK(points[1].y == 2.0);
  CHECK(colors[2] == Color::blue);
  CHECK(colors[0] == Color::red);
  CHECK(dev_shm_entries() == before);
}

TEMPLATE_TEST_CASE("Value/Array: two processes increment under the lock",
                   "[sharedctypes][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  mp::Value<std::int64_t> counter(0);
  mp::Array<double> sums(2);
  constexpr int times = 2000;
  auto p1 = ctx.Process(increment, counter, sums, times);
  auto p2 = ctx.Process(increment, counter, sums, times);
  p1.start();
  p2.start();
  REQUIRE(p1.join(60s));
  REQUIRE(p2.join(60s));
  CHECK(p1.exitcode() == 0);
  CHECK(p2.exitcode() == 0);
  CHECK(counter.value() == 2 * times);
  CHECK(sums[0] == 0.5 * 2 * times);
  CHECK(sums[1] == 2 * times);
}

template <class Ctx, class L>
void explicit_lock_across() {
  Ctx ctx;
  L lock;
  mp::Value<int, L> a(0, lock);
  mp::Array<int, L> b(1, lock);
  REQUIRE(lock.acquire(true, 5s));
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto p = ctx.Process(&try_shared_lock<L>, a, b, PipeEnd{fds[1]});
  p.start();
  ::close(fds[1]);
  // The child reports once it has seen the lock taken; then it blocks on it until we release.
  pollfd checked{fds[0], POLLIN, 0};
  CHECK(::poll(&checked, 1, 30'000) == 1);
  ::close(fds[0]);
  lock.release();
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK(b[0] == 11);
}

TEMPLATE_TEST_CASE(
    "Value/Array: an explicit Lock or RLock is shared across processes and lock=false crosses",
    "[sharedctypes][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  SECTION("an explicit Lock") { explicit_lock_across<TestType, mp::Lock>(); }
  SECTION("an explicit RLock") { explicit_lock_across<TestType, mp::RLock>(); }

  mp::Value<int> v(0, false);
  mp::Array<int> arr(1, false);
  auto q = ctx.Process(check_without_lock, v, arr);
  q.start();
  REQUIRE(q.join(30s));
  CHECK(q.exitcode() == 0);
  CHECK(v.value() == 9);
  CHECK(arr[0] == 10);
}

TEMPLATE_TEST_CASE("Value: a child SIGKILLed while holding the lock does not block the parent",
                   "[sharedctypes][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  mp::Value<int> v(0);
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto p = ctx.Process(hold_lock_and_hang, v, PipeEnd{fds[1]});
  p.start();
  ::close(fds[1]);
  pollfd ready{fds[0], POLLIN, 0};
  CHECK(::poll(&ready, 1, 30'000) == 1);
  ::close(fds[0]);
  CHECK_FALSE(v.get_lock().acquire(false));
  p.kill();
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == -SIGKILL);
  REQUIRE(v.get_lock().acquire(true, 10s));  // taken over from the dead holder
  CHECK(v.get_lock().owner_died());
  CHECK(v.value() == 1);
  v.get_lock().release();
}

TEMPLATE_TEST_CASE("sharedctypes/synchronize: no object ever names a /dev/shm entry, even SIGKILLed",
                   "[sharedctypes][synchronize][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  const auto before = test_support::unexpected_dev_shm_entries();
  TestType ctx;
  mp::Lock l;
  mp::RLock r;
  mp::Semaphore s(1);
  mp::BoundedSemaphore bs(2);
  mp::Condition c;
  mp::Event e;
  mp::Barrier b(2);
  mp::Value<int> v;
  mp::Array<double> a(10);
  mp::RawValue<long> rv;
  mp::RawArray<char> ra(16);
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto p = ctx.Process(hold_everything_and_hang, l, r, s, bs, c, e, b, v, a, rv, ra, PipeEnd{fds[1]});
  p.start();
  ::close(fds[1]);
  pollfd ready{fds[0], POLLIN, 0};
  REQUIRE(::poll(&ready, 1, 30'000) == 1);
  ::close(fds[0]);
  const pid_t pid = *p.pid();
  // 11 objects passed (Condition: its lock too) and 7 of its own, all memfds; nothing in /dev/shm.
  CHECK(test_support::count_mappings(pid, "memfd:mp-") >= 19);
  CHECK(test_support::count_mappings(pid, "/dev/shm/") == 0);
  CHECK(test_support::count_mappings(0, "/dev/shm/") == 0);
  CHECK(test_support::unexpected_dev_shm_entries() == before);
  p.kill();
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == -SIGKILL);
  CHECK(test_support::unexpected_dev_shm_entries() == before);
  // Its writes stay, and the locks it held are recovered.
  CHECK(v.value() == 1);
  CHECK(a[0] == 2.0);
  CHECK(rv.value() == 3);
  CHECK(ra[0] == 'x');
  REQUIRE(l.acquire(true, 10s));
  CHECK(l.owner_died());
  l.release();
  REQUIRE(r.acquire(true, 10s));
  CHECK(r.owner_died());
  r.release();
}

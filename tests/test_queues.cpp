// SPDX-License-Identifier: MIT
// Tests for multiprocessing/queues.hpp and the queue twins of dummy.hpp. Most bodies are templates
// over a "world" (processes started through a context, or std::threads with the dummy twins) and
// run once per world, tagged [fork], [spawn], [forkserver] or [thread]. The fault tests SIGKILL
// real producers and consumers in the middle of put() and get(). Every blocking call has a finite
// timeout.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::elapsed_since;
using clk = std::chrono::steady_clock;

namespace {

/// Processes started through context Ctx, or std::threads with the dummy twins.
template <class Ctx>
struct Procs : test_support::process_workers<Ctx> {
  template <class T>
  using Queue = mp::Queue<T>;
  template <class T>
  using JoinableQueue = mp::JoinableQueue<T>;
  template <class T>
  using SimpleQueue = mp::SimpleQueue<T>;
};

struct Threads : test_support::thread_workers {
  template <class T>
  using Queue = mp::dummy::Queue<T>;
  template <class T>
  using JoinableQueue = mp::dummy::JoinableQueue<T>;
  template <class T>
  using SimpleQueue = mp::dummy::SimpleQueue<T>;
};

#define QUEUE_CASE(name, tags, body)                                                           \
  TEST_CASE(name " (fork)", "[queues]" tags "[fork]") { body<Procs<mp::ForkContext>>(); }      \
  TEST_CASE(name " (spawn)", "[queues]" tags "[spawn]") { body<Procs<mp::SpawnContext>>(); }   \
  TEST_CASE(name " (forkserver)", "[queues]" tags "[forkserver]") {                            \
    body<Procs<mp::ForkServerContext>>();                                                      \
  }                                                                                            \
  TEST_CASE(name " (thread)", "[queues]" tags "[thread]") { body<Threads>(); }

#define PROCESS_CASE(name, tags, body)                                                       \
  TEST_CASE(name " (fork)", "[queues]" tags "[fork]") { body<Procs<mp::ForkContext>>(); }    \
  TEST_CASE(name " (spawn)", "[queues]" tags "[spawn]") { body<Procs<mp::SpawnContext>>(); }

/// Checks that `fn` throws E after at least `at_least` and not much later.
template <class E, class Fn>
void check_raises_after(Fn fn, std::chrono::milliseconds at_least) {
  const auto t0 = clk::now();
  CHECK_THROWS_AS(fn(), E);
  const auto took = elapsed_since(t0);
  CHECK(took >= at_least);
  CHECK(took < at_least + 2s);
}

/// A payload whose every byte is derived from (seq, size), so that corruption is detected.
std::vector<std::byte> pattern(std::uint32_t seq, std::size_t size) {
  std::vector<std::byte> v(size);
  for (std::size_t i = 0; i < size; i += 4096) v[i] = static_cast<std::byte>((seq * 31 + i / 4096) & 0xff);
  if (size >= 4) std::memcpy(v.data() + size - 4, &seq, 4);
  return v;
}
bool matches(const std::vector<std::byte>& v, std::uint32_t seq, std::size_t size) {
  return v == pattern(seq, size);
}

// --- basics --------------------------------------------------------------------------------------

template <class W>
void basics() {
  typename W::template Queue<int> q(3);
  CHECK(q.empty());
  CHECK(q.qsize() == 0);
  CHECK_FALSE(q.full());
  CHECK(q.maxsize() == 3);
  q.put(1);
  q.put(2, 1s);
  q.put_nowait(3);
  CHECK(q.qsize() == 3);
  CHECK(q.full());
  CHECK_THROWS_AS(q.put_nowait(4), mp::Full);
  CHECK_THROWS_AS(q.put(4, false), mp::Full);
  check_raises_after<mp::Full>([&] { q.put(4, 200ms); }, 200ms);
  CHECK(q.get() == 1);
  CHECK(q.get(1s) == 2);
  CHECK(q.get_nowait() == 3);
  CHECK(q.empty());
  CHECK_THROWS_AS(q.get_nowait(), mp::Empty);
  CHECK_THROWS_AS(q.get(false), mp::Empty);
  check_raises_after<mp::Empty>([&] { (void)q.get(200ms); }, 200ms);
  check_raises_after<mp::Empty>([&] { (void)q.get(-1s); }, 0ms);
  CHECK_THROWS_WITH(q.get_nowait(), Catch::Contains("Queue.get()"));

  // close() is per handle family in this process: put and get through it throw ValueError.
  typename W::template Queue<std::string> s;
  auto copy = s;
  s.put("kept");
  copy.close();
  CHECK_THROWS_AS(s.put("x"), mp::ValueError);
  CHECK_THROWS_AS((void)s.get(1s), mp::ValueError);
  CHECK_THROWS_WITH(s.put("x"), Catch::Contains("closed"));
  s.join_thread();
  s.cancel_join_thread();
  CHECK(s.qsize() == 1);
}
QUEUE_CASE("Queue: put/get, maxsize, Full and Empty with bounded timeouts, close", "", basics)

// --- across processes ----------------------------------------------------------------------------

template <class Q>
void produce_range(Q q, int n) {
  for (int i = 0; i < n; ++i) q.put(i, 30s);
  q.put(-1, 30s);
}

template <class In, class Out>
void echo_upper(In in, Out out) {
  for (;;) {
    std::string s = in.get(30s);
    if (s.empty()) return;
    std::transform(s.begin(), s.end(), s.begin(), [](char c) { return static_cast<char>(std::toupper(c)); });
    out.put(std::move(s), 30s);
  }
}

template <class W>
void across() {
  typename W::template Queue<int> q;
  auto w = W::start(&produce_range<typename W::template Queue<int>>, q, 50000);
  for (int i = 0; i < 50000; ++i) REQUIRE(q.get(30s) == i);
  CHECK(q.get(30s) == -1);
  CHECK(w.join());
  CHECK(q.empty());

  using SQ = typename W::template Queue<std::string>;
  SQ in, out;
  auto e = W::start(&echo_upper<SQ, SQ>, in, out);
  for (const char* word : {"alpha", "beta", "gamma"}) in.put(word);
  CHECK(out.get(30s) == "ALPHA");
  CHECK(out.get(30s) == "BETA");
  CHECK(out.get(30s) == "GAMMA");
  in.put("");
  CHECK(e.join());
}
QUEUE_CASE("Queue: items cross to and from another worker in order", "", across)

// --- many producers, many consumers --------------------------------------------------------------

using Tagged = std::pair<int, int>;  // (producer, sequence number); producer -1 ends a consumer

template <class Q>
void tagged_producer(Q q, int id, int n) {
  for (int i = 0; i < n; ++i) q.put(Tagged{id, i}, 30s);
}

template <class Q, class R>
void tagged_consumer(Q q, R results) {
  std::vector<Tagged> got;
  for (;;) {
    const Tagged t = q.get(30s);
    if (t.first < 0) break;
    got.push_back(t);
  }
  results.put(got, 30s);
}

template <class W>
void many_to_many() {
  constexpr int producers = 3, consumers = 3, n = 20000;
  using Q = typename W::template Queue<Tagged>;
  using R = typename W::template Queue<std::vector<Tagged>>;
  Q q(1000);
  R results;
  std::vector<typename W::worker> cons, prods;
  for (int c = 0; c < consumers; ++c) cons.push_back(W::start(&tagged_consumer<Q, R>, q, results));
  for (int p = 0; p < producers; ++p) prods.push_back(W::start(&tagged_producer<Q>, q, p, n));
  for (auto& p : prods) CHECK(p.join());
  for (int c = 0; c < consumers; ++c) q.put(Tagged{-1, 0}, 30s);
  std::map<Tagged, int> seen;
  for (int c = 0; c < consumers; ++c) {
    const auto got = results.get(60s);
    // Per-producer FIFO: each consumer sees each producer's items in increasing order.
    std::map<int, int> last;
    for (const auto& t : got) {
      auto [it, fresh] = last.emplace(t.first, t.second);
      if (!fresh) {
        CHECK(t.second > it->second);
        it->second = t.second;
      }
      ++seen[t];
    }
  }
  for (auto& c : cons) CHECK(c.join());
  CHECK(seen.size() == std::size_t{producers} * n);
  CHECK(std::all_of(seen.begin(), seen.end(), [](const auto& kv) { return kv.second == 1; }));
  CHECK(q.empty());
}
QUEUE_CASE("Queue: 3 producers x 3 consumers, every item exactly once, per-producer FIFO", "",
           many_to_many)

template <class Q>
void fill_bounded(Q q, int n) {
  for (int i = 0; i < n; ++i) q.put(i, 30s);
}

template <class W>
void bounded_across() {
  typename W::template Queue<int> q(2);
  auto w = W::start(&fill_bounded<typename W::template Queue<int>>, q, 40);
  for (int i = 0; i < 40; ++i) {
    if (i % 10 == 0) {
      // Let the producer run into the limit: qsize() never exceeds maxsize.
      const auto t0 = clk::now();
      while (!q.full() && elapsed_since(t0) < 10s) std::this_thread::sleep_for(1ms);
      CHECK(q.full());
    }
    CHECK(q.qsize() <= 2);
    CHECK(q.get(30s) == i);
  }
  CHECK(w.join());
}
QUEUE_CASE("Queue: maxsize holds a producer back across workers", "", bounded_across)

// --- JoinableQueue and SimpleQueue ---------------------------------------------------------------

template <class Q>
void ack_consumer(Q q) {
  for (;;) {
    const int v = q.get(30s);
    q.task_done();
    if (v < 0) return;
  }
}

template <class W>
void joinable() {
  using Q = typename W::template JoinableQueue<int>;
  Q q;
  CHECK(q.join(0s));  // nothing unfinished
  CHECK_THROWS_AS(q.task_done(), mp::ValueError);
  q.put(1);
  q.put(2);
  const auto t0 = clk::now();
  CHECK_FALSE(q.join(200ms));
  CHECK(elapsed_since(t0) >= 200ms);
  CHECK(q.get(1s) == 1);
  q.task_done();
  CHECK_FALSE(q.join(50ms));
  CHECK(q.get(1s) == 2);
  q.task_done();
  CHECK(q.join(1s));
  CHECK_THROWS_WITH(q.task_done(), Catch::Contains("too many times"));

  // A consumer in another worker acknowledges; join() returns once all are done.
  auto w = W::start(&ack_consumer<Q>, q);
  for (int i = 0; i < 1000; ++i) q.put(i);
  CHECK(q.join(30s));
  CHECK(q.empty());
  q.put(-1);
  CHECK(q.join(30s));
  CHECK(w.join());
}
QUEUE_CASE("JoinableQueue: task_done/join with a consumer elsewhere, ValueError on one too many",
           "", joinable)

template <class Q>
void simple_echo(Q in, Q out) {
  out.put(in.get(30s) * 2);
}

template <class W>
void simple() {
  using Q = typename W::template SimpleQueue<int>;
  Q in, out;
  CHECK(in.empty());
  auto w = W::start(&simple_echo<Q>, in, out);
  in.put(21);
  CHECK(out.get(30s) == 42);
  CHECK(w.join());
  check_raises_after<mp::Empty>([&] { (void)out.get(200ms); }, 200ms);
  out.close();
  CHECK_THROWS_AS(out.put(1), mp::ValueError);
  CHECK_THROWS_AS((void)out.get(1s), mp::ValueError);
}
QUEUE_CASE("SimpleQueue: put/get across workers, empty, close", "", simple)

// --- sizes ---------------------------------------------------------------------------------------

template <class Q>
void sized_producer(Q q, std::vector<std::uint64_t> sizes) {
  std::uint32_t seq = 0;
  for (auto size : sizes) q.put(pattern(seq++, size), 60s);
}

template <class W>
void sizes() {
  using Q = typename W::template Queue<std::vector<std::byte>>;
  Q q;
  const std::size_t limit = mp::detail::ring_inline_limit;
  // Empty, tiny, around the ring's inline limit, larger than the whole ring; many medium ones
  // make the ring wrap several times.
  std::vector<std::uint64_t> sizes{0, 1, 7, 8, 1000, limit - 16, limit - 15, limit, limit + 1,
                                   3 << 20, 5 << 20};
  for (int i = 0; i < 40; ++i) sizes.push_back(300'000 + std::uint64_t(i) * 777);
  sizes.push_back(64 << 20);
  auto w = W::start(&sized_producer<Q>, q, sizes);
  std::uint32_t seq = 0;
  for (auto size : sizes) {
    const auto v = q.get(60s);
    CHECK(v.size() == size);
    CHECK(matches(v, seq++, size));
  }
  CHECK(w.join());
  CHECK(q.empty());
}
QUEUE_CASE("Queue: messages from 0 bytes to 64 MiB arrive intact and in order", "[big]", sizes)

template <class W>
void ring_full() {
  // No consumer: an unbounded queue still has a finite ring, and put() waits for room with its
  // timeout instead of growing without bound.
  typename W::template Queue<std::string> q;
  const std::string chunk(512 * 1024, 'r');
  int put = 0;
  try {
    for (; put < 64; ++put) q.put(chunk, 100ms);
  } catch (const mp::Full&) {
  }
  if constexpr (std::is_same_v<W, Threads>) {
    CHECK(put == 64);  // the thread twin has no ring
  } else {
    CHECK(put >= 4);
    CHECK(put < 64);
    CHECK_THROWS_AS(q.put_nowait(chunk), mp::Full);
    CHECK(q.get(1s) == chunk);
    q.put(chunk, 5s);  // room again
  }
  CHECK(q.qsize() == static_cast<std::size_t>(put));
}
QUEUE_CASE("Queue: a full ring makes put() time out with Full, a get() makes room", "", ring_full)

// --- handles and types ---------------------------------------------------------------------------

template <class W>
void event_setter(typename W::template Queue<mp::Event> q) {
  q.get(30s).set();
}

template <class W>
void handles_through_queue() {
  typename W::template Queue<mp::Event> q;
  mp::Event e;
  auto w = W::start(&event_setter<W>, q);
  q.put(e);
  CHECK(e.wait(30s));
  CHECK(w.join());
}
PROCESS_CASE("Queue: a handle (an Event) travels through a queue and works there", "",
             handles_through_queue)

TEST_CASE("Queue: a handle loaded as a queue of another type is a TypeError", "[queues]") {
  mp::Queue<int> q;
  mp::serialize::Writer w;
  w.save(q);
  mp::serialize::Reader ok(w.bytes(), w.fds());
  auto same = ok.load<mp::Queue<int>>();
  same.put(5);
  CHECK(q.get(1s) == 5);
  mp::serialize::Reader wrong(w.bytes(), w.fds());
  CHECK_THROWS_AS(wrong.load<mp::Queue<std::string>>(), mp::TypeError);
}

struct Throws {
  Throws() = default;
  Throws(const Throws&) { throw std::runtime_error("no copies"); }
  Throws& operator=(const Throws&) = default;
  int value = 0;
  template <class A>
  void serialize(A& ar) {
    ar(value);
  }
};

/// Loading 13 fails: the consumer gets the error, and the next item.
struct Picky {
  int value = 0;
};

}  // namespace

template <>
struct mp::serializer<Picky> {
  static void save(serialize::Writer& w, const Picky& p) { w.save(p.value); }
  static Picky load(serialize::Reader& r) {
    const int v = r.load<int>();
    if (v == 13) throw mp::SerializationError("unlucky");
    return Picky{v};
  }
};

namespace {

TEST_CASE("Queue: encoding errors throw in put(), decoding errors in get(), and the queue goes on",
          "[queues]") {
  mp::Queue<std::variant<int, Throws>> q;
  std::variant<int, Throws> broken = 1;
  try {
    broken.emplace<Throws>(Throws{});
  } catch (const std::runtime_error&) {
  }
  REQUIRE(broken.valueless_by_exception());
  CHECK_THROWS_AS(q.put(broken), mp::SerializationError);
  CHECK(q.qsize() == 0);
  q.put(std::variant<int, Throws>(7));
  CHECK(std::get<int>(q.get(1s)) == 7);

  mp::Queue<Picky> p;
  p.put(Picky{12});
  p.put(Picky{13});
  p.put(Picky{14});
  CHECK(p.get(1s).value == 12);
  CHECK_THROWS_WITH(p.get(1s), Catch::Contains("unlucky"));
  CHECK(p.get(1s).value == 14);
  CHECK(p.empty());
}

// --- nothing lost at exit --------------------------------------------------------------------------

void put_then_exit_at_once(mp::Queue<int> q, int n) {
  for (int i = 0; i < n; ++i) q.put(i, 30s);
  ::_exit(0);  // no flushing, no destructors: CPython would lose what its feeder thread held
}

template <class Ctx>
void nothing_lost_at_exit() {
  mp::Queue<int> q;
  Ctx ctx;
  auto p = ctx.Process(put_then_exit_at_once, q, 20000);
  p.start();
  REQUIRE(p.join(60s));
  CHECK(p.exitcode() == 0);
  CHECK(q.qsize() == 20000);
  for (int i = 0; i < 20000; ++i) REQUIRE(q.get_nowait() == i);
}
TEST_CASE("Queue: everything put before a process _exit()s is delivered (fork)", "[queues][fork]") {
  nothing_lost_at_exit<mp::ForkContext>();
}
TEST_CASE("Queue: everything put before a process _exit()s is delivered (spawn)", "[queues][spawn]") {
  nothing_lost_at_exit<mp::SpawnContext>();
}

// --- faults: SIGKILL in the middle of put() and get() ------------------------------------------------

/// Puts numbered messages forever, alternating small ones and ones big enough for a side segment.
void endless_producer(mp::Queue<std::vector<std::byte>> q, std::uint32_t first) {
  for (std::uint32_t seq = first;; ++seq) {
    const std::size_t size = (seq % 3 == 0) ? (3u << 20) : 64 + seq % 5000;
    q.put(pattern(seq, size), 60s);
  }
}

std::size_t size_of(std::uint32_t seq) { return (seq % 3 == 0) ? (3u << 20) : 64 + seq % 5000; }

template <class Ctx>
void kill_producers_mid_put() {
  mp::Queue<std::vector<std::byte>> q(50);
  std::mt19937 rng(12345);
  std::uint32_t expect = 0;
  for (int round = 0; round < 8; ++round) {
    Ctx ctx;
    auto p = ctx.Process(endless_producer, q, expect);
    p.start();
    // Consume a little, then kill the producer at a random moment of a put().
    for (int i = 0; i < 5; ++i) {
      const auto v = q.get(30s);
      REQUIRE(matches(v, expect, size_of(expect)));
      ++expect;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    p.kill();
    REQUIRE(p.join(30s));
    // Whatever it completed is intact and in order; at most the item in progress is missing.
    for (;;) {
      std::vector<std::byte> v;
      try {
        v = q.get_nowait();
      } catch (const mp::Empty&) {
        break;
      }
      REQUIRE(matches(v, expect, size_of(expect)));
      ++expect;
    }
    CHECK(q.qsize() == 0);
  }
  // Still usable by everyone: a put and a get each complete promptly.
  const auto t0 = clk::now();
  q.put(pattern(1, 10), 10s);
  CHECK(matches(q.get(10s), 1, 10));
  q.put(pattern(2, 3u << 20), 10s);
  CHECK(matches(q.get(10s), 2, 3u << 20));
  CHECK(elapsed_since(t0) < 5s);
}
TEST_CASE("Queue: producers SIGKILLed mid-put lose at most their item in progress (fork)",
          "[queues][fork][fault]") {
  kill_producers_mid_put<mp::ForkContext>();
}
TEST_CASE("Queue: producers SIGKILLed mid-put lose at most their item in progress (spawn)",
          "[queues][spawn][fault]") {
  kill_producers_mid_put<mp::SpawnContext>();
}

/// Takes messages forever, counting completed gets in `done`.
void endless_consumer(mp::Queue<std::vector<std::byte>> q, mp::Value<int> done) {
  for (;;) {
    (void)q.get(60s);
    done.value() += 1;  // only this process writes it
  }
}

template <class Ctx>
void kill_consumers_mid_get() {
  constexpr std::uint32_t n = 60;
  mp::Queue<std::vector<std::byte>> q;
  for (std::uint32_t seq = 0; seq < n; ++seq) q.put(pattern(seq, size_of(seq)), 30s);
  std::mt19937 rng(777);
  std::uint32_t taken_by_children = 0;
  for (int round = 0; round < 4; ++round) {
    mp::Value<int> done(0);
    Ctx ctx;
    auto c = ctx.Process(endless_consumer, q, done);
    c.start();
    const auto t0 = clk::now();
    while (done.value() < 2 && elapsed_since(t0) < 30s) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    c.kill();
    REQUIRE(c.join(30s));
    taken_by_children += static_cast<std::uint32_t>(done.value());
  }
  // The parent takes the rest: increasing sequence numbers, every one intact. An item is either
  // taken by a child (counted, or not when it died right after its get), delivered again (a small
  // one whose taker died before committing), or lost (a big one whose taker died holding it).
  std::vector<std::uint32_t> rest;
  for (;;) {
    std::vector<std::byte> v;
    try {
      v = q.get(1s);
    } catch (const mp::Empty&) {
      break;
    }
    std::uint32_t seq = 0;
    std::memcpy(&seq, v.data() + v.size() - 4, 4);
    REQUIRE(matches(v, seq, size_of(seq)));
    rest.push_back(seq);
  }
  CHECK(std::is_sorted(rest.begin(), rest.end()));
  CHECK(q.lost() <= 4);
  const std::uint64_t accounted = taken_by_children + rest.size() + q.lost();
  CHECK(accounted >= n - 4);  // a child killed between its get and its count
  CHECK(accounted <= n + 4);  // a small item delivered again after its taker died
  CHECK(q.qsize() == 0);
  q.put(pattern(9, 100), 10s);
  CHECK(matches(q.get(10s), 9, 100));
}
TEST_CASE("Queue: consumers SIGKILLed mid-get cost at most their item (fork)", "[queues][fork][fault]") {
  kill_consumers_mid_get<mp::ForkContext>();
}
TEST_CASE("Queue: consumers SIGKILLed mid-get cost at most their item (spawn)", "[queues][spawn][fault]") {
  kill_consumers_mid_get<mp::SpawnContext>();
}

void sleep_in_get(mp::Queue<int> q, mp::Event asleep) {
  asleep.set();
  (void)q.get(60s);
}

TEST_CASE("Queue: a consumer killed while asleep in get() does not disturb the others",
          "[queues][fork][fault]") {
  mp::Queue<int> q;
  mp::Event asleep;
  mp::Process c(sleep_in_get, q, asleep);
  c.start();
  REQUIRE(asleep.wait(30s));
  std::this_thread::sleep_for(50ms);  // let it reach its futex
  c.kill();
  REQUIRE(c.join(30s));
  mp::Process p([q]() mutable {
    for (int i = 0; i < 1000; ++i) q.put(i, 10s);
  });
  p.start();
  for (int i = 0; i < 1000; ++i) REQUIRE(q.get(10s) == i);
  CHECK(p.join(30s));
}

/// The queue's shared state, reached the way another process reaches it: through its handle's
/// first descriptor (white-box: the holder-death tests below play a dead party's part exactly).
mp::detail::shared_object<mp::detail::ring_state> ring_of(const mp::Queue<int>& q) {
  mp::serialize::Writer w;
  w.save(q);
  mp::serialize::Reader r(w.bytes(), w.fds());
  return mp::detail::shared_object<mp::detail::ring_state>::load(r, "test ring");
}

TEST_CASE("Queue: a producer or consumer that died holding its side's lock is taken over",
          "[queues][fork][fault]") {
  mp::Queue<int> q;
  auto ring = ring_of(q);
  for (auto* side : {&ring->put, &ring->get}) {
    mp::Process holder([side] {
      (void)side->lock.acquire<mp::detail::process_backend>(true, {});
      ::raise(SIGKILL);
    });
    holder.start();
    REQUIRE(holder.join(30s));
    REQUIRE(holder.exitcode() == -SIGKILL);
    CHECK(side->lock.locked());
    const auto t0 = clk::now();
    q.put(7, 10s);
    CHECK(q.get(10s) == 7);
    CHECK(elapsed_since(t0) < 2s);
    CHECK_FALSE(side->lock.locked());
    CHECK(side->lock.recoveries.load() == 1);
  }
}

TEST_CASE("Queue: a put committed in the log by a producer that died is delivered to a waiting "
          "consumer", "[queues][fork][fault]") {
  mp::Queue<int> q;
  auto ring = ring_of(q);
  mp::Process producer([ring] {
    // Exactly what put() does up to its commit, then death before the commit is applied.
    auto& s = *ring;
    (void)s.put.lock.acquire<mp::detail::process_backend>(true, {});
    const std::uint64_t tail = s.put.position.load();
    const mp::detail::ring_record rec{sizeof(int), mp::detail::ring_kind::item};
    const int value = 42;
    std::byte* at = ring.tail() + (tail & (s.capacity - 1));
    std::memcpy(at, &rec, sizeof rec);
    std::memcpy(at + sizeof rec, &value, sizeof value);
    s.put.log.position.store(tail + 16);
    s.put.log.total.store(s.put.total.load() + 1);
    s.put.log.valid.store(1);
    ::raise(SIGKILL);
  });
  producer.start();
  REQUIRE(producer.join(30s));
  CHECK(q.qsize() == 0);  // not applied yet
  const auto t0 = clk::now();
  CHECK(q.get(10s) == 42);  // the waiting consumer finds the dead holder and applies its log
  CHECK(elapsed_since(t0) < 2s);
  CHECK(q.qsize() == 0);
  q.put(43, 1s);
  CHECK(q.get(1s) == 43);
}

// --- thread twin ---------------------------------------------------------------------------------

TEST_CASE("dummy::Queue: move-only items, no serialization", "[queues][thread]") {
  mp::dummy::Queue<std::unique_ptr<int>> q(1);
  q.put(std::make_unique<int>(4));
  CHECK_THROWS_AS(q.put_nowait(std::make_unique<int>(5)), mp::Full);
  CHECK(*q.get(1s) == 4);
  std::thread t([q]() mutable { q.put(std::make_unique<int>(6), 10s); });
  CHECK(*q.get(10s) == 6);
  t.join();
}

}  // namespace

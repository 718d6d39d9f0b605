// SPDX-License-Identifier: MIT
// Tests for multiprocessing/pool.hpp under fork, spawn and forkserver: map/imap/starmap results
// and order, lazy imap over an infinite range with bounded work, apply/apply_async with
// callbacks in one parent thread, exceptions rethrown as their own type or RemoteError, timeouts,
// misuse errors, initializer and maxtasksperchild, workers killed mid-task (SIGKILL, SIGSEGV,
// _exit) failing only their task, prompt terminate(), handles and 16 MiB values as arguments.
#include <catch2/catch.hpp>
#include <multiprocessing.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <cstddef>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <link.h>
#include <sched.h>
#include <unistd.h>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::counting;
using test_support::elapsed_since;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

int square(int x) { return x * x; }
std::string repeat(int n, std::string s) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}
pid_t worker_pid(int) { return ::getpid(); }
pid_t slow_worker_pid(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ::getpid();
}
void nothing(int) {}
std::string worker_name(int) { return mp::current_process().name(); }
int g_parent_marker = 0;  // set in the parent: a forked worker sees it, a spawned one does not
int read_marker() { return g_parent_marker; }
int add(int a, int b) { return a + b; }

struct CustomError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int throw_kind(int kind) {
  switch (kind) {
    case 0: throw std::invalid_argument("bad argument 0");
    case 1: throw std::out_of_range("index 1 out of range");
    case 2: throw mp::ValueError("mp value error 2");
    case 3: throw CustomError("custom failure 3");
    case 4: throw 42;
    case 5: throw std::runtime_error("runtime 5");
    case 6: throw std::logic_error("logic 6");
    case 7: throw mp::OSError("os error 7", 13);
    default: return kind;
  }
}

int fail_on_five(int x) {
  if (x == 5) throw std::domain_error("five is not allowed");
  return x;
}

int die_with(int sig) {
  if (sig > 0) {
    std::signal(sig, SIG_DFL);  // a sanitizer's handler would turn the signal into exit code 1
    std::raise(sig);
  }
  ::_exit(-sig);
}

int wait_for_event(mp::Event e, int value) {
  if (!e.wait(30s)) return -1;
  return value;
}

int sleep_after_release(mp::Semaphore started, int seconds) {
  started.release();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  return seconds;
}

int locked_increment(mp::Lock lock, mp::Value<int, mp::RLock> counter, int by) {
  std::lock_guard guard(lock);
  counter.value() += by;
  return counter.value();
}

void send_on(mp::Connection c, std::string text) { c.send(text); }

mp::Value<int> make_value(int v) { return mp::Value<int>(v); }  // a handle as a result

std::vector<std::uint8_t> transform_big(std::vector<std::uint8_t> v) {
  for (auto& b : v) b = static_cast<std::uint8_t>(b + 1);
  return v;
}

/// A serializable function object holding a handle: counts the calls it receives.
struct CountingSquare {
  CountingSquare() = default;  // the worker default-constructs, then loads
  explicit CountingSquare(mp::Value<std::int64_t> c) : counter(std::move(c)) {}
  mp::Value<std::int64_t> counter;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(counter);
  }
  int operator()(int x) const {
    auto lock = std::lock_guard(counter.get_lock());
    ++counter.value();
    return x * x;
  }
};

int g_initialized = 0;  // set by the initializer in each worker
void init_worker(int value, mp::Value<int> calls) {
  g_initialized = value;
  std::lock_guard guard(calls.get_lock());
  ++calls.value();
}
int read_initialized(int) { return g_initialized; }
void init_throws() { throw std::runtime_error("initializer refuses"); }

template <class Exception, class Call>
std::string message_of(Call&& call) {
  try {
    call();
  } catch (const Exception& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEMPLATE_TEST_CASE("Pool: map returns results in input order", "[pool][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  g_parent_marker = 1;  // inherited by forked workers only
  auto pool = ctx.Pool(2);
  g_parent_marker = 0;
  CHECK(pool.apply(read_marker) == (ctx.get_start_method() == "fork" ? 1 : 0));
  std::vector<int> input(100);
  std::iota(input.begin(), input.end(), 0);
  std::vector<int> expected;
  for (int x : input) expected.push_back(x * x);
  CHECK(pool.map(square, input) == expected);
  CHECK(pool.map(square, input, 1) == expected);
  CHECK(pool.map(square, input, 7) == expected);
  CHECK(pool.map(square, counting(0, 100), 1000) == expected);
  CHECK(pool.map(square, std::vector<int>{}).empty());
  CHECK(pool.map([](int x) { return x + 1; }, std::vector{1, 2, 3}) == std::vector{2, 3, 4});
  auto r = pool.map_async(square, input, 3);
  CHECK(r.get(30s) == expected);
  CHECK(r.successful());
  std::vector<int> from_callback;
  std::string from_error_callback;
  auto with_callback = pool.map_async(square, input, 10, [&](const std::vector<int>& v) { from_callback = v; });
  with_callback.get(30s);
  CHECK(from_callback == expected);  // the callback ran before get() returned
  auto failing = pool.map_async(fail_on_five, input, 10, [](const std::vector<int>&) {},
                                [&](const std::exception& e) { from_error_callback = e.what(); });
  REQUIRE(failing.wait(30s));
  CHECK_FALSE(failing.successful());
  CHECK(from_error_callback == "five is not allowed");
  pool.map(nothing, input);  // void tasks: map returns nothing
  pool.close();
  CHECK(pool.join(30s));
}

TEMPLATE_TEST_CASE("Pool: imap is in order, imap_unordered yields every result",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  std::vector<int> got;
  for (int x : pool.imap(square, counting(0, 200))) got.push_back(x);
  std::vector<int> expected;
  for (int i = 0; i < 200; ++i) expected.push_back(i * i);
  CHECK(got == expected);

  got.clear();
  for (int x : pool.imap(square, counting(0, 200), 7)) got.push_back(x);
  CHECK(got == expected);

  got.clear();
  for (int x : pool.imap_unordered(square, counting(0, 200), 3)) got.push_back(x);
  std::sort(got.begin(), got.end());
  CHECK(got == expected);

  auto it = pool.imap(square, std::vector{3, 4});
  CHECK(it.next(30s) == 9);
  CHECK(it.next(30s) == 16);
  CHECK_FALSE(it.next(30s).has_value());
}

TEMPLATE_TEST_CASE("Pool: imap over an infinite range runs a bounded number of tasks",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  mp::Value<std::int64_t> counter(0);
  int taken = 0;
  for (int x : pool.imap(CountingSquare(counter), counting(0))) {
    CHECK(x == taken * taken);
    if (++taken == 1000) break;
  }
  // Unordered too, with chunks.
  int more = 0;
  for (int x : pool.imap_unordered(CountingSquare(counter), counting(0), 4)) {
    (void)x;
    if (++more == 500) break;
  }
  pool.close();
  REQUIRE(pool.join(30s));
  const auto ran = counter.value();
  INFO("tasks run: " << ran);
  CHECK(ran >= 1500);
  CHECK(ran < 1500 + 300);  // the in-flight bound, not the (infinite) input
}

#if !defined(__clang__) || __clang_major__ >= 16
TEST_CASE("Pool: imap over std::views::iota(0) takes the first 1000 results", "[pool][fork]") {
  mp::Pool pool(2);
  mp::Value<std::int64_t> counter(0);
  std::int64_t sum = 0;
  int taken = 0;
  for (int x : pool.imap(CountingSquare(counter), std::views::iota(0))) {
    sum += x;
    if (++taken == 1000) break;
  }
  CHECK(sum == std::int64_t{999} * 1000 * 1999 / 6);
  CHECK(pool.map(square, std::views::iota(0, 4)) == std::vector{0, 1, 4, 9});
  pool.close();
  REQUIRE(pool.join(30s));
  CHECK(counter.value() < 1100);
}
#endif

TEMPLATE_TEST_CASE("Pool: starmap unpacks tuples", "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  std::vector<std::tuple<int, std::string>> input{{1, "a"}, {2, "bc"}, {0, "x"}, {3, "z"}};
  CHECK(pool.starmap(repeat, input) == std::vector<std::string>{"a", "bcbc", "", "zzz"});
  std::vector<std::pair<int, int>> pairs{{1, 2}, {3, 4}};
  CHECK(pool.starmap_async(add, pairs, 1).get(30s) == std::vector{3, 7});
}

TEMPLATE_TEST_CASE("Pool: apply, apply_async and callbacks in one parent thread",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  CHECK(pool.apply(square, 9) == 81);
  const std::string prefix = ctx.get_start_method() == "fork"    ? "ForkPoolWorker-"
                             : ctx.get_start_method() == "spawn" ? "SpawnPoolWorker-"
                                                                 : "ForkServerPoolWorker-";
  CHECK_THAT(pool.apply(worker_name, 0), Catch::StartsWith(prefix));

  CHECK(pool.apply(add, mp::args(2, 3)) == 5);
  CHECK(pool.apply_async(repeat, 2, "ab").get(30s) == "abab");

  std::mutex mu;
  std::vector<int> values;
  std::set<std::thread::id> threads;
  std::set<pid_t> pids;
  std::vector<std::string> errors;
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 0; i < 20; ++i) {
    results.push_back(pool.apply_async(
        fail_on_five, mp::args(i),
        [&](int v) {
          std::lock_guard lock(mu);
          values.push_back(v);
          threads.insert(std::this_thread::get_id());
          pids.insert(::getpid());
        },
        [&](const std::exception& e) {
          std::lock_guard lock(mu);
          errors.emplace_back(e.what());
          threads.insert(std::this_thread::get_id());
        }));
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    REQUIRE(results[i].wait(30s));
    CHECK(results[i].successful() == (i != 5));
  }
  CHECK_THROWS_AS(results[5].get(1s), std::domain_error);
  std::lock_guard lock(mu);
  CHECK(values.size() == 19);
  CHECK(errors == std::vector<std::string>{"five is not allowed"});
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
  CHECK(pids == std::set<pid_t>{::getpid()});

  // Void tasks, and an error callback taking std::exception_ptr.
  auto v = pool.apply_async(nothing, 1);
  v.get(30s);
  CHECK(v.successful());
  bool got_ptr = false;
  auto bad = pool.apply_async(fail_on_five, mp::args(5), [](int) {},
                              [&](std::exception_ptr e) { got_ptr = e != nullptr; });
  CHECK_THROWS_AS(bad.get(30s), std::domain_error);
  CHECK(got_ptr);  // callbacks run before get() returns
}

TEMPLATE_TEST_CASE("Pool: task exceptions are rethrown as their own type or RemoteError",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  CHECK_THROWS_WITH(pool.apply(throw_kind, 0), "bad argument 0");
  CHECK_THROWS_AS(pool.apply(throw_kind, 0), std::invalid_argument);
  CHECK_THROWS_AS(pool.apply(throw_kind, 1), std::out_of_range);
  CHECK_THROWS_AS(pool.apply(throw_kind, 2), mp::ValueError);
  CHECK_THROWS_WITH(pool.apply(throw_kind, 2), "mp value error 2");
  CHECK_THROWS_AS(pool.apply(throw_kind, 5), std::runtime_error);
  CHECK_THROWS_AS(pool.apply(throw_kind, 6), std::logic_error);
  try {
    pool.apply(throw_kind, 7);
    FAIL("no exception");
  } catch (const mp::OSError& e) {
    CHECK(e.error_number() == 13);
    CHECK(std::string(e.what()) == "os error 7");
  }
  try {
    pool.apply(throw_kind, 3);
    FAIL("no exception");
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name().find("CustomError") != std::string::npos);
    CHECK(std::string(e.what()) == "custom failure 3");
    CHECK(e.pid() > 0);
    CHECK(e.pid() != ::getpid());
  }
  try {
    pool.apply(throw_kind, 4);
    FAIL("no exception");
  } catch (const mp::RemoteError& e) {
    CHECK(e.type_name() == "int");
  }
  // map fails with the first failing item's exception.
  CHECK_THROWS_AS(pool.map(fail_on_five, counting(0, 20), 2), std::domain_error);
  // imap throws at that item; iteration can continue past it.
  auto it = pool.imap(fail_on_five, counting(4, 7));
  CHECK(it.next(30s) == 4);
  CHECK_THROWS_AS(it.next(30s), std::domain_error);
  CHECK(it.next(30s) == 6);
  CHECK(pool.apply(square, 3) == 9);  // the pool is unaffected
}

TEMPLATE_TEST_CASE("Pool: get(timeout) throws TimeoutError and the result still arrives",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(1);
  mp::Event go;
  auto r = pool.apply_async(wait_for_event, go, 7);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(r.get(100ms), mp::TimeoutError);
  CHECK(elapsed_since(t0) >= 100ms);
  CHECK_FALSE(r.ready());
  CHECK_FALSE(r.wait(10ms));
  CHECK_THROWS_AS((void)r.successful(), mp::ValueError);
  go.set();
  CHECK(r.get(30s) == 7);
  CHECK(r.ready());
  CHECK(r.successful());
  CHECK(r.get() == 7);  // again
}

TEMPLATE_TEST_CASE("Pool: chunksize < 1 is ValueError everywhere", "[pool][fork]", mp::ForkContext) {
  TestType ctx;
  auto pool = ctx.Pool(1);
  const std::vector<int> in{1, 2, 3};
  const std::vector<std::tuple<int, int>> pairs{{1, 2}};
  for (long bad : {0L, -1L}) {
    CHECK_THROWS_AS(pool.map(square, in, bad), mp::ValueError);
    CHECK_THROWS_AS(pool.map_async(square, in, bad), mp::ValueError);
    CHECK_THROWS_AS(pool.imap(square, in, bad), mp::ValueError);
    CHECK_THROWS_AS(pool.imap_unordered(square, in, bad), mp::ValueError);
    CHECK_THROWS_AS(pool.starmap(add, pairs, bad), mp::ValueError);
    CHECK_THROWS_AS(pool.starmap_async(add, pairs, bad), mp::ValueError);
  }
  CHECK(pool.map(square, in) == std::vector{1, 4, 9});
}

TEST_CASE("Pool: misuse is reported as Python does", "[pool][fork]") {
  CHECK_THROWS_AS(mp::Pool(0), mp::ValueError);
  CHECK_THROWS_AS(mp::Pool({.processes = 1, .maxtasksperchild = 0}), mp::ValueError);
  CHECK_THROWS_AS(mp::Pool({.processes = 1, .initializer = init_worker, .initargs = mp::args(1)}),
                  mp::TypeError);
  {
    mp::Pool defaults;  // Python: Pool()
    CHECK(defaults.processes() == mp::cpu_count());
    CHECK(defaults.apply(square, 5) == 25);
  }
  mp::Pool pool(1);
  CHECK(pool.processes() == 1);
  CHECK(message_of<mp::ValueError>([&] { pool.join(1s); }) == "Pool is still running");
  // Used from a process that did not create it.
  auto child = mp::get_context("fork").Process([&pool] {
    // _exit: this fork of a multi-threaded parent must not run exit handlers.
    try {
      (void)pool.apply(square, 2);
    } catch (const mp::ProcessError&) {
      ::_exit(7);
    }
    ::_exit(1);
  });
  child.start();
  REQUIRE(child.join(30s));
  CHECK(child.exitcode() == 7);
  pool.close();
  CHECK(message_of<mp::ValueError>([&] { (void)pool.apply_async(square, 2); }) == "Pool not running");
  CHECK_THROWS_AS(pool.map(square, std::vector{1}), mp::ValueError);
  CHECK_THROWS_AS(pool.imap(square, std::vector{1}), mp::ValueError);
  CHECK(pool.join(30s));
  CHECK(pool.join(30s));  // again: nothing to wait for
  pool.terminate();       // after join: harmless
}

TEMPLATE_TEST_CASE("Pool: the initializer runs once in each worker", "[pool][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  mp::Value<int> calls(0);
  {
    auto pool = ctx.Pool({.processes = 2, .initializer = init_worker, .initargs = mp::args(42, calls)});
    const auto seen = pool.map(read_initialized, counting(0, 40), 1);
    CHECK(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 42; }));
    pool.close();
    REQUIRE(pool.join(30s));
  }
  CHECK(calls.value() == 2);
}

TEMPLATE_TEST_CASE("Pool: an initializer that throws breaks the pool instead of hanging",
                   "[pool][fork][spawn]", mp::ForkContext, mp::SpawnContext) {
  TestType ctx;
  std::string err;
  err = test_support::capture_stderr([&] {
    auto pool = ctx.Pool({.processes = 1, .initializer = init_throws});
    // Either the task fails, or (once the pool knows it is broken) submitting does.
    CHECK_THROWS_WITH(pool.apply_async(square, 2).get(30s), Catch::Contains("initializer refuses"));
    CHECK_THROWS_AS(pool.apply_async(square, 2).get(30s), mp::BrokenProcessPool);
  });
  CHECK(err.find("initializer refuses") != std::string::npos);
}

TEMPLATE_TEST_CASE("Pool: maxtasksperchild replaces workers", "[pool][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool({.processes = 1, .maxtasksperchild = 2});
  const auto pids = pool.map(worker_pid, counting(0, 10), 1);
  const std::set<pid_t> distinct(pids.begin(), pids.end());
  CHECK(distinct.size() == 5);
  CHECK(distinct.count(::getpid()) == 0);
}

template <int N>
int plus(int x) {
  return x + N;
}

TEST_CASE("Pool: forked workers start while another thread walks the loaded objects", "[pool][fork]") {
  // A fork copies the loader's lock as it is: held, when another thread of the parent is inside
  // dl_iterate_phdr() (unwinders, plugin loaders and our own code ids do that). A forked worker
  // that walked the loaded objects itself would wait for that lock forever. Here a worker is
  // replaced after every task while one thread walks them without pause, and every task is a new
  // function (a new code id, looked up in the parent while the next worker forks).
  std::atomic<bool> stop{false};
  std::thread walker([&stop] {
    while (!stop.load()) {
      ::dl_iterate_phdr([](dl_phdr_info*, std::size_t, void*) { return ::sched_yield(); }, nullptr);
    }
  });
  {
    mp::ForkContext ctx;
    auto pool = ctx.Pool({.processes = 1, .maxtasksperchild = 1});
    constexpr auto functions = []<int... N>(std::integer_sequence<int, N...>) {
      return std::array{&plus<N>...};
    }(std::make_integer_sequence<int, 40>{});
    for (std::size_t i = 0; i < functions.size(); ++i) {
      REQUIRE(pool.apply_async(functions[i], 1).get(30s) == static_cast<int>(i) + 1);
    }
  }
  stop.store(true);
  walker.join();
}

TEMPLATE_TEST_CASE("Pool: a worker killed mid-task fails that task only and the pool keeps serving",
                   "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  std::vector<mp::AsyncResult<int>> before;
  for (int i = 0; i < 10; ++i) before.push_back(pool.apply_async(square, i));
  auto killed = pool.apply_async(die_with, SIGKILL);
  auto segv = pool.apply_async(die_with, SIGSEGV);
  auto exited = pool.apply_async(die_with, -3);
  std::vector<mp::AsyncResult<int>> after;
  for (int i = 0; i < 10; ++i) after.push_back(pool.apply_async(square, i));

  CHECK_THROWS_AS(killed.get(30s), mp::BrokenProcessPool);
  CHECK_THROWS_WITH(killed.get(30s), Catch::Contains("SIGKILL") && Catch::Contains("signal 9"));
  CHECK_THROWS_WITH(segv.get(30s), Catch::Contains("SIGSEGV"));
  CHECK_THROWS_WITH(exited.get(30s), Catch::Contains("exit code 3"));
  for (int i = 0; i < 10; ++i) {
    CHECK(before[static_cast<std::size_t>(i)].get(30s) == i * i);
    CHECK(after[static_cast<std::size_t>(i)].get(30s) == i * i);
  }
  // A map whose chunk dies fails; the pool still serves the next one.
  CHECK_THROWS_AS(pool.map(die_with, std::vector{SIGKILL}), mp::BrokenProcessPool);
  std::vector<int> expected;
  for (int i = 0; i < 50; ++i) expected.push_back(i * i);
  CHECK(pool.map(square, counting(0, 50), 1) == expected);
  pool.close();
  CHECK(pool.join(30s));
}

TEST_CASE("Pool: results of quick tasks a dying worker held back run again, only its task fails",
          "[pool][fork]") {
  mp::Pool pool(1);
  for (int round = 0; round < 5; ++round) {
    std::vector<mp::AsyncResult<int>> rs;
    for (int i = 0; i < 200; ++i) rs.push_back(pool.apply_async(square, i));
    auto killed = pool.apply_async(die_with, SIGKILL);
    std::vector<mp::AsyncResult<int>> after;
    for (int i = 0; i < 50; ++i) after.push_back(pool.apply_async(square, i));
    for (int i = 0; i < 200; ++i) CHECK(rs[static_cast<std::size_t>(i)].get(30s) == i * i);
    CHECK_THROWS_WITH(killed.get(30s), Catch::Contains("SIGKILL"));
    for (int i = 0; i < 50; ++i) CHECK(after[static_cast<std::size_t>(i)].get(30s) == i * i);
  }
}

TEST_CASE("Pool: a worker holding hundreds of quick tasks dies: only the one it ran fails",
          "[pool][fork]") {
  // Thousands of quick tasks let a worker hold a millisecond of them (hundreds) at once; those
  // it held behind the killer run on its replacement.
  mp::Pool pool(1);
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 3000; ++i) rs.push_back(pool.apply_async(square, i % 1000));
  auto killed = pool.apply_async(die_with, SIGKILL);
  for (int i = 0; i < 3000; ++i) rs.push_back(pool.apply_async(square, i % 1000));
  CHECK_THROWS_WITH(killed.get(30s), Catch::Contains("SIGKILL"));
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const int x = static_cast<int>(i % 1000);  // both runs of 3000 square i % 1000
    CHECK(rs[i].get(30s) == x * x);
  }
}

TEST_CASE("Pool: slow chunks after quick ones are shared out, not piled on one worker",
          "[pool][fork]") {
  mp::Pool pool(2);
  // Quick calls, one at a time: they go to the same worker, which may then hold more of a job.
  for (int i = 0; i < 5; ++i) (void)pool.apply(worker_pid, 0);
  const auto pids = pool.map(slow_worker_pid, std::vector<int>(8, 60), 1);
  std::map<pid_t, int> per_worker;
  for (const pid_t p : pids) ++per_worker[p];
  REQUIRE(per_worker.size() == 2);
  for (const auto& [pid, n] : per_worker) CHECK(n >= 3);  // 4 and 4, give or take one
}

TEMPLATE_TEST_CASE("Pool: terminate() ends busy workers promptly", "[pool][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  mp::Semaphore started(0);
  std::optional<mp::AsyncResult<int>> a, b;
  auto pool = ctx.Pool(2);
  a = pool.apply_async(sleep_after_release, started, 60);
  b = pool.apply_async(sleep_after_release, started, 60);
  REQUIRE(started.acquire(true, 30s));
  REQUIRE(started.acquire(true, 30s));
  const auto t0 = std::chrono::steady_clock::now();
  pool.terminate();
  CHECK(elapsed_since(t0) < 5s);
  CHECK_THROWS_AS(a->get(1s), mp::CancelledError);
  CHECK_THROWS_AS(b->get(1s), mp::CancelledError);
  CHECK(pool.join(1s));
  CHECK_THROWS_AS(pool.apply_async(square, 1), mp::ValueError);
}

TEST_CASE("Pool: an imap created before close() still delivers everything", "[pool][fork]") {
  mp::Pool pool(2);
  auto it = pool.imap(square, counting(0, 100));
  pool.close();
  std::vector<int> got;
  while (auto x = it.next(30s)) got.push_back(*x);
  CHECK(got.size() == 100);
  CHECK(got[99] == 99 * 99);
  CHECK(pool.join(30s));
}

TEST_CASE("Pool: a callback may submit more work but not join its own pool", "[pool][fork]") {
  mp::Pool pool(2);
  std::mutex mu;
  std::condition_variable cv;
  std::optional<int> second;
  std::optional<std::string> refused;
  auto first = pool.apply_async(square, mp::args(3), [&](int v) {
    pool.apply_async(square, mp::args(v), [&](int w) {
      std::lock_guard lock(mu);
      second = w;
      cv.notify_all();
    });
    try {
      pool.close();
      pool.join();
    } catch (const mp::ProcessError& e) {
      std::lock_guard lock(mu);
      refused = e.what();
    }
  });
  CHECK(first.get(30s) == 9);
  std::unique_lock lock(mu);
  CHECK(cv.wait_for(lock, 30s, [&] { return second.has_value(); }));
  CHECK(second == 81);
  CHECK(refused.has_value());
}

TEST_CASE("Pool: the destructor terminates and fails what was pending", "[pool][fork]") {
  mp::Semaphore started(0);
  std::optional<mp::AsyncResult<int>> r;
  const auto t0 = std::chrono::steady_clock::now();
  {
    mp::Pool pool(1);
    r = pool.apply_async(sleep_after_release, started, 60);
    REQUIRE(started.acquire(true, 30s));
  }
  CHECK(elapsed_since(t0) < 10s);
  CHECK_THROWS_AS(r->get(1s), mp::CancelledError);
}

TEMPLATE_TEST_CASE("Pool: handles as task arguments", "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  mp::Lock lock;
  mp::Value<int, mp::RLock> counter(0);
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 1; i <= 20; ++i) results.push_back(pool.apply_async(locked_increment, lock, counter, i));
  for (auto& r : results) CHECK(r.get(30s) > 0);
  CHECK(counter.value() == 210);

  auto made = pool.apply(make_value, 17);  // its descriptor came back with the result
  CHECK(made.value() == 17);

  auto [mine, theirs] = mp::Pipe();
  pool.apply(send_on, theirs, "through a pool");
  REQUIRE(mine.poll(30s));
  CHECK(mine.recv<std::string>() == "through a pool");
}

TEMPLATE_TEST_CASE("Pool: 16 MiB arguments and results", "[pool][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto pool = ctx.Pool(2);
  std::vector<std::uint8_t> big(16u << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7);
  auto r1 = pool.apply_async(transform_big, big);
  auto r2 = pool.apply_async(transform_big, big);
  const auto out = r1.get(60s);
  REQUIRE(out.size() == big.size());
  bool same = true;
  for (std::size_t i = 0; i < big.size(); ++i) same = same && out[i] == static_cast<std::uint8_t>(big[i] + 1);
  CHECK(same);
  CHECK(r2.get(60s) == out);
}

// SPDX-License-Identifier: MIT
// Tests for multiprocessing/futures.hpp: ProcessPoolExecutor under fork, spawn and forkserver and
// ThreadPoolExecutor ([thread]): submit/result, the Future state machine (pending, running,
// cancelled, finished), done-callbacks, result/exception timeouts bounded from both sides,
// as_completed and wait with every return_when, map with timeout and chunksize, shutdown with
// cancel_futures, a worker SIGKILLed mid-task failing only its future, max_tasks_per_child, the
// initializer, and the errors of misuse.
#include <catch2/catch.hpp>
#include <multiprocessing.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "test_support.hpp"

namespace mp = multiprocessing;
namespace fu = multiprocessing::futures;
using namespace std::chrono_literals;
using test_support::elapsed_since;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

int square(int x) { return x * x; }
int sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
pid_t worker_pid(int) { return ::getpid(); }
int fail_on_three(int x) {
  if (x == 3) throw std::out_of_range("three is out of range");
  return x;
}
int wait_for_event(mp::Event e, int value) {
  if (!e.wait(30s)) return -1;
  return value;
}
int die_with(int sig) {
  std::signal(sig, SIG_DFL);  // a sanitizer's handler would turn the signal into exit code 1
  std::raise(sig);
  return 0;
}
int g_initialized = 0;
void init_worker(int value) { g_initialized = value; }
int read_initialized(int) { return g_initialized; }
void init_throws() { throw std::runtime_error("initializer refuses"); }

template <class Ctx>
fu::ProcessPoolExecutor make_executor(int workers) {
  return fu::ProcessPoolExecutor(workers, Ctx{});
}

/// Polls `pred` until it holds or 30 s pass.
template <class Pred>
bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + 30s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEMPLATE_TEST_CASE("ProcessPoolExecutor: submit and result across the process boundary",
                   "[futures][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  auto ex = make_executor<TestType>(2);
  std::vector<fu::Future<int>> futs;
  for (int i = 0; i < 20; ++i) futs.push_back(ex.submit(square, i));
  for (int i = 0; i < 20; ++i) CHECK(futs[static_cast<std::size_t>(i)].result(30s) == i * i);
  const pid_t worker = ex.submit(worker_pid, 0).result(30s);
  CHECK(worker != ::getpid());
  auto bad = ex.submit(fail_on_three, 3);
  CHECK_THROWS_AS(bad.result(30s), std::out_of_range);
  CHECK_THROWS_WITH(bad.result(30s), "three is out of range");
  const std::exception_ptr e = bad.exception(30s);
  REQUIRE(e != nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(e), std::out_of_range);
  CHECK(ex.submit(fail_on_three, 4).exception(30s) == nullptr);
  CHECK(bad.done());
  CHECK_FALSE(bad.running());
  CHECK_FALSE(bad.cancelled());
}

TEST_CASE("Future: pending futures cancel, running and finished ones do not", "[futures][fork]") {
  fu::ProcessPoolExecutor ex(1);
  mp::Event go;
  auto first = ex.submit(wait_for_event, go, 1);
  REQUIRE(eventually([&] { return first.running(); }));
  CHECK_FALSE(first.cancel());
  // One worker holds at most two calls: the later ones stay pending.
  auto second = ex.submit(wait_for_event, go, 2);
  auto third = ex.submit(wait_for_event, go, 3);
  auto fourth = ex.submit(wait_for_event, go, 4);
  CHECK_FALSE(fourth.running());
  CHECK(fourth.cancel());
  CHECK(fourth.cancel());  // again: still true, as Python
  CHECK(fourth.cancelled());
  CHECK(fourth.done());
  CHECK_THROWS_AS(fourth.result(1s), mp::CancelledError);
  CHECK_THROWS_AS(fourth.exception(1s), mp::CancelledError);
  go.set();
  CHECK(first.result(30s) == 1);
  CHECK(second.result(30s) == 2);
  CHECK(third.result(30s) == 3);
  CHECK_FALSE(first.cancel());
  CHECK_FALSE(first.cancelled());
}

TEST_CASE("Future: result(timeout) and exception(timeout) wait no less and not much more",
          "[futures][fork]") {
  fu::ProcessPoolExecutor ex(1);
  mp::Event go;
  auto f = ex.submit(wait_for_event, go, 7);
  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(f.result(200ms), mp::TimeoutError);
  CHECK(elapsed_since(t0) >= 200ms);
  CHECK(elapsed_since(t0) < 2s);
  t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS((void)f.exception(100ms), mp::TimeoutError);
  CHECK(elapsed_since(t0) >= 100ms);
  CHECK(elapsed_since(t0) < 2s);
  CHECK_FALSE(f.done());
  go.set();
  CHECK(f.result(30s) == 7);  // the result still arrives after a timeout
}

TEST_CASE("Future: add_done_callback runs once, immediately when already done", "[futures][fork]") {
  fu::ProcessPoolExecutor ex(1);
  mp::Event go;
  auto f = ex.submit(wait_for_event, go, 5);
  std::atomic<int> calls{0};
  std::atomic<int> seen{0};
  f.add_done_callback([&](fu::Future<int> g) {
    seen = g.result();
    ++calls;
  });
  CHECK(calls == 0);
  go.set();
  CHECK(f.result(30s) == 5);
  REQUIRE(eventually([&] { return calls.load() == 1; }));
  CHECK(seen == 5);
  const auto me = std::this_thread::get_id();
  std::thread::id ran_in;
  f.add_done_callback([&](const fu::Future<int>&) { ran_in = std::this_thread::get_id(); });
  CHECK(ran_in == me);
  // A callback that throws is reported and does not disturb the others.
  auto g = ex.submit(square, 3);
  std::atomic<bool> later{false};
  const std::string err = test_support::capture_stderr([&] {
    g.add_done_callback([](const fu::Future<int>&) { throw std::runtime_error("callback fails"); });
    g.add_done_callback([&](const fu::Future<int>&) { later = true; });
    (void)g.result(30s);
    REQUIRE(eventually([&] { return later.load(); }));
  });
  CHECK(g.result() == 9);
  CHECK_THAT(err, Catch::Contains("callback fails"));
  CHECK(calls == 1);
}

TEMPLATE_TEST_CASE("as_completed yields every future once, in completion order",
                   "[futures][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  auto ex = make_executor<TestType>(3);  // one call per worker
  std::vector<fu::Future<int>> futs;
  for (int ms : {600, 50, 300}) futs.push_back(ex.submit(sleep_ms, ms));
  futs.push_back(futs[1]);  // given twice: yielded once
  std::vector<int> order;
  for (auto& f : fu::as_completed(futs, 30s)) order.push_back(f.result());
  CHECK(order == std::vector{50, 300, 600});
}

TEST_CASE("as_completed: the timeout counts from the call and names what is unfinished",
          "[futures][fork]") {
  fu::ProcessPoolExecutor ex(2);
  mp::Event go;
  std::vector<fu::Future<int>> futs{ex.submit(square, 2), ex.submit(wait_for_event, go, 1)};
  REQUIRE(futs[0].result(30s) == 4);
  const auto t0 = std::chrono::steady_clock::now();
  auto completed = fu::as_completed(futs, 300ms);
  auto it = completed.begin();
  CHECK(it->result() == 4);  // already done: yielded at once
  CHECK(elapsed_since(t0) < 250ms);
  CHECK_THROWS_WITH(++it, "1 (of 2) futures unfinished");
  CHECK(elapsed_since(t0) >= 300ms);
  CHECK(elapsed_since(t0) < 3s);
  go.set();
  CHECK(futs[1].result(30s) == 1);
}

TEST_CASE("wait: FIRST_COMPLETED, FIRST_EXCEPTION and ALL_COMPLETED", "[futures][fork]") {
  fu::ProcessPoolExecutor ex(3);  // calls go to the least busy worker: none waits behind the blocked one
  mp::Event go;
  std::vector<fu::Future<int>> futs{ex.submit(wait_for_event, go, 1), ex.submit(sleep_ms, 100)};

  auto t0 = std::chrono::steady_clock::now();
  auto [done, not_done] = fu::wait(futs, 30s, fu::FIRST_COMPLETED);
  CHECK(elapsed_since(t0) < 10s);
  REQUIRE(done.size() == 1);
  CHECK(done[0].result() == 100);
  REQUIRE(not_done.size() == 1);
  CHECK(not_done[0] == futs[0]);

  t0 = std::chrono::steady_clock::now();
  auto timed_out = fu::wait(futs, 200ms, fu::ALL_COMPLETED);
  CHECK(elapsed_since(t0) >= 200ms);
  CHECK(elapsed_since(t0) < 3s);
  CHECK(timed_out.done.size() == 1);
  CHECK(timed_out.not_done.size() == 1);

  // FIRST_EXCEPTION returns as soon as one fails, not at the first success.
  std::vector<fu::Future<int>> mixed{ex.submit(square, 1), ex.submit(fail_on_three, 3),
                                     ex.submit(wait_for_event, go, 2)};
  auto first_failure = fu::wait(mixed, 30s, fu::FIRST_EXCEPTION);
  const auto has = [](const std::vector<fu::Future<int>>& v, const fu::Future<int>& f) {
    return std::find(v.begin(), v.end(), f) != v.end();
  };
  CHECK(has(first_failure.done, mixed[1]));  // the failure; square(1) may still be on its way
  CHECK(has(first_failure.not_done, mixed[2]));
  CHECK(first_failure.done.size() + first_failure.not_done.size() == 3);

  go.set();
  auto all = fu::wait(futs, 30s);
  CHECK(all.done.size() == 2);
  CHECK(all.not_done.empty());
  CHECK_THROWS_AS(fu::wait(futs, 1s, 7), mp::ValueError);
}

TEMPLATE_TEST_CASE("Executor.map: input order, chunksize, exceptions at their item",
                   "[futures][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  auto ex = make_executor<TestType>(2);
  std::vector<int> xs(100);
  for (int i = 0; i < 100; ++i) xs[static_cast<std::size_t>(i)] = i;
  std::vector<int> got;
  for (int y : ex.map(square, xs, mp::Timeout{}, 7)) got.push_back(y);
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(got[static_cast<std::size_t>(i)] == i * i);

  auto it = ex.map(fail_on_three, std::vector{1, 2, 3, 4});
  CHECK(it.next(30s) == 1);
  CHECK(it.next(30s) == 2);
  CHECK_THROWS_AS(it.next(30s), std::out_of_range);
  CHECK(it.next(30s) == 4);
  CHECK(it.next(30s) == std::nullopt);
  CHECK_THROWS_AS(ex.map(square, xs, mp::Timeout{}, 0), mp::ValueError);
}

TEST_CASE("Executor.map: the timeout counts from the map call", "[futures][fork]") {
  fu::ProcessPoolExecutor ex(2);
  const auto t0 = std::chrono::steady_clock::now();
  auto it = ex.map(sleep_ms, std::vector{10, 2000}, 400ms);
  CHECK(it.next() == 10);
  CHECK_THROWS_AS(it.next(), mp::TimeoutError);
  CHECK(elapsed_since(t0) >= 400ms);
  CHECK(elapsed_since(t0) < 1900ms);
}

TEST_CASE("Executor: shutdown refuses new work, cancel_futures cancels what has not started",
          "[futures][fork]") {
  fu::ProcessPoolExecutor ex(1);
  mp::Event go;
  auto running = ex.submit(wait_for_event, go, 1);
  REQUIRE(eventually([&] { return running.running(); }));
  std::vector<fu::Future<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(ex.submit(wait_for_event, go, 10 + i));
  std::thread release([&] {
    std::this_thread::sleep_for(200ms);
    go.set();
  });
  ex.shutdown(true, true);
  release.join();
  CHECK(running.result(1s) == 1);
  int cancelled = 0;
  for (auto& f : queued) {
    REQUIRE(f.done());
    if (f.cancelled()) {
      ++cancelled;
    } else {
      CHECK(f.result() >= 10);  // handed to the worker before shutdown: it ran
    }
  }
  CHECK(cancelled >= 4);
  CHECK_THROWS_AS(ex.submit(square, 1), mp::Error);
  CHECK_THROWS_WITH(ex.submit(square, 1), "cannot schedule new futures after shutdown");
  CHECK_THROWS_WITH(ex.map(square, std::vector{1}), "cannot schedule new futures after shutdown");
  ex.shutdown();  // idempotent
}

TEST_CASE("Executor: the destructor waits for the submitted calls", "[futures][fork]") {
  std::optional<fu::Future<int>> f;
  const auto t0 = std::chrono::steady_clock::now();
  {
    fu::ProcessPoolExecutor ex(1);
    f = ex.submit(sleep_ms, 300);
  }
  CHECK(elapsed_since(t0) >= 300ms);
  CHECK(f->done());
  CHECK(f->result() == 300);
}

TEMPLATE_TEST_CASE("ProcessPoolExecutor: a worker killed mid-task fails only its future",
                   "[futures][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  auto ex = make_executor<TestType>(2);
  std::vector<fu::Future<int>> before;
  for (int i = 0; i < 10; ++i) before.push_back(ex.submit(square, i));
  auto killed = ex.submit(die_with, SIGKILL);
  std::vector<fu::Future<int>> after;
  for (int i = 0; i < 10; ++i) after.push_back(ex.submit(square, i));
  CHECK_THROWS_AS(killed.result(30s), mp::BrokenProcessPool);
  CHECK_THROWS_WITH(killed.result(30s), Catch::Contains("SIGKILL"));
  for (int i = 0; i < 10; ++i) {
    CHECK(before[static_cast<std::size_t>(i)].result(30s) == i * i);
    CHECK(after[static_cast<std::size_t>(i)].result(30s) == i * i);
  }
  CHECK(ex.submit(square, 12).result(30s) == 144);  // the executor keeps serving
}

TEMPLATE_TEST_CASE("ProcessPoolExecutor: max_tasks_per_child and the initializer",
                   "[futures][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  fu::ProcessPoolExecutor ex({.max_workers = 1, .mp_context = TestType{},
                              .initializer = init_worker, .initargs = mp::args(41),
                              .max_tasks_per_child = 1});
  std::set<pid_t> pids;
  for (int i = 0; i < 4; ++i) pids.insert(ex.submit(worker_pid, i).result(30s));
  CHECK(pids.size() == 4);  // a fresh worker for every call
  CHECK(ex.submit(read_initialized, 0).result(30s) == 41);
}

TEST_CASE("ProcessPoolExecutor: bad options and a failing initializer", "[futures][fork]") {
  CHECK_THROWS_AS(fu::ProcessPoolExecutor(0), mp::ValueError);
  CHECK_THROWS_AS(fu::ProcessPoolExecutor({.max_workers = 1, .max_tasks_per_child = 0}), mp::ValueError);
  CHECK_THROWS_AS(fu::ProcessPoolExecutor({.max_workers = 1, .initializer = init_worker,
                                           .initargs = mp::args(std::string("x"))}),
                  mp::TypeError);
  const std::string err = test_support::capture_stderr([&] {
    fu::ProcessPoolExecutor broken({.max_workers = 1, .initializer = init_throws});
    // Either the call fails, or (once the executor knows it is broken) submitting does.
    CHECK_THROWS_AS(broken.submit(square, 2).result(30s), mp::BrokenProcessPool);
    CHECK_THROWS_WITH(broken.submit(square, 2).result(30s), Catch::Contains("initializer refuses"));
  });
  CHECK_THAT(err, Catch::Contains("initializer refuses"));
}

// --- ThreadPoolExecutor --------------------------------------------------------------------------

TEST_CASE("ThreadPoolExecutor: any callable, the very exception object", "[futures][thread]") {
  struct Failure : std::runtime_error {
    explicit Failure(int c) : std::runtime_error("failure"), code(c) {}
    int code;
  };
  int factor = 3;
  fu::ThreadPoolExecutor ex(2);
  auto f = ex.submit([&factor](int x) { return x * factor; }, 5);
  CHECK(f.result(30s) == 15);
  auto g = ex.submit([](int c) -> int { throw Failure(c); }, 42);
  try {
    (void)g.result(30s);
    FAIL("no exception");
  } catch (const Failure& e) {
    CHECK(e.code == 42);
  }
  std::vector<int> got;
  for (int y : ex.map([&factor](int x) { return x + factor; }, std::vector{1, 2, 3})) got.push_back(y);
  CHECK(got == std::vector{4, 5, 6});
}

TEST_CASE("ThreadPoolExecutor: worker names, callbacks in the worker, cancel and shutdown",
          "[futures][thread]") {
  fu::ThreadPoolExecutor ex({.max_workers = 1, .thread_name_prefix = "calc"});
  CHECK(ex.submit([] { return mp::dummy::current_process().name(); }).result(30s) == "calc_0");

  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  auto blocker = ex.submit([&] {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 30s, [&] { return go; });
  });
  REQUIRE(eventually([&] { return blocker.running(); }));
  auto pending = ex.submit([] { return true; });
  CHECK_FALSE(pending.running());
  CHECK(pending.cancel());
  std::atomic<bool> in_worker{false};
  const auto me = std::this_thread::get_id();
  blocker.add_done_callback([&](const fu::Future<bool>&) { in_worker = std::this_thread::get_id() != me; });
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  CHECK(blocker.result(30s));
  CHECK(eventually([&] { return in_worker.load(); }));
  CHECK_THROWS_AS(pending.result(1s), mp::CancelledError);
  ex.shutdown();
  CHECK_THROWS_WITH(ex.submit([] { return 1; }), "cannot schedule new futures after shutdown");
}

TEST_CASE("ThreadPoolExecutor: as_completed and wait", "[futures][thread]") {
  fu::ThreadPoolExecutor ex(3);
  std::vector<fu::Future<int>> futs;
  for (int ms : {300, 10, 150}) futs.push_back(ex.submit(sleep_ms, ms));
  std::vector<int> order;
  for (auto& f : fu::as_completed(futs, 30s)) order.push_back(f.result());
  CHECK(order == std::vector{10, 150, 300});
  auto [done, not_done] = fu::wait(futs, 1s);
  CHECK(done.size() == 3);
  CHECK(not_done.empty());
  CHECK_THROWS_AS(fu::ThreadPoolExecutor(0), mp::ValueError);
}

TEST_CASE("ThreadPoolExecutor: an initializer that throws breaks the executor", "[futures][thread]") {
  std::atomic<int> inits{0};
  {
    fu::ThreadPoolExecutor ok({.max_workers = 2, .initializer = [&inits](int by) { inits += by; },
                               .initargs = mp::args(10)});
    CHECK(ok.submit([] { return 1; }).result(30s) == 1);
  }
  CHECK(inits == 20);
  const std::string err = test_support::capture_stderr([] {
    fu::ThreadPoolExecutor broken({.max_workers = 1, .initializer = [] { throw std::runtime_error("no init"); }});
    CHECK_THROWS_AS(broken.submit([] { return 1; }).result(30s), mp::BrokenThreadPool);
  });
  CHECK_THAT(err, Catch::Contains("no init"));
}

// SPDX-License-Identifier: MIT
// Tests for multiprocessing/dummy.hpp, the thread twins ([thread]: they also run under TSan):
// dummy::Pool (the Pool front end over worker threads: capturing lambdas, move-only values, the
// very exception object, initializer/initargs checks, maxtasksperchild, lazy imap, terminate,
// misuse errors) and dummy::Process (target and subclass, exit codes, join timeouts, names,
// current_process and active_children).
#include <catch2/catch.hpp>
#include <multiprocessing.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::counting;
using test_support::elapsed_since;

namespace {

struct Failure : std::runtime_error {
  explicit Failure(int c) : std::runtime_error("failure " + std::to_string(c)), code(c) {}
  int code;
};

}  // namespace

TEST_CASE("dummy::Pool: map, imap and apply_async with capturing lambdas", "[dummy][thread]") {
  mp::dummy::Pool pool(3);
  CHECK(pool.processes() == 3);
  int factor = 7;  // not const: a constant would need no capture
  std::vector<int> xs{1, 2, 3, 4, 5};
  CHECK(pool.map([factor](int x) { return x * factor; }, xs) == std::vector{7, 14, 21, 28, 35});
  CHECK(pool.map([factor](int x) { return x * factor; }, xs, 2) == std::vector{7, 14, 21, 28, 35});
  std::vector<int> in_order;
  for (int y : pool.imap([](int x) { return x + 1; }, xs)) in_order.push_back(y);
  CHECK(in_order == std::vector{2, 3, 4, 5, 6});
  std::multiset<int> any_order;
  for (int y : pool.imap_unordered([](int x) { return x + 1; }, xs)) any_order.insert(y);
  CHECK(any_order == std::multiset<int>{2, 3, 4, 5, 6});
  CHECK(pool.starmap([](int a, int b) { return a - b; }, std::vector<std::pair<int, int>>{{5, 1}, {9, 3}}) ==
        std::vector{4, 6});

  // Shared memory of this process: the lambda's reference works (no serialization).
  std::atomic<int> calls{0};
  std::vector<mp::AsyncResult<void>> rs;
  for (int i = 0; i < 20; ++i) rs.push_back(pool.apply_async([&calls] { ++calls; }));
  for (auto& r : rs) r.get(30s);
  CHECK(calls == 20);

  // Move-only arguments and results.
  auto moved = pool.apply_async([](std::unique_ptr<int> p) { return std::make_unique<int>(*p * 2); },
                                std::make_unique<int>(21));
  CHECK(*pool.apply([](std::unique_ptr<int> p) { return p; }, std::make_unique<int>(5)) == 5);
  (void)moved.wait(30s);
  CHECK(moved.ready());
}

TEST_CASE("dummy::Pool: a task's exception reaches get() as the very object", "[dummy][thread]") {
  mp::dummy::Pool pool(2);
  auto r = pool.apply_async([](int c) -> int { throw Failure(c); }, 17);
  try {
    (void)r.get(30s);
    FAIL("no exception");
  } catch (const Failure& e) {
    CHECK(e.code == 17);
  }
  CHECK_FALSE(r.successful());
  std::atomic<int> errors{0};
  auto m = pool.map_async([](int x) { return x == 3 ? throw Failure(3) : x; }, std::vector{1, 2, 3}, 1,
                          [](const std::vector<int>&) {}, [&](const std::exception&) { ++errors; });
  CHECK_THROWS_AS(m.get(30s), Failure);
  CHECK(errors == 1);
}

TEST_CASE("dummy::Pool: callbacks run in one handler thread", "[dummy][thread]") {
  mp::dummy::Pool pool(2);
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::vector<int> values;
  std::vector<mp::AsyncResult<int>> rs;
  for (int i = 0; i < 30; ++i) {
    rs.push_back(pool.apply_async([](int x) { return x; }, mp::args(i), [&](int v) {
      std::lock_guard lock(mu);
      threads.insert(std::this_thread::get_id());
      values.push_back(v);
    }));
  }
  for (auto& r : rs) r.get(30s);
  std::lock_guard lock(mu);
  CHECK(values.size() == 30);
  CHECK(threads.size() == 1);
  CHECK(threads.count(std::this_thread::get_id()) == 0);
}

TEST_CASE("dummy::Pool: initializer, initargs and maxtasksperchild", "[dummy][thread]") {
  std::atomic<int> inits{0};
  {
    mp::dummy::Pool pool({.processes = 2,
                          .initializer = [&inits](int by, const std::string& s) { inits += by + static_cast<int>(s.size()); },
                          .initargs = mp::args(10, "ab")});
    CHECK(pool.apply([] { return 1; }) == 1);
    pool.close();
    CHECK(pool.join(30s));
  }
  CHECK(inits == 24);
  CHECK_THROWS_AS(mp::dummy::Pool({.processes = 1, .initializer = [](int) {}, .initargs = mp::args("x")}),
                  mp::TypeError);
  CHECK_THROWS_AS(mp::dummy::Pool({.processes = 1, .initargs = mp::args(1)}), mp::ValueError);
  CHECK_THROWS_AS(mp::dummy::Pool(0), mp::ValueError);
  CHECK_THROWS_AS(mp::dummy::Pool({.processes = 1, .maxtasksperchild = 0}), mp::ValueError);

  // maxtasksperchild = 1: every chunk runs on a fresh thread (thread ids may be reused: the
  // workers' names are not).
  mp::dummy::Pool fresh({.processes = 1, .maxtasksperchild = 1});
  std::set<std::string> names;
  for (int i = 0; i < 5; ++i) names.insert(fresh.apply([] { return mp::dummy::current_process().name(); }));
  CHECK(names.size() == 5);

  const std::string err = test_support::capture_stderr([] {
    mp::dummy::Pool broken({.processes = 1, .initializer = [] { throw std::runtime_error("cannot init"); }});
    // Either the task fails, or (once the pool knows it is broken) submitting does.
    CHECK_THROWS_AS(broken.apply_async([] { return 1; }).get(30s), mp::BrokenThreadPool);
    CHECK_THROWS_WITH(broken.apply_async([] { return 1; }).get(30s), Catch::Contains("cannot init"));
  });
  CHECK_THAT(err, Catch::Contains("cannot init"));
}

TEST_CASE("dummy::Pool: imap over an infinite range takes the first 1000 lazily", "[dummy][thread]") {
  mp::dummy::Pool pool(2);
  std::atomic<int> started{0};
  int taken = 0;
  long sum = 0;
  for (int y : pool.imap([&started](int x) { ++started; return x; }, counting(0))) {
    sum += y;
    if (++taken == 1000) break;
  }
  CHECK(sum == 999L * 1000 / 2);
  pool.close();
  CHECK(pool.join(30s));
  CHECK(started >= 1000);
  CHECK(started <= 1000 + 64);  // a bounded number ahead of the consumer
}

TEST_CASE("dummy::Pool: terminate fails what is pending, misuse is reported", "[dummy][thread]") {
  mp::dummy::Pool pool(1);
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  auto running = pool.apply_async([&] {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 30s, [&] { return go; });
  });
  auto queued = pool.apply_async([] { return true; });
  CHECK_THROWS_WITH(pool.join(1s), "Pool is still running");
  std::thread release([&] {
    std::this_thread::sleep_for(100ms);
    {
      std::lock_guard lock(mu);
      go = true;
    }
    cv.notify_all();
  });
  pool.terminate();  // waits for the running call: a thread cannot be stopped
  release.join();
  CHECK_THROWS_AS(queued.get(1s), mp::CancelledError);
  CHECK(running.ready());
  CHECK_THROWS_WITH(pool.apply_async([] { return 1; }), "Pool not running");
  CHECK(pool.join(1s));
}

TEST_CASE("dummy::Process: target, exit codes, join timeouts and names", "[dummy][thread]") {
  int out = 0;
  mp::dummy::Process p([&out](int a, const std::string& b) { out = a + static_cast<int>(b.size()); }, 40, "ab");
  CHECK_FALSE(p.is_alive());
  CHECK(p.exitcode() == std::nullopt);
  CHECK_THROWS_AS(p.join(1s), mp::ProcessError);
  p.start();
  CHECK_THROWS_AS(p.start(), mp::ProcessError);
  CHECK(p.join(30s));
  CHECK(out == 42);
  CHECK(p.exitcode() == 0);
  CHECK(p.name().rfind("Thread-", 0) == 0);
  CHECK_THROWS_AS(p.daemon(true), mp::ProcessError);

  std::string err = test_support::capture_stderr([] {
    mp::dummy::Process bad([] { throw std::invalid_argument("bad input"); });
    bad.name("Failing");
    bad.start();
    CHECK(bad.join(30s));
    CHECK(bad.exitcode() == 1);
  });
  CHECK_THAT(err, Catch::Contains("Exception in thread Failing") && Catch::Contains("bad input"));

  std::atomic<bool> stop{false};
  mp::dummy::Process waiting([&stop] {
    while (!stop) std::this_thread::sleep_for(1ms);
  });
  waiting.daemon(true);
  waiting.start();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(waiting.join(150ms));
  CHECK(elapsed_since(t0) >= 150ms);
  CHECK(elapsed_since(t0) < 2s);
  CHECK(waiting.is_alive());
  const auto kids = mp::dummy::active_children();
  CHECK(std::any_of(kids.begin(), kids.end(), [&](const auto& k) { return k.name() == waiting.name(); }));
  stop = true;
  CHECK(waiting.join(30s));
  CHECK_FALSE(waiting.is_alive());
}

namespace {
struct Counter : mp::dummy::Process {
  int counted = 0;
  std::string seen_name;
  void run() override {
    seen_name = mp::dummy::current_process().name();
    for (int i = 0; i < 10; ++i) ++counted;
  }
};
}  // namespace

TEST_CASE("dummy::Process: a subclass overriding run, current_process", "[dummy][thread]") {
  Counter c;
  c.name("Counter-1");
  c.start();
  CHECK(c.join(30s));
  CHECK(c.counted == 10);
  CHECK(c.seen_name == "Counter-1");
  CHECK(mp::dummy::current_process().name() == "MainThread");
  mp::dummy::Pool pool(1);
  CHECK(pool.apply([] { return mp::dummy::current_process().name(); }).rfind("Thread-", 0) == 0);
}

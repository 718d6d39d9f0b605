// SPDX-License-Identifier: MIT
// Tests for multiprocessing/context.hpp: start methods, contexts, freeze_support.
#include <catch2/catch.hpp>
#include <multiprocessing.hpp>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include <unistd.h>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

namespace {
void exit_with_parent_method(std::string expected) {
  std::exit(mp::get_start_method() == expected ? 0 : 1);
}
}  // namespace

TEST_CASE("context: the three start methods, fork first", "[context]") {
  CHECK(mp::get_all_start_methods() == std::vector<std::string>{"fork", "spawn", "forkserver"});
}

TEST_CASE("context: set_start_method once, then only with force", "[context]") {
  mp::set_start_method(std::nullopt, true);  // back to "not set"
  CHECK_FALSE(mp::get_start_method(true).has_value());
  mp::set_start_method("spawn");
  CHECK(mp::get_start_method() == "spawn");
  CHECK_THROWS_WITH(mp::set_start_method("fork"), "context has already been set");
  CHECK_THROWS_AS(mp::set_start_method("fork"), mp::ProcessError);
  mp::set_start_method("forkserver", true);
  CHECK(mp::get_start_method() == "forkserver");
  CHECK_THROWS_AS(mp::set_start_method("threads", true), mp::ValueError);

  mp::set_start_method(std::nullopt, true);
  CHECK(mp::get_start_method() == "fork");  // the default, fixed by asking for it (as Python)
  CHECK(mp::get_start_method(true) == "fork");
  CHECK_THROWS_AS(mp::set_start_method("spawn"), mp::ProcessError);
  mp::set_start_method("fork", true);
}

TEST_CASE("context: get_context names its method; unknown names are a ValueError", "[context]") {
  CHECK(mp::get_context("spawn").get_start_method() == "spawn");
  CHECK(mp::get_context("forkserver").get_start_method() == "forkserver");
  CHECK(mp::get_context("fork").get_start_method() == "fork");
  CHECK(mp::get_context().get_start_method() == mp::get_start_method());
  CHECK_THROWS_WITH(mp::get_context("vfork"), Catch::Contains("cannot find context for 'vfork'"));
  CHECK(mp::SpawnContext{}.get_start_method() == "spawn");
  CHECK(mp::ForkServerContext{}.get_start_method() == "forkserver");
  CHECK(mp::ForkContext{}.get_start_method() == "fork");
}

TEST_CASE("context: the default context follows set_start_method at start()", "[context][spawn]") {
  mp::set_start_method("spawn", true);
  mp::Process p([] {});  // a captureless lambda crosses exec
  mp::set_start_method("fork", true);
  int captured = 1;
  mp::Process q([captured] { std::exit(captured); });
  mp::set_start_method("spawn", true);
  CHECK_THROWS_AS(q.start(), mp::ProcessError);  // the method in force at start() decides
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 0);
  mp::set_start_method("fork", true);
}

TEST_CASE("context: a spawned child inherits the parent's configured start method",
          "[context][spawn]") {
  mp::set_start_method("forkserver", true);
  auto p = mp::get_context("spawn").Process(exit_with_parent_method, "forkserver");
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 0);
  mp::set_start_method("fork", true);
}

TEST_CASE("context: freeze_support returns at once in a process that was not spawned", "[context]") {
  mp::freeze_support();
  mp::freeze_support();
  SUCCEED("returned");
}

TEST_CASE("context: module functions are also on contexts", "[context]") {
  auto ctx = mp::get_context("spawn");
  CHECK(ctx.cpu_count() == mp::cpu_count());
  CHECK(ctx.current_process().pid() == ::getpid());
  CHECK_FALSE(ctx.parent_process().has_value());
  CHECK(ctx.active_children().size() == mp::active_children().size());
}

TEST_CASE("Context: the shared-object factories build working objects for that context's children",
          "[context][spawn]") {
  auto ctx = mp::get_context("spawn");
  auto q = ctx.Queue<int>(2);
  auto jq = ctx.JoinableQueue<std::string>();
  auto sq = ctx.SimpleQueue<int>();
  auto lock = ctx.Lock();
  auto rlock = ctx.RLock();
  auto sem = ctx.Semaphore(2);
  auto bsem = ctx.BoundedSemaphore(1);
  auto cond = ctx.Condition(lock);
  auto event = ctx.Event();
  auto barrier = ctx.Barrier(1);
  auto value = ctx.Value<double>(1.5);
  auto array = ctx.Array<int>(std::size_t{3});
  auto raw = ctx.RawValue<int>(4);
  auto raw_array = ctx.RawArray<int>(std::size_t{2});
  auto [a, b] = ctx.Pipe();
  CHECK(q.maxsize() == 2);
  auto p = ctx.Process(
      +[](mp::Queue<int> q2, mp::Event e, mp::Value<double> v, mp::Connection c) {
        q2.put(static_cast<int>(v.value() * 2));
        c.send(std::string("via pipe"));
        e.set();
      },
      q, event, value, b);
  p.start();
  CHECK(q.get(30s) == 3);
  CHECK(a.recv<std::string>() == "via pipe");
  CHECK(event.wait(30s));
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  jq.put("x");
  CHECK(jq.get(1s) == "x");
  jq.task_done();
  CHECK(jq.join(1s));
  sq.put(1);
  CHECK(sq.get(1s) == 1);
  CHECK(rlock.acquire());
  rlock.release();
  CHECK(sem.get_value() == 2);
  CHECK(bsem.acquire(false));
  bsem.release();
  CHECK(barrier.parties() == 1);
  CHECK(array.size() == 3);
  CHECK(raw.value() == 4);
  CHECK(raw_array.size() == 2);
  std::lock_guard g(cond);
}

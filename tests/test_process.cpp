// SPDX-License-Identifier: MIT
// Tests for multiprocessing/process.hpp under fork, spawn and forkserver: exit codes, values that
// crossed the process boundary, misuse errors, timeouts bounded from both sides, daemons.
#include <catch2/catch.hpp>
#include <multiprocessing.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::PipeEnd;
using test_support::elapsed_since;
using test_support::temp_dir;

// Every case runs under each start method through the compile-time contexts, so the spawn rules
// are also checked statically.
#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

void exit_with_sum(int a, std::string s) { std::exit(a + static_cast<int>(s.size())); }
void return_normally() {}
void throw_runtime_error() { throw std::runtime_error("boom from the child"); }
void underscore_exit(int code) { ::_exit(code); }
// Exit code 0 when the child's environment has none of the variables the fork server is
// loaded with (LD_BIND_NOW and the library's marker of it), 3 or 4 when one is there.
int loader_variables_absent() {
  if (std::getenv("LD_BIND_NOW") != nullptr) return 3;
  if (std::getenv("MP_BIND_NOW_ADDED") != nullptr) return 4;
  return 0;
}
void exit_unless_loader_variables_absent() { std::exit(loader_variables_absent()); }
void sleep_forever() {
  for (;;) ::pause();
}
void raise_signal(int sig) { std::raise(sig); }

void check_identity(std::string expected_name, int expected_parent, bool expected_daemon) {
  const auto me = mp::current_process();
  const auto parent = mp::parent_process();
  if (me.name() != expected_name) std::exit(10);
  if (me.pid() != ::getpid()) std::exit(11);
  if (!parent || parent->pid() != expected_parent || !parent->is_alive()) std::exit(12);
  if (me.daemon() != expected_daemon) std::exit(13);
  if (!me.is_alive()) std::exit(14);
}

void sum_vector(std::vector<std::int64_t> v, std::int64_t expected) {
  std::exit(std::accumulate(v.begin(), v.end(), std::int64_t{0}) == expected ? 42 : 1);
}

void write_file(std::string path, std::string text) {
  std::ofstream(path) << text;
}

void daemon_tries_to_start_a_child() {
  try {
    mp::Process grandchild(return_normally);
    grandchild.start();
  } catch (const mp::ProcessError& e) {
    std::exit(std::string(e.what()).find("daemonic processes are not allowed") != std::string::npos
                  ? 5
                  : 6);
  }
  std::exit(7);
}

struct Adder {  // a serializable function object (an aggregate) crosses exec by value
  int base;
  void operator()(int x) const { std::exit(base + x); }
};

void write_through(PipeEnd end, std::string text) {
  const auto n = ::write(end.fd, text.data(), text.size());
  std::exit(n == static_cast<ssize_t>(text.size()) ? 0 : 1);
}
}  // namespace

TEMPLATE_TEST_CASE("Process: a handle holding a descriptor crosses every start method",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);  // close-on-exec: spawn must pass it explicitly
  auto p = ctx.Process(write_through, PipeEnd{fds[1]}, "through the pipe");
  p.start();
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  ::close(fds[1]);
  char buffer[64] = {};
  const auto n = ::read(fds[0], buffer, sizeof buffer);
  ::close(fds[0]);
  CHECK(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "through the pipe");
}

TEMPLATE_TEST_CASE("Process: a normal return gives exitcode 0", "[process][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(return_normally);
  CHECK_FALSE(p.pid().has_value());
  CHECK_FALSE(p.exitcode().has_value());
  CHECK_FALSE(p.is_alive());
  p.start();
  REQUIRE(p.pid().has_value());
  CHECK(*p.pid() > 0);
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK_FALSE(p.is_alive());
}

TEMPLATE_TEST_CASE("Process: the fork server's loader variables never reach a child",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  // The fork server is loaded with LD_BIND_NOW (its children then resolve no call of their own)
  // and drops it once loaded; a child's programs never see it.
  REQUIRE(loader_variables_absent() == 0);  // the test itself runs without them
  TestType ctx;
  for (int i = 0; i < 2; ++i) {  // the first start may also start the server
    auto p = ctx.Process(exit_unless_loader_variables_absent);
    p.start();
    CHECK(p.join(30s));
    CHECK(p.exitcode() == 0);
  }
}

TEMPLATE_TEST_CASE("Process: arguments cross the boundary and std::exit(n) is exitcode n",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(exit_with_sum, 3, "four");  // C string -> std::string parameter
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 7);

  auto q = ctx.Process(underscore_exit, 9);
  q.start();
  q.join(30s);
  CHECK(q.exitcode() == 9);

  auto r = ctx.Process(Adder{40}, 2);
  r.start();
  r.join(30s);
  CHECK(r.exitcode() == 42);
}

TEMPLATE_TEST_CASE("Process: a large argument crosses the boundary",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  std::vector<std::int64_t> v(1 << 20);  // 8 MiB: larger than any socket buffer
  std::iota(v.begin(), v.end(), 0);
  const std::int64_t sum = std::accumulate(v.begin(), v.end(), std::int64_t{0});
  auto p = ctx.Process(sum_vector, v, sum);
  p.start();
  p.join(60s);
  CHECK(p.exitcode() == 42);
}

TEMPLATE_TEST_CASE("Process: an uncaught exception gives exitcode 1 and its type and message on stderr",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(throw_runtime_error);
  p.name("thrower");
  const std::string err = test_support::capture_stderr([&] {
    p.start();
    p.join(30s);
  });
  CHECK(p.exitcode() == 1);
  CHECK_THAT(err, Catch::Contains("Process thrower:"));
  CHECK_THAT(err, Catch::Contains("std::runtime_error: boom from the child"));
}

TEMPLATE_TEST_CASE("Process: killed by a signal gives exitcode -N", "[process][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  auto a = ctx.Process(raise_signal, SIGUSR1);
  a.start();
  a.join(30s);
  CHECK(a.exitcode() == -SIGUSR1);

  auto b = ctx.Process(sleep_forever);
  b.start();
  CHECK(b.is_alive());
  b.terminate();
  CHECK(b.join(30s));
  CHECK(b.exitcode() == -SIGTERM);

  auto c = ctx.Process(sleep_forever);
  c.start();
  c.kill();
  CHECK(c.join(30s));
  CHECK(c.exitcode() == -SIGKILL);
  c.terminate();  // no effect once ended, as in Python
  CHECK(c.exitcode() == -SIGKILL);
}

TEMPLATE_TEST_CASE("Process: join(timeout) waits as long as asked and no longer",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(sleep_forever);
  p.start();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(p.join(300ms));
  const auto waited = elapsed_since(t0);
  CHECK(waited >= 300ms);
  CHECK(waited < 2s);
  CHECK(p.is_alive());
  CHECK_FALSE(p.exitcode().has_value());

  const auto t1 = std::chrono::steady_clock::now();
  CHECK_FALSE(p.join(std::chrono::duration<double>(0.1)));
  CHECK(elapsed_since(t1) >= 100ms);
  CHECK_FALSE(p.join(-5s));  // a negative timeout does not wait

  p.terminate();
  const auto t2 = std::chrono::steady_clock::now();
  CHECK(p.join(30s));
  CHECK(elapsed_since(t2) < 5s);  // returns when the child ends, not at the timeout
}

TEMPLATE_TEST_CASE("Process: the child knows its name, pid, parent and daemon flag",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(check_identity, "named-child", static_cast<int>(::getpid()), false);
  p.name("named-child");
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 0);

  auto d = ctx.Process(check_identity, "daemon-child", static_cast<int>(::getpid()), true);
  d.name("daemon-child");
  d.daemon(true);
  d.start();
  d.join(30s);
  CHECK(d.exitcode() == 0);
}

TEMPLATE_TEST_CASE("Process: a daemonic process may not start children",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(daemon_tries_to_start_a_child);
  p.daemon(true);
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 5);
}

namespace {
// Runs in an intermediate child: starts a daemon grandchild that reports its pid through a file,
// then dies by SIGKILL. The daemon must follow it.
void parent_killed_with_daemon(std::string method, std::string pid_file) {
  auto ctx = mp::get_context(method);
  auto d = ctx.Process(sleep_forever);
  d.daemon(true);
  d.start();
  std::ofstream(pid_file) << *d.pid() << '\n';
  ::kill(::getpid(), SIGKILL);
}
}  // namespace

TEMPLATE_TEST_CASE("Process: a daemon dies when its parent is SIGKILLed",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  temp_dir dir;
  const std::string pid_file = dir.path() + "/daemon.pid";
  auto p = ctx.Process(parent_killed_with_daemon, ctx.get_start_method(), pid_file);
  p.start();
  p.join(30s);
  REQUIRE(p.exitcode() == -SIGKILL);
  pid_t daemon_pid = 0;
  std::ifstream(pid_file) >> daemon_pid;
  REQUIRE(daemon_pid > 0);
  CHECK(test_support::wait_pid_gone(daemon_pid, 10s));
}

TEST_CASE("Process: a daemon started from a short-lived thread outlives the thread", "[process][fork]") {
  // PR_SET_PDEATHSIG would kill the daemon when the *thread* that forked it exits.
  mp::Process p(sleep_forever);
  p.daemon(true);
  std::thread([&] { p.start(); }).join();
  CHECK_FALSE(p.join(300ms));
  CHECK(p.is_alive());
  p.kill();
  p.join(30s);
  CHECK(p.exitcode() == -SIGKILL);
}

TEMPLATE_TEST_CASE("Process: misuse throws as in Python", "[process][fork][spawn][forkserver]",
                   MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(sleep_forever);
  CHECK_THROWS_AS(p.join(1s), mp::ProcessError);        // join before start
  CHECK_THROWS_AS(p.terminate(), mp::ProcessError);     // terminate before start
  CHECK_THROWS_AS((void)p.sentinel(), mp::ValueError);  // Python: 'process not started'
  p.start();
  CHECK_THROWS_AS(p.start(), mp::ProcessError);         // start twice
  CHECK_THROWS_AS(p.daemon(true), mp::ProcessError);    // daemon after start
  CHECK_THROWS_WITH(p.close(), Catch::Contains("still running"));
  p.kill();
  p.join(30s);
  p.close();
  CHECK_THROWS_AS(p.is_alive(), mp::ValueError);
  CHECK_THROWS_AS(p.join(), mp::ValueError);
  CHECK_THROWS_AS(p.start(), mp::ValueError);
  CHECK_THROWS_AS((void)p.exitcode(), mp::ValueError);
  CHECK(p.name().starts_with("Process-"));  // the name stays readable, as in Python

  CHECK_THROWS_AS(mp::current_process().join(), mp::ProcessError);
  CHECK_THROWS_AS(mp::current_process().start(), mp::ProcessError);
}

TEMPLATE_TEST_CASE("Process: the sentinel becomes readable when the child ends",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto p = ctx.Process(sleep_forever);
  p.start();
  pollfd fd{p.sentinel(), POLLIN, 0};
  CHECK(::poll(&fd, 1, 100) == 0);
  p.terminate();
  CHECK(::poll(&fd, 1, 30000) == 1);
  p.join(30s);
  CHECK(p.exitcode() == -SIGTERM);
}

TEMPLATE_TEST_CASE("Process: active_children lists running children only",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto a = ctx.Process(sleep_forever);
  auto b = ctx.Process(sleep_forever);
  a.start();
  b.start();
  auto has = [](const std::vector<mp::Process>& list, const mp::Process& p) {
    for (const auto& c : list) {
      if (c.pid() == p.pid()) return true;
    }
    return false;
  };
  auto kids = mp::active_children();
  CHECK(has(kids, a));
  CHECK(has(kids, b));
  a.kill();
  a.join(30s);
  kids = mp::active_children();
  CHECK_FALSE(has(kids, a));
  CHECK(has(kids, b));
  kids.front().kill();  // handles share the process: killing the copy kills b
  b.join(30s);
  CHECK(b.exitcode() == -SIGKILL);
  CHECK_FALSE(has(mp::active_children(), b));
}

TEMPLATE_TEST_CASE("Process: output buffered before start() is printed once",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  temp_dir dir;
  const std::string out = dir.path() + "/stdout.txt";
  test_support::redirect_stdout(out, [&] {
    std::printf("buffered-before-start;");  // stdout is a file here: fully buffered
    auto p = ctx.Process(return_normally);
    p.start();
    p.join(30s);
  });
  std::stringstream text;
  text << std::ifstream(out).rdbuf();
  CHECK(text.str() == "buffered-before-start;");
}

TEMPLATE_TEST_CASE("Process: a child can start and join its own children",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  temp_dir dir;
  const std::string file = dir.path() + "/grandchild.txt";
  auto p = ctx.Process(
      +[](std::string method, std::string path) {
        auto inner = mp::get_context(method).Process(write_file, path, mp::current_process().name());
        inner.start();
        inner.join(30s);
        std::exit(inner.exitcode() == 0 ? 0 : 3);
      },
      ctx.get_start_method(), file);
  const std::string parent_name = p.name();
  p.start();
  p.join(60s);
  CHECK(p.exitcode() == 0);
  std::string grandchild_saw;
  std::getline(std::ifstream(file), grandchild_saw);
  CHECK(grandchild_saw == parent_name);  // the grandchild was started by p
}

TEST_CASE("Process: a fork target may capture; spawn rejects it in start()", "[process][fork][spawn]") {
  int captured = 17;
  mp::Process p([captured] { std::exit(captured); });
  p.start();
  p.join(30s);
  CHECK(p.exitcode() == 17);

  for (const char* method : {"spawn", "forkserver"}) {
    auto q = mp::get_context(method).Process([captured] { std::exit(captured); });
    CHECK_THROWS_WITH(q.start(), Catch::Contains("capturing lambda") && Catch::Contains(method));
    CHECK_FALSE(q.pid().has_value());
  }
}

TEST_CASE("Process: spawn rejects a non-serializable argument in start()", "[process][spawn]") {
  int value = 3;
  auto q = mp::get_context("spawn").Process(+[](int* v) { std::exit(*v); }, &value);
  CHECK_THROWS_WITH(q.start(), Catch::Contains("argument 1") && Catch::Contains("not serializable"));
  auto f = mp::get_context("fork").Process(+[](int* v) { std::exit(*v); }, &value);
  f.start();
  f.join(30s);
  CHECK(f.exitcode() == 3);
}

namespace {
class Downloader : public mp::Process {  // Python: class Downloader(Process): def run(self): ...
 public:
  explicit Downloader(int code) : code_(code) {}
  void run() override { std::exit(code_ + (mp::current_process().pid() == ::getpid() ? 1 : 0)); }

 private:
  int code_;
};
}  // namespace

TEST_CASE("Process: a subclass overriding run() works under fork and is refused under spawn",
          "[process][fork][spawn]") {
  Downloader d(20);
  CHECK(d.name().starts_with("Downloader-"));  // Python: type(self).__name__ + '-' + identity
  CHECK_FALSE(d.pid().has_value());
  d.start();
  CHECK(d.pid().has_value());
  d.join(30s);
  CHECK(d.exitcode() == 21);

  mp::set_start_method("spawn", true);
  Downloader s(20);
  CHECK_THROWS_WITH(s.start(), Catch::Contains("Downloader") && Catch::Contains("overrides run()") &&
                                   Catch::Contains("SpawnableProcess"));
  mp::set_start_method("fork", true);
}

namespace {
class ClockProcess : public mp::SpawnableProcess<ClockProcess> {
 public:
  ClockProcess() = default;
  ClockProcess(int ticks, std::string label) : ticks_(ticks), label_(std::move(label)) {}
  void run() override {
    // Members crossed the boundary; in the child this object is the current process.
    const bool self = mp::current_process().pid() == ::getpid() && pid() == ::getpid() &&
                      name() == mp::current_process().name();
    std::exit(self && label_ == "tick" ? ticks_ : 99);
  }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(ticks_, label_);
  }

 private:
  int ticks_ = 0;
  std::string label_;
};
}  // namespace

TEST_CASE("Process: a SpawnableProcess subclass runs under every start method",
          "[process][fork][spawn][forkserver]") {
  for (const char* method : {"fork", "spawn", "forkserver"}) {
    INFO(method);
    mp::set_start_method(method, true);
    ClockProcess clock(5, "tick");
    clock.name("clock");
    clock.start();
    CHECK(clock.join(30s));
    CHECK(clock.exitcode() == 5);
    CHECK(clock.name() == "clock");
  }
  mp::set_start_method("fork", true);
}

TEST_CASE("Process: names follow Python's Process-N and Process-N:M", "[process]") {
  mp::Process a(return_normally);
  mp::Process b(return_normally);
  const auto number = [](const std::string& name) { return std::stoi(name.substr(name.find('-') + 1)); };
  CHECK(a.name().starts_with("Process-"));
  CHECK(number(b.name()) == number(a.name()) + 1);
  CHECK(mp::current_process().name() == "MainProcess");
  CHECK_FALSE(mp::parent_process().has_value());
  CHECK(mp::current_process().authkey().size() == 32);
}

TEST_CASE("Process: cpu_count is positive", "[process]") { CHECK(mp::cpu_count() >= 1); }

TEST_CASE("Process: a spawned child refuses code from a different binary", "[process][spawn]") {
  // What a child does with the parent's reference to a function: find it in its own image and
  // check that the image is the parent's build.
  auto ref = mp::detail::make_code_ref(mp::detail::code_address(&return_normally));
  CHECK(ref.object.empty());  // the main program
  CHECK(ref.identity == mp::detail::main_program_identity());
  CHECK(ref.image == mp::detail::exec_token());
  CHECK(ref.image != 0);
  CHECK(mp::detail::resolve_code_ref(ref) == mp::detail::code_address(&return_normally));
  // As a child of another exec sees it: found by its offset in the main program.
  ref.image = ~mp::detail::exec_token();
  ref.address = 0;
  CHECK(mp::detail::resolve_code_ref(ref) == mp::detail::code_address(&return_normally));

  auto other = ref;
  other.identity = "build-id:0123456789abcdef";
  CHECK_THROWS_WITH(mp::detail::resolve_code_ref(other),
                    Catch::Contains("not running the parent's binary") &&
                        Catch::Contains("build-id:0123456789abcdef"));
  auto missing = ref;
  missing.object = "/nonexistent/libnothing.so";
  CHECK_THROWS_AS(mp::detail::resolve_code_ref(missing), mp::ProcessError);
}

TEMPLATE_TEST_CASE("Process: with SIGCHLD ignored, join still returns and reports a lost status",
                   "[process][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  // The kernel reaps children itself then; the exit status is gone, but nothing may hang or throw,
  // even when the child ends before start() returns (repeated to hit that window).
  struct sigaction ignore {}, saved{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &ignore, &saved);
  TestType ctx;
  for (int i = 0; i < 20; ++i) {
    auto p = ctx.Process(underscore_exit, 3);
    p.start();
    CHECK(p.join(30s));
    const int code = p.exitcode().value_or(-1);
    CHECK((code == 255 || code == 3));  // 3 when a fork server reaped it and passed the status on
  }
  ::sigaction(SIGCHLD, &saved, nullptr);
}

namespace {
void report_parent_then_sleep(std::string path) {
  std::ofstream(path) << ::getppid() << '\n';  // under forkserver: the server's pid
  sleep_forever();
}
}  // namespace

TEST_CASE("Process: a fork server that dies under a running child never hangs join",
          "[process][forkserver]") {
  temp_dir dir;
  const std::string file = dir.path() + "/server.pid";
  auto p = mp::get_context("forkserver").Process(report_parent_then_sleep, file);
  p.start();
  pid_t server = 0;
  for (int i = 0; i < 500 && server == 0; ++i) {
    std::ifstream(file) >> server;
    if (server == 0) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(server > 0);
  REQUIRE(server != ::getpid());
  ::kill(server, SIGKILL);
  CHECK_FALSE(p.join(200ms));  // the child outlives its server
  CHECK(p.is_alive());
  p.kill();
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 255);  // the status died with the server (Python reports 255 too)

  auto q = mp::get_context("forkserver").Process(underscore_exit, 4);  // a new server starts
  q.start();
  q.join(30s);
  CHECK(q.exitcode() == 4);
}

namespace {
void report_parent(std::string path) { std::ofstream(path) << ::getppid() << '\n'; }

// A client of its own fork server: starts one child there, then writes down the server's
// children (the one it keeps forked ahead, waiting) and ends.
void use_a_fork_server(std::string dir) {
  auto p = mp::get_context("forkserver").Process(report_parent, dir + "/server.pid");
  p.start();
  if (!p.join(30s) || p.exitcode() != 0) std::_Exit(3);
  pid_t server = 0;
  std::ifstream(dir + "/server.pid") >> server;
  const std::string list = "/proc/" + std::to_string(server) + "/task/" + std::to_string(server) + "/children";
  std::ifstream in(list);
  std::ofstream out(dir + "/waiting.pids");
  for (pid_t pid = 0; in >> pid;) out << pid << '\n';
}

// Ended: gone, or a zombie that nobody reaps.
bool ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}
}  // namespace

TEST_CASE("Process: the child a fork server keeps waiting ends with its client",
          "[process][forkserver]") {
  temp_dir dir;
  auto client = mp::get_context("fork").Process(use_a_fork_server, dir.path());
  client.start();
  REQUIRE(client.join(60s));
  REQUIRE(client.exitcode() == 0);
  std::vector<pid_t> waiting;
  std::ifstream in(dir.path() + "/waiting.pids");
  for (pid_t pid = 0; in >> pid;) waiting.push_back(pid);
  // The child forked ahead, and the one that ran if the server had not reaped it yet.
  REQUIRE_FALSE(waiting.empty());
  CHECK(waiting.size() <= 2);
  const auto begin = std::chrono::steady_clock::now();
  auto all_ended = [&] { return std::all_of(waiting.begin(), waiting.end(), ended); };
  while (!all_ended() && std::chrono::steady_clock::now() - begin < 10s) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(all_ended());
}

// SPDX-License-Identifier: MIT
// multiprocessing/process.hpp
//
// Defines mp::Process and the module functions current_process(), parent_process(),
// active_children() and cpu_count() (Python: multiprocessing.process / multiprocessing.Process).
//
// A Process is a cheap handle: copies share one underlying process, like Python references. It is
// started under the start method of the context that created it (mp::Process itself uses the
// default start method; see context.hpp). Under fork the target may be any callable, capturing
// lambdas included; under spawn and forkserver it must cross exec (see detail/target.hpp) or
// start() throws ProcessError naming the reason.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include "detail/child.hpp"
#include "detail/posix.hpp"
#include "detail/runtime.hpp"
#include "detail/spawn.hpp"
#include "detail/target.hpp"
#include "errors.hpp"
#include "timeout.hpp"

namespace multiprocessing {

class Process;
class Context;

/// Python: multiprocessing.current_process(). A handle to this process: name() (settable),
/// pid(), daemon(), authkey(); is_alive() is true.
[[nodiscard]] Process current_process();

/// Python: multiprocessing.parent_process(). The process that started this one, or nullopt in
/// the main process. Its is_alive() and join(timeout) watch the parent through a pidfd.
[[nodiscard]] std::optional<Process> parent_process();

/// Python: multiprocessing.active_children(). Reaps children that have ended and returns the
/// ones still running.
[[nodiscard]] std::vector<Process> active_children();

/// Python: multiprocessing.cpu_count(): the number of online CPUs (at least 1).
[[nodiscard]] int cpu_count() noexcept;

/// Python: multiprocessing.Process. Runs a target (or an overridden run()) in a child process.
///
///   mp::Process p(worker, 1, "two");   // args are copied, as Python's args=(...)
///   p.start(); p.join(1s); p.exitcode();
///
/// Exit codes are Python's: 0 after a normal return, 1 after an uncaught exception (its type and
/// what() are printed to stderr), n after std::exit(n), -N after signal N.
class Process {
 public:
  /// A process with no target: run() does nothing unless a subclass overrides it.
  Process();

  /// A process that will call `target(args...)` in the child. Arguments are decayed copies
  /// (C strings become std::string and still bind to `const char*` parameters).
  template <class F, class... Args>
    requires(!std::is_base_of_v<Process, std::remove_cvref_t<F>>) &&
            std::invocable<std::decay_t<F>, detail::stored_arg_t<Args>...>
  explicit Process(F&& target, Args&&... args);

  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept = default;
  virtual ~Process() = default;

  /// The child's body. Python: Process.run(). Calls the target; override it in a subclass.
  /// A subclass that overrides run() starts under fork as it is; to start under spawn or
  /// forkserver it derives from SpawnableProcess<Derived> instead, which carries it across exec.
  virtual void run();

  /// Starts the child. Python: Process.start().
  /// @throws ProcessError when started twice, from a process other than its creator, from a
  ///   daemonic process, or when the target cannot cross exec under spawn/forkserver (the message
  ///   says why) or a spawned child fails its handshake (the message says why).
  /// @throws ValueError when the process object is closed.
  void start();

  /// Waits until the child ends or `timeout` passes. Python: Process.join(timeout).
  /// @returns true when the child has ended (Python returns None; check exitcode()).
  /// @throws ProcessError when not started, or when joining itself or a process this one did not
  ///   start. @throws ValueError when closed.
  bool join(Timeout timeout = {});  // NOLINT(modernize-use-nodiscard): Python's join returns None

  /// Python: Process.is_alive(). Reaps the child when it has ended.
  [[nodiscard]] bool is_alive() const;

  /// Python: Process.pid. nullopt before start().
  [[nodiscard]] std::optional<pid_t> pid() const;
  /// Python: Process.ident (same as pid()).
  [[nodiscard]] std::optional<pid_t> ident() const { return pid(); }

  /// Python: Process.exitcode. nullopt while running (or before start); 0, 1, n, or -N for signal N.
  [[nodiscard]] std::optional<int> exitcode() const;

  /// Sends SIGTERM. Python: Process.terminate(). No effect once the child has ended.
  void terminate();
  /// Sends SIGKILL. Python: Process.kill().
  void kill();

  /// Releases the process's resources. Python: Process.close().
  /// @throws ValueError while the child is still running.
  void close();

  /// A descriptor (the child's pidfd) that becomes readable when the child ends.
  /// Python: Process.sentinel. @throws ValueError before start().
  [[nodiscard]] int sentinel() const;

  /// Python: Process.name: "Process-1" ("Process-1:2" in a grandchild); a subclass is named after
  /// its class, "Downloader-1", as in Python.
  [[nodiscard]] std::string name() const;
  void name(std::string value);

  /// Python: Process.daemon. A daemonic child is terminated when its parent exits (also when the
  /// parent is killed) and may not start children. @throws ProcessError when set after start().
  [[nodiscard]] bool daemon() const;
  void daemon(bool value);

  /// Python: Process.authkey (32 random bytes in the main process, inherited by children).
  [[nodiscard]] std::vector<unsigned char> authkey() const;

 private:
  friend Process current_process();
  friend std::optional<Process> parent_process();
  friend std::vector<Process> active_children();
  friend class Context;

  template <class Derived>
  friend class SpawnableProcess;

  explicit Process(std::shared_ptr<detail::process_state> state) : state_(std::move(state)) {}
  /// The body to send across exec when a subclass overrides run(); only SpawnableProcess has one.
  [[nodiscard]] virtual std::unique_ptr<detail::target_base> subclass_target() const { return nullptr; }
  /// In a child: this object is now the current process (Python rebinds _current_process).
  void become_current_process() { state_ = detail::runtime::get().self; }
  void init_child_state();
  [[nodiscard]] std::string default_name(const std::vector<int>& identity) const;
  [[nodiscard]] detail::process_state& state() const;
  void use_start_method(detail::start_method method) {
    std::lock_guard lock(state().mu);
    state().method = method;
  }
  void start_fork(detail::process_state& st);
  void start_exec(detail::process_state& st, detail::start_method method);
  void signal(int sig, const char* what);

  std::shared_ptr<detail::process_state> state_;
  std::shared_ptr<detail::target_base> target_;
};

/// A Process subclass that can also start under spawn and forkserver (Python pickles the Process
/// object; C++ needs the subclass's type and a way to copy its members):
///
///   class Downloader : public mp::SpawnableProcess<Downloader> {
///    public:
///     Downloader() = default;                       // the child default-constructs, then loads
///     explicit Downloader(int seconds) : seconds_(seconds) {}
///     void run() override { ... }
///     template <class Archive> void serialize(Archive& ar) { ar(seconds_); }
///    private:
///     int seconds_ = 0;
///   };
///
/// Derived must be default-constructible and have a member serialize(Archive&) listing the members
/// run() needs; the child rebuilds a Derived from them and calls run() on it.
template <class Derived>
class SpawnableProcess : public Process {
 public:
  using Process::Process;

 private:
  struct body final : detail::target_base {
    explicit body(const Derived* self) : self_(self) {}
    void invoke() override {
      owned_->become_current_process();
      owned_->run();
    }
    [[nodiscard]] std::string spawn_obstacle() const override { return {}; }
    [[nodiscard]] detail::code_ref spawn_entry() const override {
      return detail::make_code_ref(detail::code_address(&decode));
    }
    void encode(serialize::Writer& out) const override {
      const_cast<Derived*>(self_)->serialize(out);  // serialize(Archive&) is non-const by convention
    }
    static std::unique_ptr<detail::target_base> decode(serialize::Reader& in) {
      auto result = std::make_unique<body>(nullptr);
      result->owned_ = std::make_unique<Derived>();
      result->owned_->serialize(in);
      return result;
    }
    const Derived* self_;
    std::unique_ptr<Derived> owned_;  // in the child
  };

  [[nodiscard]] std::unique_ptr<detail::target_base> subclass_target() const final {
    static_assert(std::is_base_of_v<SpawnableProcess, Derived>,
                  "mp: SpawnableProcess<Derived> must be the base of Derived itself");
    static_assert(std::default_initializable<Derived>,
                  "mp: a SpawnableProcess subclass must be default-constructible (the spawned "
                  "child constructs one, then loads its members)");
    static_assert(detail::has_member_serialize<Derived>,
                  "mp: a SpawnableProcess subclass needs a member template <class Archive> void "
                  "serialize(Archive& ar) { ar(members...); }");
    if (typeid(*this) != typeid(Derived)) return nullptr;  // a further subclass: not ours to copy
    return std::make_unique<body>(static_cast<const Derived*>(this));
  }
};

// ---------------------------------------------------------------------------------------------

namespace detail {

/// Removes a reaped child from this process's list of children.
inline void forget_child(const process_state* st) {
  runtime& rt = runtime::get();
  std::lock_guard lock(rt.mu);
  std::erase_if(rt.children, [&](const auto& c) { return c.get() == st; });
}

/// Waits until the child behind `st` ends or `until` passes; records and returns its exit code.
/// The exit code of a fork server's child comes from the server, through a pipe; if the server
/// died first, it is lost and reported as 255 (as Python's forkserver does).
inline std::optional<int> wait_child(process_state& st, const deadline& until) {
  for (;;) {
    int fd = -1;
    bool via_server = false;
    {
      std::lock_guard lock(st.mu);
      if (st.exitcode || !st.pidfd) return st.exitcode;
      via_server = static_cast<bool>(st.status_fd);
      // Both the client and the fork server wake when the child ends; the server's report then
      // follows at once (measured: faster than waiting for the report alone).
      fd = st.pidfd.get();
    }
    if (!poll_fd(fd, POLLIN, until, "process sentinel")) return std::nullopt;
    std::optional<int> code;
    {
      std::lock_guard lock(st.mu);
      if (st.exitcode) return st.exitcode;
      if (via_server) {
        std::int32_t value = 0;
        const read_status rs = read_exact(st.status_fd.get(), &value, sizeof value,
                                          deadline(std::chrono::seconds(5)), "forkserver exit code");
        st.status_fd.reset();
        if (rs != read_status::ok) continue;  // the server is gone: wait on the pidfd instead
        code = value;
      } else {
        // Our own child; or a fork server child whose server died, which waitid refuses with
        // ECHILD and reap_pidfd reports as lost_exit_status (255).
        code = reap_pidfd(fd, true);
      }
      st.exitcode = code;
    }
    forget_child(&st);
    return code;
  }
}

/// Reaps every child that has ended (Python: process._cleanup()).
inline void reap_finished_children() {
  std::vector<std::shared_ptr<process_state>> kids;
  {
    runtime& rt = runtime::get();
    std::lock_guard lock(rt.mu);
    kids = rt.children;
  }
  for (auto& k : kids) wait_child(*k, deadline(std::chrono::nanoseconds::zero()));
}

/// Python: multiprocessing.util._exit_function. At exit: terminate daemonic children (SIGTERM,
/// then SIGKILL after a one-second grace, where Python would wait forever), join the others, and
/// stop the fork server.
inline void exit_function() noexcept {
  try {
    runtime& rt = runtime::get();
    std::vector<std::shared_ptr<process_state>> kids;
    {
      std::lock_guard lock(rt.mu);
      kids = rt.children;
    }
    for (auto& k : kids) {
      std::lock_guard lock(k->mu);
      if (k->daemon && !k->exitcode && k->pidfd) pidfd_send_signal(k->pidfd.get(), SIGTERM);
    }
    for (auto& k : kids) {
      if (k->daemon && !wait_child(*k, deadline(std::chrono::seconds(1)))) {
        {
          std::lock_guard lock(k->mu);
          if (k->pidfd) pidfd_send_signal(k->pidfd.get(), SIGKILL);
        }
      }
      wait_child(*k, deadline());
    }
    std::lock_guard lock(rt.forkserver.mu);
    stop_forkserver(rt.forkserver);
  } catch (...) {  // at exit there is nobody left to report to
  }
}

/// A process spawned by this library that reached library code before mp::freeze_support():
/// without this check it would start processes of its own, recursively.
inline void refuse_if_unbootstrapped() {
  if (std::getenv(spawn_env) == nullptr && std::getenv(forkserver_env) == nullptr) return;
  std::fputs(
      "multiprocessing: this process was started by the spawn or forkserver method, but main() "
      "tried to start a process before calling mp::freeze_support(); make "
      "mp::freeze_support() the first statement of main()\n",
      stderr);
  ::_exit(1);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------

inline Process::Process() { init_child_state(); }

template <class F, class... Args>
  requires(!std::is_base_of_v<Process, std::remove_cvref_t<F>>) &&
          std::invocable<std::decay_t<F>, detail::stored_arg_t<Args>...>
Process::Process(F&& target, Args&&... args)
    : target_(detail::bind_target(std::forward<F>(target), std::forward<Args>(args)...)) {
  init_child_state();
}

inline void Process::init_child_state() {
  state_ = std::make_shared<detail::process_state>();
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  auto& self = *rt.self;
  state_->identity = self.identity;
  state_->identity.push_back(++self.child_counter);
  // The name stays empty until asked for or started: Python names a process after its class
  // ("Producer-1"), and the class is known only once construction is complete.
}

inline std::string Process::default_name(const std::vector<int>& identity) const {
  // Python: type(self).__name__ + '-' + ':'.join(identity). The unqualified class name.
  std::string type = detail::demangle(typeid(*this).name());
  const std::size_t open = std::min(type.find('<'), type.size());
  const std::size_t colons = type.rfind("::", open);
  if (colons != std::string::npos) type.erase(0, colons + 2);
  std::string name = type + '-';
  for (std::size_t i = 0; i < identity.size(); ++i) {
    if (i > 0) name += ':';
    name += std::to_string(identity[i]);
  }
  return name;
}

inline detail::process_state& Process::state() const {
  if (!state_) throw ValueError("process object was moved from");
  return *state_;
}

inline void Process::run() {
  if (target_) target_->invoke();
}

inline void Process::start() {
  detail::refuse_if_unbootstrapped();
  detail::process_state& st = state();
  detail::runtime& rt = detail::runtime::get();
  std::optional<detail::start_method> chosen;
  {
    std::lock_guard lock(st.mu);
    if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
    if (st.kind != detail::process_kind::child) {
      throw ProcessError("can only start a process object created by current process");
    }
    if (st.at == detail::process_state::phase::started) {
      throw ProcessError("cannot start a process twice");
    }
    if (st.creator != ::getpid()) {
      throw ProcessError("can only start a process object created by current process");
    }
    {
      std::lock_guard rt_lock(rt.mu);
      if (rt.self->daemon) {
        throw ProcessError("daemonic processes are not allowed to have children");
      }
    }
    st.at = detail::process_state::phase::started;  // claims the start against other threads
    chosen = st.method;
    if (st.name.empty()) st.name = default_name(st.identity);  // fixed from here on
  }
  detail::reap_finished_children();
  try {
    const detail::start_method method = chosen ? *chosen : rt.default_method();
    if (method == detail::start_method::fork) {
      start_fork(st);
    } else {
      start_exec(st, method);
    }
  } catch (...) {
    std::lock_guard lock(st.mu);
    st.at = detail::process_state::phase::created;
    throw;
  }
  std::lock_guard lock(rt.mu);
  rt.children.push_back(state_);
  if (!rt.exit_handler_registered) {
    rt.exit_handler_registered = true;
    std::atexit([] { detail::exit_function(); });
  }
}

inline void Process::start_fork(detail::process_state& st) {
  detail::runtime& rt = detail::runtime::get();
  (void)rt.own_pidfd();
  (void)rt.devnull_fd();
  const detail::child_identity who = detail::identity_for_child(st);
  // When the kernel reaps children itself, a child that ends at once could vanish before
  // pidfd_open(); it then waits on this gate until the parent holds its pidfd.
  std::optional<std::pair<detail::unique_fd, detail::unique_fd>> gate;
  if (detail::children_auto_reaped()) gate = detail::make_pipe("fork gate");
  detail::flush_std_streams();
  pid_t pid = -1;
  {
    // Held across fork() so that the child's copies of the runtime and of the loader's lock are
    // consistent (see detail/code_ref.hpp).
    std::scoped_lock lock(rt.mu, detail::loader_mutex());
    pid = ::fork();
  }
  if (pid == -1) detail::throw_errno("fork " + who.name);
  if (pid == 0) {
    if (gate) {
      gate->second.reset();
      std::uint8_t go = 0;
      if (detail::read_exact(gate->first.get(), &go, 1, detail::deadline(), "fork gate") !=
          detail::read_status::ok) {
        ::_exit(255);  // the parent could not take us on
      }
      gate.reset();
    }
    detail::become_child(who, std::move(rt.self_pidfd));
    become_current_process();  // as in Python: in the child, this object is the current process
    detail::run_child([this] { run(); });
  }
  std::lock_guard lock(st.mu);
  st.pid = pid;
  try {
    st.pidfd = detail::pidfd_open(pid);
  } catch (...) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    throw;
  }
  if (gate) {
    const std::uint8_t go = 1;
    detail::write_all(gate->second.get(), &go, 1, "fork gate");
  }
}

inline void Process::start_exec(detail::process_state& st, detail::start_method method) {
  const std::string how(detail::to_string(method));
  std::unique_ptr<detail::target_base> subclass;
  if (typeid(*this) != typeid(Process)) {
    subclass = subclass_target();
    if (!subclass) {
      throw ProcessError("cannot start " + st.name + " under " + how + ": " +
                         detail::demangle(typeid(*this).name()) +
                         " overrides run(), which cannot cross exec; derive it from "
                         "mp::SpawnableProcess<" + detail::demangle(typeid(*this).name()) +
                         "> (with a serialize() member), use fork, or pass the work as a target");
    }
  } else if (!target_) {
    target_ = detail::bind_target(+[] {});
  }
  const detail::target_base& body = subclass ? *subclass : *target_;
  if (std::string why = body.spawn_obstacle(); !why.empty()) {
    throw ProcessError("cannot start " + st.name + " under " + how + ": " + why);
  }
  detail::runtime& rt = detail::runtime::get();
  const int parent_pidfd = rt.own_pidfd();
  const detail::spawn_request_t request = detail::spawn_request(body, detail::identity_for_child(st));

  pid_t pid = 0;
  detail::unique_fd mine;  // our end of the handshake socket
  detail::unique_fd pidfd;
  detail::unique_fd status;
  std::size_t queued = 0;
  if (method == detail::start_method::spawn) {
    auto [ours, theirs] = detail::socket_pair("spawn handshake");
    mine = std::move(ours);
    // A spawned child that finds its request waiting may end before pidfd_open() below; when the
    // kernel reaps children itself it would then be gone, so the request waits for the pidfd.
    const bool hold_request = detail::children_auto_reaped();
    if (!hold_request) queued = detail::queue_request(mine.get(), request, parent_pidfd);
    pid = detail::spawn_self(theirs.get(), detail::spawn_env);
    pidfd = detail::pidfd_open(pid);
    if (hold_request) queued = detail::queue_request(mine.get(), request, parent_pidfd);
  } else {
    // The server's child is already there, waiting for its request.
    auto child = detail::forkserver_fork();
    pid = child.pid;
    pidfd = std::move(child.pidfd);
    status = std::move(child.status);
    mine = std::move(child.sock);
    queued = detail::queue_request(mine.get(), request, parent_pidfd);
  }

  const detail::handshake_result result = detail::finish_handshake(mine.get(), request.bytes, queued);
  if (result.outcome == detail::handshake_result::ok) {
    std::lock_guard lock(st.mu);
    st.pid = pid;
    st.pidfd = std::move(pidfd);
    st.status_fd = std::move(status);
    return;
  }
  // The child will not run: make sure it is gone and say why.
  if (result.outcome != detail::handshake_result::gone) {
    detail::pidfd_send_signal(pidfd.get(), SIGKILL);
  }
  detail::process_state dead;
  dead.pidfd = std::move(pidfd);
  dead.status_fd = std::move(status);
  const std::optional<int> code = detail::wait_child(dead, detail::deadline(std::chrono::seconds(10)));
  const std::string code_text = code ? std::to_string(*code) : "unknown";
  switch (result.outcome) {
    case detail::handshake_result::refused:
      throw ProcessError("cannot start " + st.name + " under " + how + ": " + result.message);
    case detail::handshake_result::timed_out:
      throw ProcessError("cannot start " + st.name + " under " + how +
                         ": the child did not complete its handshake in time (does main() begin "
                         "with mp::freeze_support()? MP_HANDSHAKE_TIMEOUT sets the limit)");
    default:
      throw ProcessError("cannot start " + st.name + " under " + how + ": the child exited with code " +
                         code_text +
                         " before its handshake (does main() begin with mp::freeze_support()?)");
  }
}

inline bool Process::join(Timeout timeout) {
  detail::process_state& st = state();
  detail::deadline until(timeout.get());
  detail::process_kind kind{};
  {
    std::lock_guard lock(st.mu);
    if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
    kind = st.kind;
    if (kind == detail::process_kind::self) throw ProcessError("a process cannot join itself");
    if (kind == detail::process_kind::child) {
      if (st.creator != ::getpid()) throw ProcessError("can only join a child process");
      if (st.at != detail::process_state::phase::started) {
        throw ProcessError("can only join a started process");
      }
    }
  }
  if (kind == detail::process_kind::parent) {
    return detail::poll_fd(st.pidfd.get(), POLLIN, until, "parent sentinel");
  }
  return detail::wait_child(st, until).has_value();
}

inline bool Process::is_alive() const {
  detail::process_state& st = state();
  {
    std::lock_guard lock(st.mu);
    if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
    if (st.kind == detail::process_kind::self) return true;
    if (st.kind == detail::process_kind::parent) {
      return !detail::poll_fd(st.pidfd.get(), POLLIN, detail::deadline(std::chrono::nanoseconds::zero()),
                              "parent sentinel");
    }
    if (st.creator != ::getpid()) throw ProcessError("can only test a child process");
    if (st.at != detail::process_state::phase::started) return false;
  }
  return !detail::wait_child(st, detail::deadline(std::chrono::nanoseconds::zero())).has_value();
}

inline std::optional<pid_t> Process::pid() const {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
  if (st.kind == detail::process_kind::self) return ::getpid();
  if (st.pid == 0) return std::nullopt;
  return st.pid;
}

inline std::optional<int> Process::exitcode() const {
  detail::process_state& st = state();
  {
    std::lock_guard lock(st.mu);
    if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
    if (st.kind != detail::process_kind::child || st.at != detail::process_state::phase::started) {
      return std::nullopt;
    }
    if (st.creator != ::getpid()) return st.exitcode;
  }
  return detail::wait_child(st, detail::deadline(std::chrono::nanoseconds::zero()));
}

inline void Process::signal(int sig, const char* what) {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
  if (st.kind != detail::process_kind::child || !st.pidfd) {
    throw ProcessError(std::string("can only ") + what + " a started child process");
  }
  if (!st.exitcode) detail::pidfd_send_signal(st.pidfd.get(), sig);
}

inline void Process::terminate() { signal(SIGTERM, "terminate"); }
inline void Process::kill() { signal(SIGKILL, "kill"); }

inline void Process::close() {
  detail::process_state& st = state();
  bool started_here = false;
  {
    std::lock_guard lock(st.mu);
    started_here = st.kind == detail::process_kind::child &&
                   st.at == detail::process_state::phase::started && st.creator == ::getpid();
  }
  if (started_here && !exitcode()) {
    throw ValueError("Cannot close a process while it is still running. You should first call "
                     "join() or terminate().");
  }
  {
    std::lock_guard lock(st.mu);
    st.pidfd.reset();
    st.status_fd.reset();
    st.at = detail::process_state::phase::closed;
  }
  target_.reset();
  detail::forget_child(&st);
}

inline int Process::sentinel() const {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  if (st.at == detail::process_state::phase::closed) throw ValueError("process object is closed");
  if (!st.pidfd) throw ValueError("process not started");
  return st.pidfd.get();  // readable once the process has ended, whoever reaps it
}

inline std::string Process::name() const {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  return st.name.empty() ? default_name(st.identity) : st.name;
}

inline void Process::name(std::string value) {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  st.name = std::move(value);
}

inline bool Process::daemon() const {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  return st.daemon;
}

inline void Process::daemon(bool value) {
  detail::process_state& st = state();
  std::lock_guard lock(st.mu);
  if (st.at != detail::process_state::phase::created) throw ProcessError("process has already started");
  st.daemon = value;
}

inline std::vector<unsigned char> Process::authkey() const {
  detail::process_state& st = state();
  if (st.kind == detail::process_kind::self) {
    std::lock_guard lock(st.mu);
    return st.authkey;
  }
  return current_process().authkey();
}

// ---------------------------------------------------------------------------------------------

inline Process current_process() {
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  return Process(rt.self);
}

inline std::optional<Process> parent_process() {
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  if (rt.parent_pid == 0) return std::nullopt;
  auto st = std::make_shared<detail::process_state>();
  st->kind = detail::process_kind::parent;
  st->at = detail::process_state::phase::started;
  st->name = rt.parent_name;
  st->pid = rt.parent_pid;
  if (rt.parent_pidfd) {
    const int fd = ::fcntl(rt.parent_pidfd.get(), F_DUPFD_CLOEXEC, 0);
    if (fd == -1) detail::throw_errno("dup parent pidfd");
    st->pidfd.reset(fd);
  } else {
    st->pidfd = detail::pidfd_open(rt.parent_pid);
  }
  return Process(std::move(st));
}

inline std::vector<Process> active_children() {
  detail::reap_finished_children();
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  std::vector<Process> out;
  out.reserve(rt.children.size());
  for (const auto& c : rt.children) out.push_back(Process(c));
  return out;
}

inline int cpu_count() noexcept {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace multiprocessing

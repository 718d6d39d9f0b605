// SPDX-License-Identifier: MIT
// multiprocessing/detail/runtime.hpp
//
// The little state every process keeps about itself, as Python's multiprocessing.process module
// does: who "I" am (name, identity, daemon flag, authkey, parent), the children started and not yet
// reaped, the configured start method, and the connection to this process's fork server. One
// instance per process, never destroyed (so exit handlers and late static destructors can still
// reach it), re-initialised in a forked child.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "../errors.hpp"
#include "posix.hpp"

namespace multiprocessing::detail {

/// The three ways of starting a child (Python: the start method names).
enum class start_method { fork, spawn, forkserver };

inline constexpr std::array<std::string_view, 3> start_method_names{"fork", "spawn", "forkserver"};

[[nodiscard]] inline std::string_view to_string(start_method m) noexcept {
  return start_method_names[static_cast<std::size_t>(m)];
}

/// Parses a start method name. @throws ValueError naming the unknown method.
[[nodiscard]] inline start_method parse_start_method(std::string_view name) {
  for (std::size_t i = 0; i < start_method_names.size(); ++i) {
    if (start_method_names[i] == name) return static_cast<start_method>(i);
  }
  throw ValueError("cannot find context for '" + std::string(name) +
                   "': the start methods are fork, spawn and forkserver");
}

/// What a process object refers to: a child this process started, this process itself
/// (current_process()), or this process's parent (parent_process()).
enum class process_kind { child, self, parent };

/// The shared state behind mp::Process handles. Guarded by `mu`.
struct process_state {
  enum class phase { created, started, closed };

  std::mutex mu;
  process_kind kind = process_kind::child;  // fixed at construction
  phase at = phase::created;
  std::string name;
  std::vector<int> identity;     // Python's _identity: (1,), (1, 2), ...
  bool daemon = false;
  std::optional<start_method> method;  // nullopt: the default start method at start()
  pid_t creator = ::getpid();    // fixed at construction: only its creator may start or join it
  pid_t pid = 0;
  unique_fd pidfd;               // readable when the process ends; signals go through it
  unique_fd status_fd;           // forkserver children: the server writes the exit code here
  std::optional<int> exitcode;
  std::vector<unsigned char> authkey;  // self only (children inherit the creator's)
  int child_counter = 0;         // self only: numbers the children's names
};

/// Calls, in a parent about to fork, the library functions a forked child calls and the parent
/// may never have: dup2 and basic_ios::clear (stdin_from_devnull), each with no effect. A call
/// bound lazily (the default without -z now) is resolved on its first use in each process;
/// resolved in the child, it reads the symbol tables of every loaded library, pages that a fork
/// does not map into the child: tens of page faults, which cost more than the rest of a short
/// child's life. Resolved here once, the child inherits the binding. (The child ends with
/// exit_now() for the same reason.)
inline void prebind_child_calls(int devnull) noexcept {
  [[maybe_unused]] const int same = ::dup2(devnull, devnull);
  try {
    std::cin.clear(std::cin.rdstate());
  } catch (...) {  // cin throws on its own state: nothing changed
  }
}

/// The per-process bookkeeping. Reached through runtime::get().
struct runtime {
  std::mutex mu;                                    // guards everything below
  std::shared_ptr<process_state> self;              // current_process()
  pid_t parent_pid = 0;                             // 0 in the main process
  std::string parent_name;
  unique_fd parent_pidfd;                           // watches the parent (children only)
  std::vector<std::shared_ptr<process_state>> children;  // started, not yet reaped
  std::optional<start_method> method;               // set_start_method / first use
  unique_fd self_pidfd;                             // pidfd of this process, handed to children
  unique_fd devnull;                                // /dev/null, opened once: children's stdin
  unique_fd exit_report;                            // fork server children: see report_exit()
  std::vector<std::string> argv;                    // this process's command line, read once
  bool exit_handler_registered = false;

  struct forkserver_link {
    std::mutex mu;
    unique_fd control;
    unique_fd pidfd;
    pid_t pid = 0;
  } forkserver;

  [[nodiscard]] static runtime& get() {
    // Leaked on purpose: it must outlive every static destructor and exit handler that may still
    // join a child, and a forked child re-initialises it in place.
    static runtime* const instance = new runtime();
    return *instance;
  }

  /// The default start method, fixed on first use as in Python (set_start_method afterwards
  /// needs force=true).
  [[nodiscard]] start_method default_method() {
    std::lock_guard lock(mu);
    if (!method) method = start_method::fork;
    return *method;
  }

  /// /dev/null opened once (close-on-exec), so a forked child makes it its stdin with one dup2().
  [[nodiscard]] int devnull_fd() {
    std::lock_guard lock(mu);
    if (!devnull) {
      devnull.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!devnull) throw_errno("open /dev/null");
      prebind_child_calls(devnull.get());
    }
    return devnull.get();
  }

  /// A pidfd referring to this process, created once and passed to children so they can watch it.
  [[nodiscard]] int own_pidfd() {
    std::lock_guard lock(mu);
    if (!self_pidfd) self_pidfd = pidfd_open(::getpid());
    return self_pidfd.get();
  }

 private:
  runtime() : self(std::make_shared<process_state>()) {
    self->kind = process_kind::self;
    self->at = process_state::phase::started;
    self->name = "MainProcess";
    self->authkey.resize(32);
    std::random_device rd;
    std::generate(self->authkey.begin(), self->authkey.end(),
                  [&] { return static_cast<unsigned char>(rd()); });
  }
};

/// Who a new child is: everything it needs to know about itself and its parent.
struct child_identity {
  std::string name;
  std::vector<int> identity;
  bool daemon = false;
  std::vector<unsigned char> authkey;
  pid_t parent_pid = 0;
  std::string parent_name;
  std::optional<start_method> method;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, identity, daemon, authkey, parent_pid, parent_name, method);
  }
};

/// Makes this process the child described by `who`: resets the runtime inherited from the parent
/// (a forked child holds a copy of it, possibly with mutexes locked by threads that no longer exist
/// here) and installs the new identity. Must run before any other library call in the child.
inline void become_child(const child_identity& who, unique_fd parent_pidfd) {
  runtime& rt = runtime::get();
  // Fresh mutexes: the copies may have been held by other threads of the parent at fork time.
  new (&rt.mu) std::mutex();
  new (&rt.forkserver.mu) std::mutex();
  rt.forkserver.control.reset();
  rt.forkserver.pidfd.reset();
  rt.forkserver.pid = 0;
  if (!rt.children.empty()) rt.children.clear();  // read first: every page written here is copied
  rt.self_pidfd.reset();
  rt.exit_report.reset();  // a forked child's exit is not its parent's to report
  // The inherited self state becomes the child's, in place (no allocation right after fork); a
  // handle to current_process() copied from the parent now means this process, as in Python.
  process_state& self = *rt.self;
  new (&self.mu) std::mutex();
  self.name = who.name;
  self.identity = who.identity;
  self.daemon = who.daemon;
  self.authkey = who.authkey;
  self.pid = ::getpid();
  self.child_counter = 0;
  rt.parent_pid = who.parent_pid;
  rt.parent_name = who.parent_name;
  rt.parent_pidfd = std::move(parent_pidfd);
  rt.method = who.method;
}

}  // namespace multiprocessing::detail

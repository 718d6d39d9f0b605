// SPDX-License-Identifier: MIT
// multiprocessing/detail/child.hpp
//
// The life of a child after it knows who it is, common to fork, spawn and forkserver (Python:
// BaseProcess._bootstrap): stdin from /dev/null, a watch on the parent for daemons, the target run
// inside try/catch with Python's exit codes, this process's own children joined, standard streams
// flushed, and _exit() — never a return into the caller's stack, never the parent's atexit handlers
// or static destructors.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cxxabi.h>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <typeinfo>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "posix.hpp"
#include "runtime.hpp"

namespace multiprocessing::detail {

/// The demangled name of a std::type_info.
[[nodiscard]] inline std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                              std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(mangled);
}

/// Flushes C++ and C standard streams so that output buffered before a fork is written exactly once.
inline void flush_std_streams() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {  // a stream with exceptions enabled: nothing useful to do at this point
  }
  std::fflush(nullptr);
}

/// Python replaces a child's stdin with os.devnull; so do we (fd 0 reads EOF). `devnull` is the
/// parent's cached descriptor (inherited by fork), or -1 to open one here.
inline void stdin_from_devnull(int devnull) noexcept {
  unique_fd opened;
  if (devnull < 0) {
    opened.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    devnull = opened.get();
  }
  if (devnull >= 0 && devnull != STDIN_FILENO) ::dup2(devnull, STDIN_FILENO);  // dup2 clears CLOEXEC
  std::cin.clear();
}

/// Makes a daemon child die with its parent, however the parent ends (even SIGKILL). A thread
/// waits on the parent's pidfd; PR_SET_PDEATHSIG is not used because it fires when the *thread*
/// that forked exits, which kills daemons started from short-lived threads.
inline void watch_parent(int parent_pidfd) {
  if (parent_pidfd < 0) return;
  std::thread([parent_pidfd] {
    pollfd p{parent_pidfd, POLLIN, 0};
    while (::poll(&p, 1, -1) == -1 && errno == EINTR) {
    }
    ::kill(::getpid(), SIGKILL);
  }).detach();
}

/// Prints an uncaught exception the way Python's _bootstrap prints a traceback header.
inline void report_uncaught(const std::string& name) noexcept {
  std::string type = "unknown exception";
  if (const std::type_info* t = abi::__cxa_current_exception_type()) type = demangle(t->name());
  std::string what;
  try {
    throw;
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "Process %s:\n%s%s%s\n", name.c_str(), type.c_str(), what.empty() ? "" : ": ",
               what.c_str());
  std::fflush(stderr);
}

/// Joins this process's children at its end (defined in process.hpp).
inline void exit_function() noexcept;

/// A fork server's child tells its client its exit code itself, just before it ends, so that
/// join() need not wait for the server to wake, reap it and pass the status on (the server may be
/// busy forking the next child). The server's own report follows; it is the one the client reads
/// when the child never got here (a signal, _exit(), std::exit()).
inline void report_exit(const runtime& rt, int code) noexcept {
  if (!rt.exit_report) return;
  const std::int32_t value = code;
  [[maybe_unused]] const ssize_t n = ::write(rt.exit_report.get(), &value, sizeof value);
}

/// Runs `body` as the child's whole life and _exit()s with Python's exit code: 0 after a normal
/// return, 1 after an uncaught exception (printed to stderr), n after std::exit(n) in `body`.
template <class Body>
[[noreturn]] void run_child(Body&& body) noexcept {
  runtime& rt = runtime::get();
  stdin_from_devnull(rt.devnull.get());
  if (rt.self->daemon) watch_parent(rt.parent_pidfd.get());
  int code = 0;
  try {
    body();
  } catch (...) {
    report_uncaught(rt.self->name);
    code = 1;
  }
  // Read-only check first: after fork every page this process writes is copied.
  if (!rt.children.empty() || rt.forkserver.control) exit_function();
  flush_std_streams();
  report_exit(rt, code);
  exit_now(code);
}

}  // namespace multiprocessing::detail

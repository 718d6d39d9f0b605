// SPDX-License-Identifier: MIT
// multiprocessing/context.hpp
//
// Start methods and contexts (Python: multiprocessing.context): get_context(), set_start_method(),
// get_start_method(), get_all_start_methods(), freeze_support(), and the context classes whose
// factories start objects under one start method.
//
//   int main() {
//     mp::freeze_support();                   // first statement: runs the work of spawned children
//     auto ctx = mp::get_context("spawn");
//     auto p = ctx.Process(worker, 42);       // worker: a function pointer or captureless lambda
//     p.start(); p.join();
//   }
//
// The start method of a runtime Context is known only at run time, so a target that cannot cross
// exec is reported by start() (ProcessError). SpawnContext and ForkServerContext know it at compile
// time and reject such a target with a static_assert.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>

#include "detail/runtime.hpp"
#include "detail/spawn.hpp"
#include "detail/target.hpp"
#include "connection.hpp"
#include "errors.hpp"
#include "process.hpp"
#include "queues.hpp"
#include "sharedctypes.hpp"
#include "synchronize.hpp"

namespace multiprocessing {

namespace detail {
struct process_pool_backend;  // detail/pool_process.hpp
}  // namespace detail
template <class Backend>
class basic_pool;                                      // pool.hpp
using Pool = basic_pool<detail::process_pool_backend>;  // pool.hpp
struct PoolOptions;                                    // pool.hpp

/// Python: multiprocessing.context.BaseContext. Creates objects that start under one start method
/// (or, for the default context, under the method configured when they start).
class Context {
 public:
  /// Python: the start method of this context ("fork", "spawn" or "forkserver").
  [[nodiscard]] std::string get_start_method() const {
    return std::string(detail::to_string(method_ ? *method_ : detail::runtime::get().default_method()));
  }

  /// Python: ctx.Process(target=f, args=(...)). See mp::Process.
  template <class F, class... Args>
  [[nodiscard]] multiprocessing::Process Process(F&& target, Args&&... args) const {
    multiprocessing::Process p(std::forward<F>(target), std::forward<Args>(args)...);
    if (method_) p.use_start_method(*method_);
    return p;
  }

  // Python: ctx.Lock(), ctx.Queue(maxsize), ctx.Value(...), ctx.Pipe(duplex), ... The shared
  // objects do not depend on the start method (each works with children of any method), so these
  // are the module-level constructors, offered here so that code written against a context reads
  // as in Python. Arguments are forwarded to the constructor of the same name.
  template <class... A>
  [[nodiscard]] multiprocessing::Lock Lock(A&&... a) const { return multiprocessing::Lock(std::forward<A>(a)...); }
  template <class... A>
  [[nodiscard]] multiprocessing::RLock RLock(A&&... a) const { return multiprocessing::RLock(std::forward<A>(a)...); }
  template <class... A>
  [[nodiscard]] multiprocessing::Semaphore Semaphore(A&&... a) const {
    return multiprocessing::Semaphore(std::forward<A>(a)...);
  }
  template <class... A>
  [[nodiscard]] multiprocessing::BoundedSemaphore BoundedSemaphore(A&&... a) const {
    return multiprocessing::BoundedSemaphore(std::forward<A>(a)...);
  }
  template <class... A>
  [[nodiscard]] multiprocessing::Condition Condition(A&&... a) const {
    return multiprocessing::Condition(std::forward<A>(a)...);
  }
  template <class... A>
  [[nodiscard]] multiprocessing::Event Event(A&&... a) const { return multiprocessing::Event(std::forward<A>(a)...); }
  template <class... A>
  [[nodiscard]] multiprocessing::Barrier Barrier(A&&... a) const {
    return multiprocessing::Barrier(std::forward<A>(a)...);
  }
  template <class T, class L = multiprocessing::RLock, class... A>
  [[nodiscard]] multiprocessing::Value<T, L> Value(A&&... a) const {
    return multiprocessing::Value<T, L>(std::forward<A>(a)...);
  }
  template <class T, class L = multiprocessing::RLock, class... A>
  [[nodiscard]] multiprocessing::Array<T, L> Array(A&&... a) const {
    return multiprocessing::Array<T, L>(std::forward<A>(a)...);
  }
  template <class T, class... A>
  [[nodiscard]] multiprocessing::RawValue<T> RawValue(A&&... a) const {
    return multiprocessing::RawValue<T>(std::forward<A>(a)...);
  }
  template <class T, class... A>
  [[nodiscard]] multiprocessing::RawArray<T> RawArray(A&&... a) const {
    return multiprocessing::RawArray<T>(std::forward<A>(a)...);
  }
  template <class T>
  [[nodiscard]] multiprocessing::Queue<T> Queue(std::int64_t maxsize = 0) const {
    return multiprocessing::Queue<T>(maxsize);
  }
  template <class T>
  [[nodiscard]] multiprocessing::JoinableQueue<T> JoinableQueue(std::int64_t maxsize = 0) const {
    return multiprocessing::JoinableQueue<T>(maxsize);
  }
  template <class T>
  [[nodiscard]] multiprocessing::SimpleQueue<T> SimpleQueue() const {
    return multiprocessing::SimpleQueue<T>();
  }
  [[nodiscard]] std::pair<Connection, Connection> Pipe(bool duplex = true) const {
    return multiprocessing::Pipe(duplex);
  }

  /// Python: ctx.Pool(processes, initializer, initargs, maxtasksperchild): a Pool whose workers
  /// start under this context's method. See mp::Pool; defined in multiprocessing/pool.hpp (include
  /// it to call these).
  [[nodiscard]] multiprocessing::Pool Pool() const;
  [[nodiscard]] multiprocessing::Pool Pool(int processes) const;
  [[nodiscard]] multiprocessing::Pool Pool(PoolOptions options) const;

  /// Python: ctx.cpu_count(), ctx.current_process(), ctx.parent_process(), ctx.active_children().
  [[nodiscard]] int cpu_count() const noexcept { return multiprocessing::cpu_count(); }
  [[nodiscard]] multiprocessing::Process current_process() const {
    return multiprocessing::current_process();
  }
  [[nodiscard]] std::optional<multiprocessing::Process> parent_process() const {
    return multiprocessing::parent_process();
  }
  [[nodiscard]] std::vector<multiprocessing::Process> active_children() const {
    return multiprocessing::active_children();
  }

 protected:
  explicit Context(std::optional<detail::start_method> method) : method_(method) {}

 private:
  friend Context get_context(std::optional<std::string_view> method);
  std::optional<detail::start_method> method_;
};

/// A context whose start method is a compile-time constant (Python: ForkContext, SpawnContext,
/// ForkServerContext). Under spawn and forkserver, Process() rejects at compile time a target or
/// an argument that cannot cross exec.
template <detail::start_method M>
class StaticContext : public Context {
 public:
  StaticContext() : Context(M) {}

  template <class F, class... Args>
  [[nodiscard]] multiprocessing::Process Process(F&& target, Args&&... args) const {
    if constexpr (M != detail::start_method::fork) {
      static_assert(check_target<std::decay_t<F>>() &&
                    (check_argument<detail::stored_arg_t<Args>>() && ...));
    }
    return Context::Process(std::forward<F>(target), std::forward<Args>(args)...);
  }

 private:
  // One template per check, so that the compiler's "in instantiation of ... [with T = ...]" line
  // names the offending type next to the message.
  template <class Target>
  static constexpr bool check_target() {
    static_assert(detail::spawnable_callable_v<Target>,
                  "mp: a spawn/forkserver Process target must be a function pointer, a captureless "
                  "lambda or a serializable function object (a capturing lambda cannot cross exec)");
    return true;
  }
  template <class Argument>
  static constexpr bool check_argument() {
    static_assert(serialize::serializable<Argument>,
                  "mp: every argument of a spawn/forkserver Process must be serializable");
    return true;
  }
};

using ForkContext = StaticContext<detail::start_method::fork>;
using SpawnContext = StaticContext<detail::start_method::spawn>;
using ForkServerContext = StaticContext<detail::start_method::forkserver>;

/// Python: multiprocessing.get_context(method=None). With no method, the default context (objects
/// use the start method configured when they start). @throws ValueError for an unknown method.
[[nodiscard]] inline Context get_context(std::optional<std::string_view> method = std::nullopt) {
  if (!method) return Context(std::nullopt);
  return Context(detail::parse_start_method(*method));
}

/// Python: multiprocessing.set_start_method(method, force=False). Once per program, before
/// anything is started; std::nullopt with force=true resets to "not set".
/// @throws ProcessError when already set (Python: RuntimeError) and `force` is false.
/// @throws ValueError for an unknown method.
inline void set_start_method(std::optional<std::string_view> method, bool force = false) {
  const auto parsed = method ? std::optional(detail::parse_start_method(*method)) : std::nullopt;
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  if (rt.method && !force) throw ProcessError("context has already been set");
  rt.method = parsed;
}

/// Python: multiprocessing.get_start_method(allow_none=False). Fixes the default ("fork") when
/// none was set, as Python does.
[[nodiscard]] inline std::string get_start_method() {
  return std::string(detail::to_string(detail::runtime::get().default_method()));
}

/// Python: multiprocessing.get_start_method(allow_none=True): nullopt when none is set yet.
[[nodiscard]] inline std::optional<std::string> get_start_method(bool allow_none) {
  if (!allow_none) return get_start_method();
  detail::runtime& rt = detail::runtime::get();
  std::lock_guard lock(rt.mu);
  if (!rt.method) return std::nullopt;
  return std::string(detail::to_string(*rt.method));
}

/// Python: multiprocessing.get_all_start_methods(); the default first.
[[nodiscard]] inline std::vector<std::string> get_all_start_methods() {
  return {detail::start_method_names.begin(), detail::start_method_names.end()};
}

/// Python: multiprocessing.freeze_support(). Make it the first statement of main() in every
/// program that uses spawn or forkserver: in a child started that way it runs the child's work
/// (or the fork server) and never returns; everywhere else it returns at once.
inline void freeze_support() {
  auto take_fd = [](const char* name) -> int {
    const char* value = std::getenv(name);
    if (value == nullptr) return -1;
    char* end = nullptr;
    const long fd = std::strtol(value, &end, 10);
    ::unsetenv(name);  // our own children must not see it
    if (end == value || fd < 0 || fd > 1 << 20 || ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC) == -1) {
      std::fprintf(stderr, "multiprocessing: %s does not name an open descriptor; ignored\n", name);
      return -1;
    }
    return static_cast<int>(fd);
  };
  if (const int fd = take_fd(detail::forkserver_env); fd >= 0) {
    if (std::getenv(detail::bind_now_added_env) != nullptr) {  // loaded: done with them
      ::unsetenv("LD_BIND_NOW");
      ::unsetenv(detail::bind_now_added_env);
    }
    detail::forkserver_main(detail::unique_fd(fd));
  }
  if (const int fd = take_fd(detail::spawn_env); fd >= 0) {
    detail::spawn_child_main(detail::unique_fd(fd));
  }
}

}  // namespace multiprocessing

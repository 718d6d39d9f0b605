// SPDX-License-Identifier: MIT
// multiprocessing/dummy.hpp
//
// The thread twins of the library (Python: multiprocessing.dummy): the same API backed by threads
// of one process, so one line switches a program between processes and threads. They share their
// implementation with the process versions through a backend policy (state on the heap, private
// futexes) and are not serializable. Holder death does not apply to threads (one cannot be killed
// alone): owner_died() is always false and recoveries() 0.
//
//   mp::dummy::Pool pool(4);                         // Python: from multiprocessing.dummy import Pool
//   auto v = pool.map([&](int x) { return x * k; }, xs);   // any copyable callable, any movable value
//   mp::dummy::Process t(worker, 1);  t.start();  t.join(1s);
//
// dummy::Pool is basic_pool (pool.hpp) over worker threads (detail/pool_thread.hpp): the same
// methods, errors and guarantees as mp::Pool, with BrokenThreadPool where the process pool says
// BrokenProcessPool, and nothing serialized (a task's exception reaches get() as the same object).
#pragma once

#include <any>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "detail/pool_thread.hpp"
#include "detail/remote_exception.hpp"
#include "errors.hpp"
#include "pool.hpp"
#include "process.hpp"
#include "queues.hpp"
#include "sharedctypes.hpp"
#include "synchronize.hpp"
#include "timeout.hpp"

namespace multiprocessing::detail {

/// What a dummy::Pool initializer with stored parameter tuple `Params` receives: the values, with
/// C strings as std::string (so that "x" and std::string("x") match the same parameter).
template <class Params>
struct thread_init_tuple;
template <class... P>
struct thread_init_tuple<std::tuple<P...>> {
  using type = std::tuple<wire_arg_t<stored_arg_t<P>>...>;
  template <class F>
  static void call(F& f, const type& values) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      f(pass<stored_arg_t<P>>(std::get<I>(values))...);
    }(std::index_sequence_for<P...>{});
  }
  template <class A, class V>
  static decltype(auto) pass(const V& v) {
    if constexpr (std::is_same_v<A, c_string_arg>) {
      return v.c_str();
    } else {
      return A(v);
    }
  }
};


/// The state shared by the handles of one dummy::Process.
struct thread_process_state {
  std::mutex mu;
  std::condition_variable cv;
  std::string name;
  bool daemon = false;
  bool started = false;
  bool finished = false;
  int exitcode = 0;
  std::thread::id ident;
  std::thread::id creator = std::this_thread::get_id();
  std::function<void()> target;
  std::mutex join_mu;  // one std::thread::join at a time
  std::thread thread;

  thread_process_state() = default;
  thread_process_state(const thread_process_state&) = delete;
  thread_process_state& operator=(const thread_process_state&) = delete;
  ~thread_process_state() {
    if (!thread.joinable()) return;
    // The last handle was the thread's own: it is at its very end and must not join itself.
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
};

/// The started, unjoined dummy processes (for active_children()).
struct thread_process_registry {
  std::mutex mu;
  std::vector<std::weak_ptr<thread_process_state>> started;
  static thread_process_registry& get() {
    static thread_process_registry registry;
    return registry;
  }
};

/// The state of the dummy::Process whose thread this is (nullptr elsewhere): points to the
/// thread body's own reference, which lives as long as the body runs.
inline thread_local const std::shared_ptr<thread_process_state>* current_thread_process = nullptr;

inline std::string next_thread_name() {
  static std::atomic<int> counter{0};
  return "Thread-" + std::to_string(++counter);
}

}  // namespace multiprocessing::detail

namespace multiprocessing::dummy {

// --- primitives (Python: threading.Lock, RLock, Semaphore, ...)
// -------------------------------------
using Lock = detail::basic_lock<detail::thread_backend>;
using RLock = detail::basic_rlock<detail::thread_backend>;
using Semaphore = detail::basic_semaphore<detail::thread_backend, false>;
using BoundedSemaphore = detail::basic_semaphore<detail::thread_backend, true>;
using Condition = detail::basic_condition<detail::thread_backend>;
using Event = detail::basic_event<detail::thread_backend>;
using Barrier = detail::basic_barrier<detail::thread_backend>;

// --- queues (Python: queue.Queue; here with the multiprocessing Queue's API) --------------------
// Items are moved, not serialized: any movable T works.
template <class T>
using Queue = detail::basic_queue<T, detail::thread_backend>;
template <class T>
using JoinableQueue = detail::basic_joinable_queue<T, detail::thread_backend>;
template <class T>
using SimpleQueue = detail::basic_simple_queue<T, detail::thread_backend>;

// --- connections (Python: multiprocessing.dummy.connection) --------------------------------------
// A socketpair serves threads as well as processes: the same Pipe and Connection.
using multiprocessing::Connection;
using multiprocessing::Pipe;

// --- shared values (Python: multiprocessing.dummy.Value, Array) ----------------------------------
// Shared memory serves threads too; the optional lock is the process-shared RLock (it works
// between threads as well).
using multiprocessing::Array;
using multiprocessing::RawArray;
using multiprocessing::RawValue;
using multiprocessing::Value;
using multiprocessing::cpu_count;

// --- Pool (Python: multiprocessing.dummy.Pool, i.e. multiprocessing.pool.ThreadPool) ------------

/// A dummy::Pool's initializer (PoolOptions::initializer): any copyable callable whose parameters
/// can be determined (a function pointer, or a lambda/function object with one non-template
/// operator()), called once in each worker thread before its first task with
/// PoolOptions::initargs. An exception from it breaks the pool (BrokenThreadPool).
class PoolInitializer {
 public:
  PoolInitializer() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, PoolInitializer>)
  PoolInitializer(F f) {  // NOLINT(google-explicit-constructor): `.initializer = init`
    using Fn = std::decay_t<F>;
    static_assert(detail::is_function_pointer_v<Fn> || detail::has_plain_call_operator<Fn>,
                  "mp: an initializer must be a function pointer or a lambda/function object "
                  "with one non-template operator() (its parameter types are needed)");
    static_assert(std::is_copy_constructible_v<Fn>, "mp: a dummy::Pool initializer must be copyable");
    using params = typename detail::initializer_params<Fn>::type;
    using wire = typename detail::thread_init_tuple<params>::type;
    params_ = &typeid(wire);
    params_name_ = detail::demangle(typeid(wire).name());
    call_ = [fn = std::move(f)](const std::any& args) mutable {
      detail::thread_init_tuple<params>::call(fn, std::any_cast<const wire&>(args));
    };
  }

  /// True when an initializer was given.
  [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(call_); }

 private:
  friend std::shared_ptr<detail::thread_pool_core> detail::thread_pool_backend::make_core(
      dummy::PoolOptions, detail::thread_pool_config);
  std::function<void(const std::any&)> call_;
  const std::type_info* params_ = nullptr;
  std::string params_name_;
};

/// The initializer's arguments (PoolOptions::initargs): `mp::args(...)`, copied at once. Their
/// types must be the initializer's parameter types after decay (C strings may stand for
/// std::string); the Pool constructor checks this and throws TypeError otherwise.
class PoolInitArgs {
 public:
  PoolInitArgs() : PoolInitArgs(args()) {}
  template <class... Ts>
  PoolInitArgs(const args_t<Ts...>& packed)  // NOLINT(google-explicit-constructor)
      : empty_(sizeof...(Ts) == 0) {
    using wire = typename detail::thread_init_tuple<std::tuple<Ts...>>::type;
    types_name_ = detail::demangle(typeid(wire).name());
    values_ = std::apply([](const auto&... v) { return wire(v...); }, packed.values);
  }

 private:
  friend std::shared_ptr<detail::thread_pool_core> detail::thread_pool_backend::make_core(
      dummy::PoolOptions, detail::thread_pool_config);
  std::any values_;
  bool empty_ = true;
  std::string types_name_;
};

/// dummy::Pool's keyword arguments, as mp::PoolOptions:
///   mp::dummy::Pool pool({.processes = 4, .initializer = init, .initargs = mp::args(1, "x")});
struct PoolOptions {
  /// Worker threads; default cpu_count().
  std::optional<int> processes = std::nullopt;
  /// Called once in each worker thread before its first task.
  PoolInitializer initializer = {};
  /// The initializer's arguments.
  PoolInitArgs initargs = {};
  /// Tasks (chunks) a worker thread runs before it is replaced by a fresh one; default: unlimited.
  std::optional<int> maxtasksperchild = std::nullopt;
};

/// A pool of worker threads (Python: multiprocessing.dummy.Pool). See basic_pool in pool.hpp.
using Pool = multiprocessing::basic_pool<detail::thread_pool_backend>;


// --- Process (Python: multiprocessing.dummy.Process, a threading.Thread) -------------------------


/// A thread with mp::Process's API (Python: multiprocessing.dummy.Process, i.e. threading.Thread
/// with exitcode). A handle: copies refer to one thread.
///
///   mp::dummy::Process t(worker, 1, "two");   // any callable; arguments are decayed copies
///   t.start(); t.join(1s); t.exitcode();
///
/// Differences from mp::Process, all because a thread is not a process: there is no pid, sentinel,
/// terminate() or kill() (a thread cannot be stopped from outside), and the target runs in this
/// process, so it sees and may change the caller's memory. exitcode() is 0 after a normal return
/// and 1 after an uncaught exception, whose type and what() are printed to stderr (Python's
/// DummyProcess reports 0 in both cases). A subclass that overrides run() must outlive its
/// thread (join() before destroying it), as in Python.
class Process {
 public:
  /// A thread with no target: run() does nothing unless a subclass overrides it.
  Process() : state_(std::make_shared<detail::thread_process_state>()) {
    state_->name = detail::next_thread_name();
  }

  /// A thread that will call `target(args...)`. Arguments are decayed copies.
  template <class F, class... Args>
    requires(!std::is_base_of_v<Process, std::remove_cvref_t<F>>) &&
            std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>
  explicit Process(F&& target, Args&&... args) : Process() {
    state_->target = [f = std::decay_t<F>(std::forward<F>(target)),
                      tuple = std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)]() mutable {
      std::apply([&](auto&... a) { (void)std::invoke(f, a...); }, tuple);
    };
  }

  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  Process(Process&&) noexcept = default;
  Process& operator=(Process&&) noexcept = default;
  virtual ~Process() = default;

  /// The thread's body. Python: Thread.run(). Calls the target; override it in a subclass.
  virtual void run() {
    if (state().target) state().target();
  }

  /// Starts the thread. Python: Process.start().
  /// @throws ProcessError when started twice; std::system_error when no thread can be created.
  void start() {
    detail::thread_process_state& st = state();
    {
      std::lock_guard lock(st.mu);
      if (st.started) throw ProcessError("cannot start a process twice");
      st.started = true;
    }
    try {
      std::lock_guard join_lock(st.join_mu);
      st.thread = std::thread([self = state_, this_object = this] { body(self, this_object); });
    } catch (...) {
      std::lock_guard lock(st.mu);
      st.started = false;
      throw;
    }
    auto& registry = detail::thread_process_registry::get();
    std::lock_guard lock(registry.mu);
    std::erase_if(registry.started, [](const auto& w) { return w.expired(); });
    registry.started.push_back(state_);
  }

  /// Waits until the thread ends or `timeout` passes. Python: Process.join(timeout).
  /// @returns true when the thread has ended.
  /// @throws ProcessError when not started, or when a thread joins itself.
  bool join(Timeout timeout = {}) {  // NOLINT(modernize-use-nodiscard): Python's join returns None
    detail::thread_process_state& st = state();
    std::unique_lock lock(st.mu);
    if (!st.started) throw ProcessError("can only join a started process");
    if (detail::current_thread_process != nullptr && detail::current_thread_process->get() == &st) {
      throw ProcessError("a process cannot join itself");
    }
    const auto done = [&] { return st.finished; };
    if (timeout.forever()) {
      st.cv.wait(lock, done);
    } else if (!st.cv.wait_for(lock, *timeout.get(), done)) {
      return false;
    }
    lock.unlock();
    std::lock_guard join_lock(st.join_mu);
    if (st.thread.joinable()) st.thread.join();
    return true;
  }

  /// Python: Process.is_alive(): started and not yet ended.
  [[nodiscard]] bool is_alive() const {
    std::lock_guard lock(state().mu);
    return state_->started && !state_->finished;
  }

  /// Python: Thread.ident. nullopt before start().
  [[nodiscard]] std::optional<std::thread::id> ident() const {
    std::lock_guard lock(state().mu);
    if (!state_->started) return std::nullopt;
    return state_->ident;
  }

  /// Python: Process.exitcode. nullopt before start and while running; then 0, or 1 after an
  /// uncaught exception.
  [[nodiscard]] std::optional<int> exitcode() const {
    std::lock_guard lock(state().mu);
    if (!state_->finished) return std::nullopt;
    return state_->exitcode;
  }

  /// Python: Process.name: "Thread-1", "Thread-2", ...
  [[nodiscard]] std::string name() const {
    std::lock_guard lock(state().mu);
    return state_->name;
  }
  void name(std::string value) {
    std::lock_guard lock(state().mu);
    state_->name = std::move(value);
  }

  /// Python: Process.daemon. Kept for the API: a thread cannot be stopped, so a daemonic thread
  /// still running when the program ends is simply abandoned with it.
  /// @throws ProcessError when set after start().
  [[nodiscard]] bool daemon() const {
    std::lock_guard lock(state().mu);
    return state_->daemon;
  }
  void daemon(bool value) {
    std::lock_guard lock(state().mu);
    if (state_->started) throw ProcessError("cannot set daemon status of active thread");
    state_->daemon = value;
  }

 private:
  friend Process current_process();
  friend std::vector<Process> active_children();
  explicit Process(std::shared_ptr<detail::thread_process_state> st) : state_(std::move(st)) {}

  [[nodiscard]] detail::thread_process_state& state() const {
    if (!state_) throw ValueError("process object was moved from");
    return *state_;
  }

  static void body(const std::shared_ptr<detail::thread_process_state>& self, Process* object) noexcept {
    {
      std::lock_guard lock(self->mu);
      self->ident = std::this_thread::get_id();
    }
    detail::current_thread_process = &self;
    int code = 0;
    try {
      object->run();
    } catch (...) {
      const detail::exception_record rec = detail::record_current_exception();
      std::string name;
      {
        std::lock_guard lock(self->mu);
        name = self->name;
      }
      std::fprintf(stderr, "Exception in thread %s: %s%s%s\n", name.c_str(), rec.type_name.c_str(),
                   rec.what.empty() ? "" : ": ", rec.what.c_str());
      std::fflush(stderr);
      code = 1;
    }
    detail::current_thread_process = nullptr;
    {
      std::lock_guard lock(self->mu);
      self->exitcode = code;
      self->finished = true;
    }
    self->cv.notify_all();
  }

  std::shared_ptr<detail::thread_process_state> state_;
};

/// Python: multiprocessing.dummy.current_process() (threading.current_thread()): the
/// dummy::Process whose thread calls it; elsewhere a handle named after the thread ("MainThread"
/// for the thread that is not one of ours, "Thread-N (worker)" in a dummy::Pool worker).
[[nodiscard]] inline Process current_process() {
  if (detail::current_thread_process != nullptr) return Process(*detail::current_thread_process);
  auto st = std::make_shared<detail::thread_process_state>();
  st->name = detail::current_thread_name != nullptr ? *detail::current_thread_name : "MainThread";
  st->started = true;
  st->ident = std::this_thread::get_id();
  return Process(std::move(st));
}

/// Python: multiprocessing.dummy.active_children(): the dummy processes started and still running.
[[nodiscard]] inline std::vector<Process> active_children() {
  auto& registry = detail::thread_process_registry::get();
  std::lock_guard lock(registry.mu);
  std::vector<Process> alive;
  std::erase_if(registry.started, [&](const auto& w) {
    auto st = w.lock();
    if (!st) return true;
    std::lock_guard state_lock(st->mu);
    if (st->finished) return true;
    alive.push_back(Process(std::move(st)));
    return false;
  });
  return alive;
}

/// Python: multiprocessing.dummy.freeze_support(): nothing to do for threads.
inline void freeze_support() noexcept {}

}  // namespace multiprocessing::dummy

namespace multiprocessing::detail {

inline std::shared_ptr<thread_pool_core> thread_pool_backend::make_core(dummy::PoolOptions options,
                                                                       thread_pool_config base) {
  thread_pool_config config = std::move(base);
  std::tie(config.processes, config.maxtasks) = checked_pool_size(options, cpu_count());
  const dummy::PoolInitializer& init = options.initializer;
  const dummy::PoolInitArgs& initargs = options.initargs;
  check_initargs(static_cast<bool>(init), !initargs.empty_,
                 init && *init.params_ == initargs.values_.type(), initargs.types_name_, init.params_name_);
  if (init) config.initializer = [call = init.call_, values = initargs.values_]() mutable { call(values); };
  auto core = std::make_shared<thread_pool_core>(std::move(config));
  core->start();
  return core;
}

}  // namespace multiprocessing::detail

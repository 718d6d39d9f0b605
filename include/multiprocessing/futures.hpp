// SPDX-License-Identifier: MIT
// multiprocessing/futures.hpp
//
// Defines the executors of Python's concurrent.futures over this library's pools:
// ProcessPoolExecutor (worker processes), ThreadPoolExecutor (worker threads), Future<R>,
// as_completed() and wait().
//
//   int square(int x) { return x * x; }
//   mp::futures::ProcessPoolExecutor ex(4);            // Python: with ProcessPoolExecutor(4) as ex:
//   std::vector<mp::futures::Future<int>> futs;
//   for (int i = 0; i < 10; ++i) futs.push_back(ex.submit(square, i));
//   for (auto& f : mp::futures::as_completed(futs, 10s)) std::cout << f.result() << '\n';
//   for (int y : ex.map(square, std::vector{1, 2, 3})) ...;     // input order
//
// A task follows the rules of the executor's pool: for ProcessPoolExecutor the spawn rules (a
// function pointer, captureless lambda or serializable function object; serializable arguments
// and result; violations fail to compile), for ThreadPoolExecutor any copyable callable and any
// movable values.
//
// Differences from Python, all on the side of never hanging and never losing work:
//   * A worker process that dies (SIGKILL, segfault, _exit, OOM killer) fails only the futures it
//     held, with BrokenProcessPool naming the exit code or signal; it is replaced and the executor
//     keeps serving. (CPython marks the whole executor broken and fails every pending future.)
//   * An initializer that throws breaks the executor: pending and later submissions fail with
//     BrokenProcessPool / BrokenThreadPool naming the exception (as in Python).
//   * map() reads its input lazily with a bounded number of calls in flight (CPython submits the
//     whole input at once), so an unbounded range works; its timeout counts from the map() call,
//     as in Python.
//   * A future is "running" once it has been handed to a worker; a worker process holds at most
//     two at a time (CPython: its call queue holds max_workers + 1), so the rest stay cancellable.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "context.hpp"
#include "detail/pool_jobs.hpp"
#include "detail/pool_process.hpp"
#include "detail/pool_thread.hpp"
#include "dummy.hpp"
#include "errors.hpp"
#include "pool.hpp"
#include "timeout.hpp"

namespace multiprocessing::futures {

template <class R>
class Future;

namespace detail {

using namespace multiprocessing::detail;  // NOLINT(google-build-using-namespace): our own internals

/// Python's Future states (PENDING, RUNNING, CANCELLED, FINISHED).
enum class future_phase { pending, running, cancelled, finished };

struct future_core;

/// Collects completions for as_completed() and wait(): a future that completes pushes itself.
struct completion_waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<const future_core*> completed;

  void push(const future_core* f) {
    {
      std::lock_guard lock(mu);
      completed.push_back(f);
    }
    cv.notify_all();
  }
};

/// The part of a future's state that does not depend on its result type.
struct future_core {
  future_core() = default;
  future_core(const future_core&) = delete;
  future_core& operator=(const future_core&) = delete;
  virtual ~future_core() = default;

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  future_phase phase = future_phase::pending;
  std::exception_ptr failure;  // the call's exception, once finished
  std::vector<std::function<void()>> callbacks;  // done-callbacks not yet run
  std::vector<std::shared_ptr<completion_waiter>> waiters;
  std::atomic<bool> done_flag{false};  // the phase is final; readable without the lock
  static constexpr std::chrono::microseconds wait_spin{20};

  [[nodiscard]] bool done_locked() const noexcept {
    return phase == future_phase::cancelled || phase == future_phase::finished;
  }
  [[nodiscard]] bool done() const {
    std::lock_guard lock(mu);
    return done_locked();
  }

  /// Python: Future.set_running_or_notify_cancel(). @returns false when cancelled (or done).
  /// True again for a running call: a chunk whose worker died before starting it begins anew
  /// on another worker.
  bool start() noexcept {
    std::lock_guard lock(mu);
    if (phase == future_phase::pending) phase = future_phase::running;
    return phase == future_phase::running;
  }

  /// Python: Future.cancel(). @returns true when the future is (now) cancelled.
  bool cancel() {
    {
      std::lock_guard lock(mu);
      if (phase == future_phase::cancelled) return true;
      if (phase != future_phase::pending) return false;
      phase = future_phase::cancelled;
    }
    completed();
    return true;
  }

  /// Waits until done or `timeout` passes. @returns whether done.
  bool wait(Timeout timeout) const {
    // A quick call answers within microseconds: look for it briefly (yielding the CPU to the
    // pool's threads) before sleeping, as AsyncResult does.
    if (timeout.forever() || *timeout.get() > wait_spin) {
      const auto spin_until = std::chrono::steady_clock::now() + wait_spin;
      while (!done_flag.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
      }
    }
    std::unique_lock lock(mu);
    const auto done = [&] { return done_locked(); };
    if (timeout.forever()) {
      cv.wait(lock, done);
      return true;
    }
    return cv.wait_for(lock, *timeout.get(), done);
  }

  /// Wakes the waiters and runs the callbacks; called once, after the phase became final.
  void completed() {
    std::vector<std::function<void()>> run;
    std::vector<std::shared_ptr<completion_waiter>> wake;
    {
      std::lock_guard lock(mu);
      done_flag.store(true, std::memory_order_release);
      run.swap(callbacks);
      wake.swap(waiters);
    }
    cv.notify_all();
    for (auto& w : wake) w->push(this);
    for (auto& fn : run) {
      try {
        fn();
      } catch (...) {
        report_callback_exception("a Future's done callback");
      }
    }
  }

  /// Adds `w` unless already done. @returns false when done (nothing added).
  bool add_waiter(const std::shared_ptr<completion_waiter>& w) {
    std::lock_guard lock(mu);
    if (done_locked()) return false;
    waiters.push_back(w);
    return true;
  }
  void remove_waiter(const std::shared_ptr<completion_waiter>& w) noexcept {
    std::lock_guard lock(mu);
    std::erase(waiters, w);
  }
};

/// A future's whole state: the job the executor's pool delivers the one result to.
template <class R>
struct future_state final : future_core, result_sink<R> {
  std::optional<stored_result_t<R>> value;

  bool begin() noexcept override { return start(); }

  void put(std::size_t /*index*/, stored_result_t<R>&& v) override {
    {
      std::lock_guard lock(mu);
      if (done_locked()) return;
      value.emplace(std::move(v));
      phase = future_phase::finished;
    }
    this->finished.store(true);
    completed();
  }

  void error(std::size_t /*index*/, std::exception_ptr e) override {
    {
      std::lock_guard lock(mu);
      if (done_locked()) return;
      failure = std::move(e);
      phase = future_phase::finished;
    }
    this->finished.store(true);
    completed();
  }
};

/// How as_completed() and wait() reach a Future's state.
struct future_access {
  template <class R>
  static future_state<R>& state(const Future<R>& f) {
    return f.state();
  }
};

}  // namespace detail

/// The eventual result of an executor's submit() (Python: concurrent.futures.Future). A handle:
/// copies share one result. Future<void> for tasks returning void.
template <class R>
class Future {
 public:
  /// Cancels the call if it has not started. Python: Future.cancel().
  /// @returns false when the call is running or done (it cannot be cancelled), true otherwise.
  bool cancel() { return state().cancel(); }  // NOLINT(modernize-use-nodiscard): as Python

  /// Python: Future.cancelled().
  [[nodiscard]] bool cancelled() const { return phase() == detail::future_phase::cancelled; }
  /// True while a worker holds the call. Python: Future.running().
  [[nodiscard]] bool running() const { return phase() == detail::future_phase::running; }
  /// True once the call finished or was cancelled. Python: Future.done().
  [[nodiscard]] bool done() const {
    const auto p = phase();
    return p == detail::future_phase::finished || p == detail::future_phase::cancelled;
  }

  /// Waits for the call and returns its value (a copy: result() may be called again).
  /// Python: Future.result(timeout=None).
  /// @throws TimeoutError when not done within `timeout`; CancelledError when cancelled; the
  ///   call's own exception (as AsyncResult::get: same type for std:: and mp:: exceptions,
  ///   RemoteError otherwise; BrokenProcessPool when its worker died).
  /// Peer death: a worker's death ends the wait with BrokenProcessPool; never waits forever.
  R result(Timeout timeout = {}) const {
    wait_done(timeout, "Future.result()");
    std::lock_guard lock(st_->mu);
    if (st_->phase == detail::future_phase::cancelled) throw CancelledError("the future was cancelled");
    if (st_->failure) std::rethrow_exception(st_->failure);
    if constexpr (!std::is_void_v<R>) return *st_->value;
  }

  /// Waits for the call and returns its exception, or nullptr when it succeeded.
  /// Python: Future.exception(timeout=None).
  /// @throws TimeoutError when not done within `timeout`; CancelledError when cancelled.
  [[nodiscard]] std::exception_ptr exception(Timeout timeout = {}) const {
    wait_done(timeout, "Future.exception()");
    std::lock_guard lock(st_->mu);
    if (st_->phase == detail::future_phase::cancelled) throw CancelledError("the future was cancelled");
    return st_->failure;
  }

  /// Calls `fn(future)` once the future is done (finished or cancelled): at once, in this
  /// thread, when it already is; otherwise in the thread that completes it (the executor's
  /// result-handler thread, or for ThreadPoolExecutor the worker thread that ran the call).
  /// An exception from `fn` is printed to stderr and otherwise ignored, as in Python.
  /// Python: Future.add_done_callback(fn).
  template <class Fn>
    requires std::invocable<Fn&, Future<R>>
  void add_done_callback(Fn fn) {
    detail::future_state<R>& st = state();
    auto call = [fn = std::move(fn), self = *this]() mutable { fn(self); };
    {
      std::lock_guard lock(st.mu);
      if (!st.done_locked()) {
        st.callbacks.emplace_back(std::move(call));
        return;
      }
    }
    try {
      call();
    } catch (...) {
      detail::report_callback_exception("a Future's done callback");
    }
  }

  /// Two handles of one future compare equal.
  friend bool operator==(const Future& a, const Future& b) noexcept { return a.st_ == b.st_; }

 private:
  template <class Backend>
  friend class basic_executor;
  friend struct detail::future_access;

  explicit Future(std::shared_ptr<detail::future_state<R>> st) : st_(std::move(st)) {}

  [[nodiscard]] detail::future_state<R>& state() const {
    if (!st_) throw ValueError("Future was moved from");
    return *st_;
  }
  [[nodiscard]] detail::future_phase phase() const {
    std::lock_guard lock(state().mu);
    return st_->phase;
  }
  void wait_done(Timeout timeout, const char* what) const {
    if (!state().wait(timeout)) {
      throw TimeoutError(std::string(what) + ": the future did not complete within the timeout");
    }
  }
  std::shared_ptr<detail::future_state<R>> st_;
};

/// wait()'s return_when (Python: concurrent.futures.FIRST_COMPLETED, ...).
inline constexpr int FIRST_COMPLETED = 0;
inline constexpr int FIRST_EXCEPTION = 1;
inline constexpr int ALL_COMPLETED = 2;

/// What wait() returns (Python: DoneAndNotDoneFutures): `auto [done, not_done] = wait(fs)`. Each
/// vector keeps the order of the input; a future given twice appears once.
template <class R>
struct DoneAndNotDone {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

namespace detail {

template <class Range>
using future_of_t = std::remove_cvref_t<std::ranges::range_reference_t<const Range&>>;

template <class T>
struct is_future : std::false_type {};
template <class R>
struct is_future<Future<R>> : std::true_type {};

/// The futures of `fs` without repetitions, in order.
template <class R, class Range>
std::vector<Future<R>> unique_futures(const Range& fs) {
  std::vector<Future<R>> out;
  for (const auto& f : fs) {
    if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  }
  return out;
}

}  // namespace detail

/// The futures of `fs`, each yielded once as it completes (Python: as_completed(fs, timeout)):
/// those already done first, then the rest in completion order. A range to iterate once:
///   for (auto& f : mp::futures::as_completed(futs, 5s)) use(f.result());
/// Incrementing past the last completed future waits; once `timeout` (counted from the
/// as_completed() call) has passed, it throws TimeoutError "N (of M) futures unfinished".
template <class R>
class AsCompleted {
 public:
  class iterator {
   public:
    using value_type = Future<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    Future<R>& operator*() const { return *owner_->current_; }
    Future<R>* operator->() const { return &*owner_->current_; }
    iterator& operator++() {
      owner_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.at_end(); }

   private:
    friend class AsCompleted;
    [[nodiscard]] bool at_end() const noexcept { return owner_ == nullptr || !owner_->current_; }
    explicit iterator(AsCompleted* owner) : owner_(owner) {}
    AsCompleted* owner_ = nullptr;
  };

  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;
  AsCompleted(AsCompleted&&) noexcept = default;
  AsCompleted& operator=(AsCompleted&&) noexcept = delete;
  ~AsCompleted() {
    for (auto& f : pending_) detail::future_access::state(f).remove_waiter(waiter_);
  }

  /// Waits for the first completed future. @throws TimeoutError as described above.
  [[nodiscard]] iterator begin() {
    advance();
    return iterator(this);
  }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class T, class Range>
  friend AsCompleted<T> as_completed_of(const Range& fs, Timeout timeout);

  AsCompleted(std::vector<Future<R>> fs, Timeout timeout)
      : waiter_(std::make_shared<detail::completion_waiter>()), total_(fs.size()) {
    if (!timeout.forever()) until_ = std::chrono::steady_clock::now() + *timeout.get();
    for (auto& f : fs) {
      if (detail::future_access::state(f).add_waiter(waiter_)) {
        pending_.push_back(std::move(f));
      } else {
        ready_.push_back(std::move(f));
      }
    }
  }

  void advance() {
    current_.reset();
    if (ready_.empty() && !pending_.empty()) {
      std::unique_lock lock(waiter_->mu);
      const auto arrived = [&] { return !waiter_->completed.empty(); };
      if (!until_) {
        waiter_->cv.wait(lock, arrived);
      } else if (!waiter_->cv.wait_until(lock, *until_, arrived)) {
        throw TimeoutError(std::to_string(pending_.size()) + " (of " + std::to_string(total_) +
                           ") futures unfinished");
      }
      while (!waiter_->completed.empty()) {
        const detail::future_core* done = waiter_->completed.front();
        waiter_->completed.pop_front();
        auto it = std::find_if(pending_.begin(), pending_.end(),
                               [&](const Future<R>& f) { return &detail::future_access::state(f) == done; });
        if (it != pending_.end()) {
          ready_.push_back(std::move(*it));
          pending_.erase(it);
        }
      }
    }
    if (!ready_.empty()) {
      current_.emplace(std::move(ready_.front()));
      ready_.pop_front();
    }
  }

  std::shared_ptr<detail::completion_waiter> waiter_;
  std::size_t total_;
  std::optional<std::chrono::steady_clock::time_point> until_;
  std::deque<Future<R>> ready_;
  std::vector<Future<R>> pending_;
  std::optional<Future<R>> current_;
};

template <class R, class Range>
AsCompleted<R> as_completed_of(const Range& fs, Timeout timeout) {
  return AsCompleted<R>(detail::unique_futures<R>(fs), timeout);
}

/// Python: concurrent.futures.as_completed(fs, timeout=None), over any range of Future<R>.
template <std::ranges::input_range Range>
  requires detail::is_future<detail::future_of_t<Range>>::value
[[nodiscard]] auto as_completed(const Range& fs, Timeout timeout = {}) {
  using F = detail::future_of_t<Range>;
  return as_completed_of<std::remove_cvref_t<decltype(std::declval<F>().result())>>(fs, timeout);
}

/// Waits until the futures of `fs` satisfy `return_when` or `timeout` passes.
/// Python: concurrent.futures.wait(fs, timeout=None, return_when=ALL_COMPLETED).
/// @returns {done, not_done}. @throws ValueError for an unknown return_when.
template <class Range>
auto wait(const Range& fs, Timeout timeout = {}, int return_when = ALL_COMPLETED) {
  using F = detail::future_of_t<Range>;
  static_assert(detail::is_future<F>::value, "mp: futures::wait takes a range of Future<R>");
  using R = std::remove_cvref_t<decltype(std::declval<F>().result())>;
  if (return_when != FIRST_COMPLETED && return_when != FIRST_EXCEPTION && return_when != ALL_COMPLETED) {
    throw ValueError("wait(): return_when must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED, not " +
                     std::to_string(return_when));
  }
  const std::vector<Future<R>> all = detail::unique_futures<R>(fs);
  const auto failed = [](const Future<R>& f) {
    const detail::future_core& st = detail::future_access::state(f);
    std::lock_guard lock(st.mu);
    return st.phase == detail::future_phase::finished && st.failure != nullptr;
  };
  auto waiter = std::make_shared<detail::completion_waiter>();
  std::vector<const Future<R>*> watched;
  std::size_t done = 0;
  bool exception = false;
  for (const auto& f : all) {
    if (detail::future_access::state(f).add_waiter(waiter)) {
      watched.push_back(&f);
    } else {
      ++done;
      exception = exception || failed(f);
    }
  }
  const auto satisfied = [&] {
    if (done == all.size()) return true;
    if (return_when == FIRST_COMPLETED) return done > 0;
    if (return_when == FIRST_EXCEPTION) return exception;
    return false;
  };
  std::optional<std::chrono::steady_clock::time_point> until;
  if (!timeout.forever()) until = std::chrono::steady_clock::now() + *timeout.get();
  {
    std::unique_lock lock(waiter->mu);
    while (!satisfied()) {
      if (waiter->completed.empty()) {
        if (!until) {
          waiter->cv.wait(lock);
        } else if (waiter->cv.wait_until(lock, *until) == std::cv_status::timeout &&
                   waiter->completed.empty()) {
          break;
        }
        continue;
      }
      const detail::future_core* c = waiter->completed.front();
      waiter->completed.pop_front();
      ++done;
      for (const Future<R>* f : watched) {
        if (&detail::future_access::state(*f) == c) {
          lock.unlock();
          exception = exception || failed(*f);
          lock.lock();
        }
      }
    }
  }
  for (const Future<R>* f : watched) detail::future_access::state(*f).remove_waiter(waiter);
  DoneAndNotDone<R> out;
  for (const auto& f : all) (f.done() ? out.done : out.not_done).push_back(f);
  return out;
}

/// The options of a ProcessPoolExecutor (Python's keyword arguments):
///   mp::futures::ProcessPoolExecutor ex({.max_workers = 4, .initializer = init,
///                                        .initargs = mp::args(1), .max_tasks_per_child = 10});
struct ProcessPoolExecutorOptions {
  /// Worker processes; default cpu_count().
  std::optional<int> max_workers = std::nullopt;
  /// The start method's context; default get_context().
  std::optional<Context> mp_context = std::nullopt;
  /// Called once in each worker before its first task (as PoolOptions::initializer).
  PoolInitializer initializer = {};
  PoolInitArgs initargs = {};
  /// Calls a worker runs before it is replaced by a fresh one; default: unlimited.
  std::optional<int> max_tasks_per_child = std::nullopt;
};

/// The options of a ThreadPoolExecutor (Python's keyword arguments).
struct ThreadPoolExecutorOptions {
  /// Worker threads; default min(32, cpu_count() + 4), as in Python.
  std::optional<int> max_workers = std::nullopt;
  /// Names the workers "<prefix>_0", "<prefix>_1", ... (current_process().name() in dummy);
  /// default "ThreadPoolExecutor-N".
  std::string thread_name_prefix = {};
  /// Called once in each worker thread before its first task (as dummy::PoolOptions::initializer).
  dummy::PoolInitializer initializer = {};
  dummy::PoolInitArgs initargs = {};
};

namespace detail {

/// Builds the pool core of an executor.
template <class Backend>
struct executor_core;

/// An executor's options checked as Python checks them, as a Pool's (ProcessPoolExecutorOptions
/// and the MPI executor's, which have the same fields).
/// @throws ValueError for max_workers <= 0 or max_tasks_per_child < 1.
template <class Options>
PoolOptions executor_pool_options(Options& options) {
  if (options.max_workers && *options.max_workers <= 0) {
    throw ValueError("max_workers must be greater than 0");
  }
  if (options.max_tasks_per_child && *options.max_tasks_per_child < 1) {
    throw ValueError("max_tasks_per_child must be >= 1");
  }
  return PoolOptions{.processes = options.max_workers,
                     .initializer = std::move(options.initializer),
                     .initargs = std::move(options.initargs),
                     .maxtasksperchild = options.max_tasks_per_child};
}

template <>
struct executor_core<process_pool_backend> {
  using options_type = ProcessPoolExecutorOptions;
  static std::shared_ptr<pool_core> make(ProcessPoolExecutorOptions options) {
    PoolOptions pool = executor_pool_options(options);
    const Context ctx = options.mp_context ? *options.mp_context : get_context();
    // Two calls per worker at most: the rest stay pending, so cancellable (see the header).
    return process_pool_backend::make_core(std::move(pool), ctx, 2);
  }
};

template <>
struct executor_core<thread_pool_backend> {
  using options_type = ThreadPoolExecutorOptions;
  static std::shared_ptr<thread_pool_core> make(ThreadPoolExecutorOptions options) {
    if (options.max_workers && *options.max_workers <= 0) {
      throw ValueError("max_workers must be greater than 0");
    }
    static std::atomic<int> counter{0};
    std::string prefix = options.thread_name_prefix.empty()
                             ? "ThreadPoolExecutor-" + std::to_string(counter++)
                             : std::move(options.thread_name_prefix);
    thread_pool_config config;
    config.name = [prefix](int n) { return prefix + "_" + std::to_string(n - 1); };
    config.deliver_in_worker = true;
    dummy::PoolOptions pool{.processes = options.max_workers.value_or(std::min(32, cpu_count() + 4)),
                            .initializer = std::move(options.initializer),
                            .initargs = std::move(options.initargs)};
    return thread_pool_backend::make_core(std::move(pool), std::move(config));
  }
};

}  // namespace detail

/// An executor over a pool of workers (Python: concurrent.futures.Executor): the front end shared
/// by ProcessPoolExecutor (worker processes) and ThreadPoolExecutor (worker threads).
///
/// Not copyable, movable. Usable from any thread of the process that created it.
template <class Backend>
class basic_executor {
  using core_type = typename Backend::core_type;

 public:
  using options_type = typename detail::executor_core<Backend>::options_type;

  /// Python: ProcessPoolExecutor() / ThreadPoolExecutor(): the default number of workers.
  basic_executor() : basic_executor(options_type{}) {}
  /// Python: ProcessPoolExecutor(max_workers). @throws ValueError when max_workers <= 0.
  explicit basic_executor(int max_workers) : basic_executor(options_type{.max_workers = max_workers}) {}
  /// Python: the executor's keyword arguments.
  /// @throws ValueError for a bad count; TypeError when initargs do not match the initializer;
  ///   ProcessError when a worker cannot start.
  explicit basic_executor(options_type options)
      : state_(std::make_shared<shared>(detail::executor_core<Backend>::make(std::move(options)))) {}

  basic_executor(const basic_executor&) = delete;
  basic_executor& operator=(const basic_executor&) = delete;
  basic_executor(basic_executor&&) noexcept = default;
  basic_executor& operator=(basic_executor&& other) noexcept {
    if (this != &other) {
      release();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  /// shutdown(true), as Python's `with` block does on exit.
  ~basic_executor() { release(); }

  /// Schedules f(args...) and returns its Future. Python: Executor.submit(fn, *args).
  /// Arguments are copied now (serialized, for processes).
  /// @throws Error "cannot schedule new futures after shutdown"; BrokenProcessPool /
  ///   BrokenThreadPool when the executor is broken (its initializer failed); SerializationError
  ///   when an argument cannot be encoded.
  template <class F, class... A>
  auto submit(F&& f, A&&... a) {
    using Fn = std::decay_t<F>;
    static_assert(Backend::template check_task<Fn, multiprocessing::detail::stored_arg_t<A>...>());
    using R = multiprocessing::detail::pool_result_t<Fn, multiprocessing::detail::stored_arg_t<A>...>;
    shared& s = live();
    auto st = std::make_shared<detail::future_state<R>>();
    const Fn& fn = f;
    const typename Backend::template maker<Fn, multiprocessing::detail::stored_arg_t<A>...> make(*s.core, fn);
    std::vector<typename core_type::chunk_ptr> chunks;
    chunks.push_back(make.make(st, 0, [&](auto add) {
      add(std::forward<A>(a)...);
      return 1u;
    }));
    {
      std::lock_guard lock(s.mu);
      if (s.shut) throw Error("cannot schedule new futures after shutdown");
      std::erase_if(s.pending, [](const auto& w) {
        const auto p = w.lock();
        return !p || p->done();
      });
      s.pending.push_back(st);
      s.core->submit(std::move(chunks));
    }
    return Future<R>(std::move(st));
  }

  /// f applied to every element of `range`, lazily, results in input order.
  /// Python: Executor.map(fn, *iterables, timeout=None, chunksize=1).
  /// The input is read as the results are consumed, a bounded number of calls ahead (Python
  /// reads it all at once); `chunksize` items travel to a worker as one message.
  /// @returns an IMapIterator<R>: iterate it, or next(timeout).
  /// @throws Error after shutdown; ValueError when chunksize < 1. Iterating throws TimeoutError
  ///   once `timeout` (counted from this call) has passed without the next result, and a call's
  ///   exception at its item.
  template <class F, std::ranges::input_range Range>
  [[nodiscard]] auto map(F&& f, Range&& range, Timeout timeout = {}, long chunksize = 1) {
    shared& s = live();
    std::optional<std::chrono::steady_clock::time_point> until;
    if (!timeout.forever()) until = std::chrono::steady_clock::now() + *timeout.get();
    std::lock_guard lock(s.mu);
    if (s.shut) throw Error("cannot schedule new futures after shutdown");
    auto it = s.pool.make_imap(true, std::forward<F>(f), std::forward<Range>(range), chunksize);
    it.impl_->deadline = until;
    it.impl_->timeout_message = "Executor.map(): the next result did not arrive within the timeout";
    return it;
  }

  /// Signals the executor to free its workers once the pending calls are done.
  /// Python: Executor.shutdown(wait=True, *, cancel_futures=False).
  /// `cancel_futures` cancels the futures that have not started; `wait` waits for the calls that
  /// remain and for every worker to exit. Later submit() and map() throw Error. Idempotent.
  /// @throws ProcessError when called with wait from one of the executor's own callbacks.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    if (!state_) return;
    shared& s = *state_;
    std::vector<std::shared_ptr<detail::future_core>> cancel;
    {
      std::lock_guard lock(s.mu);
      s.shut = true;
      if (cancel_futures) {
        for (const auto& w : s.pending) {
          if (auto p = w.lock()) cancel.push_back(std::move(p));
        }
      }
      s.pending.clear();
    }
    for (auto& f : cancel) f->cancel();
    if (s.core->creator() != ::getpid()) return;
    s.core->close();
    if (!cancel.empty()) s.core->poke();
    if (wait) (void)s.core->join_handler(Timeout{});
  }

 private:
  struct shared {
    explicit shared(std::shared_ptr<core_type> c) : core(c), pool(c) {}
    std::shared_ptr<core_type> core;
    basic_pool<Backend> pool;  // for map(): the same core behind the Pool front end
    std::mutex mu;
    bool shut = false;
    // Submitted futures, to cancel on shutdown(cancel_futures=true).
    std::vector<std::weak_ptr<detail::future_core>> pending;
  };

  shared& live() const {
    if (!state_) throw ValueError("Executor was moved from");
    if (state_->core->creator() != ::getpid()) {
      throw ProcessError("an executor can only be used by the process that created it");
    }
    return *state_;
  }

  void release() noexcept {
    if (!state_) return;
    try {
      shutdown(true);
    } catch (...) {
    }
    state_.reset();
  }

  std::shared_ptr<shared> state_;
};

/// Python: concurrent.futures.ProcessPoolExecutor. See basic_executor.
class ProcessPoolExecutor : public basic_executor<multiprocessing::detail::process_pool_backend> {
  using base = basic_executor<multiprocessing::detail::process_pool_backend>;

 public:
  using base::base;
  /// Python: ProcessPoolExecutor(max_workers, mp_context=ctx).
  ProcessPoolExecutor(int max_workers, const Context& mp_context)
      : base(ProcessPoolExecutorOptions{.max_workers = max_workers, .mp_context = mp_context}) {}
};

/// Python: concurrent.futures.ThreadPoolExecutor. See basic_executor.
using ThreadPoolExecutor = basic_executor<multiprocessing::detail::thread_pool_backend>;

}  // namespace multiprocessing::futures

// SPDX-License-Identifier: MIT
// multiprocessing/pool.hpp
//
// Defines Pool, AsyncResult<R> and IMapIterator<R>: a fixed set of worker processes that run
// function calls for the parent (Python: multiprocessing.pool.Pool, AsyncResult, IMapIterator).
//
//   int square(int x) { return x * x; }
//   mp::Pool pool(4);                                   // Python: with Pool(4) as pool:
//   std::vector<int> v = pool.map(square, std::vector{1, 2, 3});
//   auto r = pool.apply_async(square, 7);  r.get(1s);   // 49
//   for (int x : pool.imap(square, std::views::iota(0))) if (x > 100) break;   // lazy, bounded
//
// Tasks follow the spawn rules under every start method (the workers exist before the task): the
// function is a function pointer, a captureless lambda or a default-constructible serializable
// function object, and every argument and result is serializable (handles such as Lock, Value or
// Connection included: their descriptors travel with the task). Violations fail to compile.
//
// Pool is basic_pool over the process backend (detail/pool_process.hpp, detail/pool_core.hpp);
// dummy::Pool (multiprocessing/dummy.hpp) is the same front end over worker threads
// (detail/pool_thread.hpp), where any copyable callable and any movable values work.
//
// Differences from Python, all on the side of never hanging:
//   * A worker that dies (SIGKILL, segfault, _exit, OOM killer) fails exactly the chunk it was
//     running with BrokenProcessPool naming the exit code or signal; chunks it had been given but
//     not started run on another worker, and so do quick chunks it had finished whose results it
//     was still holding back (a worker sends the results of a run of tiny tasks together, none
//     later than 200 µs). It is replaced and the pool keeps serving. (CPython's Pool waits
//     forever for such a task.)
//   * terminate() (and the destructor) fail every unfinished result with CancelledError, so no
//     get() waits forever; busy workers get SIGTERM, then SIGKILL after 0.5 s.
//   * An initializer that throws breaks the pool: every pending and later task fails with
//     BrokenProcessPool naming the exception (CPython restarts the worker forever).
//   * imap/imap_unordered read their input lazily, with a bounded number of tasks in flight, so an
//     infinite range works in constant memory; destroying the iterator cancels the rest. The
//     input is read by the thread that iterates, as the iteration proceeds.
//   * chunksize < 1 is ValueError everywhere (CPython accepts 0 in some calls).
//   * A callback that throws has its exception printed to stderr; the pool keeps working.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <unistd.h>

#include "context.hpp"
#include "detail/pool_core.hpp"
#include "detail/pool_jobs.hpp"
#include "detail/pool_process.hpp"
#include "detail/pool_wire.hpp"
#include "detail/target.hpp"
#include "errors.hpp"
#include "process.hpp"
#include "serialize.hpp"
#include "timeout.hpp"

namespace multiprocessing {

/// Arguments packed for a call (Python: the `args=(...)` tuple), for apply_async with callbacks
/// and for PoolOptions::initargs. Make one with mp::args(...).
template <class... Ts>
struct args_t {
  std::tuple<Ts...> values;
};

/// Packs copies of `values` (C strings become std::string). Python: the tuple passed as args=.
template <class... Ts>
[[nodiscard]] args_t<detail::stored_arg_t<Ts>...> args(Ts&&... values) {
  return {std::tuple<detail::stored_arg_t<Ts>...>(detail::store_arg(std::forward<Ts>(values))...)};
}

class PoolInitializer;
class PoolInitArgs;
struct PoolOptions;
template <class R>
class IMapIterator;

namespace futures {
template <class Backend>
class basic_executor;
}  // namespace futures

namespace detail {

template <class T>
struct is_args_t : std::false_type {};
template <class... Ts>
struct is_args_t<args_t<Ts...>> : std::true_type {};

template <class... A>
inline constexpr bool starts_with_args_t = false;
template <class A0, class... A>
inline constexpr bool starts_with_args_t<A0, A...> = is_args_t<std::remove_cvref_t<A0>>::value;

/// The stored element types of a starmap item (a tuple-like type), for one backend.
template <class Tuple, class Index = std::make_index_sequence<std::tuple_size_v<Tuple>>>
struct star_args;
template <class Tuple, std::size_t... I>
struct star_args<Tuple, std::index_sequence<I...>> {
  template <class Backend, class F>
  using maker = typename Backend::template maker<F, stored_arg_t<std::tuple_element_t<I, Tuple>>...>;
  template <class Backend, class F>
  static constexpr bool check() {
    return Backend::template check_task<F, stored_arg_t<std::tuple_element_t<I, Tuple>>...>();
  }
  /// Adds `item`'s elements as one call's arguments.
  template <class Add, class X>
  static void add(Add& add_one, X&& item) {
    add_one(std::get<I>(item)...);
  }
};

/// The parameter types an initializer loads: its own parameters, decayed (const char* as
/// c_string_arg).
template <class T>
struct callable_params;
template <class R, class... P>
struct callable_params<R (*)(P...)> {
  using type = std::tuple<stored_arg_t<P>...>;
};
template <class R, class... P>
struct callable_params<R (*)(P...) noexcept> : callable_params<R (*)(P...)> {};
template <class C, class R, class... P>
struct callable_params<R (C::*)(P...)> : callable_params<R (*)(P...)> {};
template <class C, class R, class... P>
struct callable_params<R (C::*)(P...) const> : callable_params<R (*)(P...)> {};
template <class C, class R, class... P>
struct callable_params<R (C::*)(P...) noexcept> : callable_params<R (*)(P...)> {};
template <class C, class R, class... P>
struct callable_params<R (C::*)(P...) const noexcept> : callable_params<R (*)(P...)> {};

template <class F>
concept has_plain_call_operator = requires { &F::operator(); };

template <class F>
struct initializer_params {
  using type = typename callable_params<F>::type;
};
template <class F>
  requires std::is_class_v<F> && has_plain_call_operator<F>
struct initializer_params<F> {
  using type = typename callable_params<decltype(&F::operator())>::type;
};

/// The type whose fingerprint describes an argument on the wire (a C string is a std::string).
template <class T>
using wire_arg_t = std::conditional_t<std::is_same_v<T, c_string_arg>, std::string, T>;

template <class Tuple>
struct wire_fingerprint;
template <class... T>
struct wire_fingerprint<std::tuple<T...>> {
  static constexpr std::uint64_t value = serialize::type_fingerprint<std::tuple<wire_arg_t<T>...>>();
  static std::string name() { return serialize::detail::type_name<std::tuple<wire_arg_t<T>...>>(); }
};

template <class F, class Tuple>
struct initializer_runner;
template <class F, class... P>
struct initializer_runner<F, std::tuple<P...>> {
  static constexpr auto address() { return &run_initializer<F, P...>; }
};


/// The process backend's core for a Pool or ProcessPoolExecutor with these settings, its workers
/// started by `launcher` (processes of this machine under a Context, or MPI ranks).
inline std::shared_ptr<pool_core> make_process_pool_core(pool_config config, const PoolInitializer& init,
                                                         const PoolInitArgs& initargs,
                                                         std::unique_ptr<worker_launcher> launcher);

}  // namespace detail

/// The initializer of a Pool's workers (PoolOptions::initializer): a function pointer, a
/// captureless lambda or a serializable function object, called once in each worker before its
/// first task with PoolOptions::initargs. Its parameters must be serializable value types.
class PoolInitializer {
 public:
  PoolInitializer() = default;
  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, PoolInitializer>)
  PoolInitializer(F f) {  // NOLINT(google-explicit-constructor): `.initializer = init`
    using Fn = std::decay_t<F>;
    static_assert(detail::check_pool_callable<Fn>());
    static_assert(detail::is_function_pointer_v<Fn> || detail::has_plain_call_operator<Fn>,
                  "mp: an initializer must be a function pointer or a lambda/function object "
                  "with one non-template operator() (its parameter types are needed)");
    using params = typename detail::initializer_params<Fn>::type;
    static_assert(serialize::serializable<params>,
                  "mp: every parameter of a Pool initializer must be a serializable value type");
    runner_ = detail::code_address(detail::initializer_runner<Fn, params>::address());
    if constexpr (detail::is_function_pointer_v<Fn>) {
      fn_ = detail::code_address(f);
    } else if constexpr (!(std::is_empty_v<Fn> && std::default_initializable<Fn>)) {
      serialize::Writer w;
      w.save(f);
      if (!w.fds().empty()) {
        throw ValueError("Pool: an initializer function object cannot hold descriptors");
      }
      object_ = std::move(w).take();
    }
    fingerprint_ = detail::wire_fingerprint<params>::value;
    params_name_ = detail::wire_fingerprint<params>::name();
  }

  /// True when an initializer was given.
  [[nodiscard]] explicit operator bool() const noexcept { return runner_ != 0; }

 private:
  friend std::shared_ptr<detail::pool_core> detail::make_process_pool_core(
      detail::pool_config, const PoolInitializer&, const PoolInitArgs&,
      std::unique_ptr<detail::worker_launcher>);
  std::uintptr_t runner_ = 0;
  std::optional<std::uintptr_t> fn_;
  std::vector<std::byte> object_;
  std::uint64_t fingerprint_ = 0;
  std::string params_name_;
};

/// The initializer's arguments (PoolOptions::initargs): `mp::args(...)`, serialized at once. Their
/// types must be the initializer's parameter types after decay (C strings may stand for
/// std::string); the Pool constructor checks this and throws TypeError otherwise.
class PoolInitArgs {
 public:
  PoolInitArgs() : PoolInitArgs(args()) {}
  template <class... Ts>
  PoolInitArgs(const args_t<Ts...>& packed) {  // NOLINT(google-explicit-constructor)
    static_assert((serialize::serializable<Ts> && ...),
                  "mp: every initarg of a Pool must be serializable");
    serialize::Writer w;
    std::apply([&](const auto&... v) { (w.save(v), ...); }, packed.values);
    fds_ = std::make_shared<std::vector<detail::unique_fd>>();
    for (const int fd : w.fds()) fds_->push_back(detail::dup_fd(fd, "pool initarg descriptor"));
    bytes_ = std::move(w).take();
    fingerprint_ = detail::wire_fingerprint<std::tuple<Ts...>>::value;
    types_name_ = detail::wire_fingerprint<std::tuple<Ts...>>::name();
  }

 private:
  friend std::shared_ptr<detail::pool_core> detail::make_process_pool_core(
      detail::pool_config, const PoolInitializer&, const PoolInitArgs&,
      std::unique_ptr<detail::worker_launcher>);
  std::vector<std::byte> bytes_;
  std::shared_ptr<std::vector<detail::unique_fd>> fds_;
  std::uint64_t fingerprint_ = 0;
  std::string types_name_;
};

/// Pool's keyword arguments (Python: Pool(processes, initializer, initargs, maxtasksperchild)):
///   mp::Pool pool({.processes = 4, .initializer = init, .initargs = mp::args(1, "x"),
///                  .maxtasksperchild = 100});
struct PoolOptions {
  /// Worker count; default cpu_count().
  std::optional<int> processes = std::nullopt;
  /// Called once in each worker before its first task.
  PoolInitializer initializer = {};
  /// The initializer's arguments.
  PoolInitArgs initargs = {};
  /// Tasks (chunks) a worker runs before it is replaced by a fresh one; default: unlimited.
  std::optional<int> maxtasksperchild = std::nullopt;
};


/// The result of an asynchronous Pool call (Python: multiprocessing.pool.AsyncResult). A handle:
/// copies share one result. AsyncResult<void> for tasks returning void.
template <class R>
class AsyncResult {
 public:
  /// Waits for the result and returns it (a copy: get() may be called again).
  /// Python: AsyncResult.get(timeout=None).
  /// @returns the task's value (nothing for void tasks; a std::vector for map_async).
  /// @throws TimeoutError when it did not arrive within `timeout` (it may still arrive later);
  ///   the task's own exception: the same type for std:: and mp:: exceptions, RemoteError (with
  ///   the original type name and the worker's pid) otherwise; BrokenProcessPool when the worker
  ///   died while running it; CancelledError when the pool was terminated first.
  /// Memory ordering: what the worker did before returning is visible (through shared memory)
  ///   after get() returns.
  /// Peer death: a worker's death ends the wait with BrokenProcessPool; never waits forever.
  R get(Timeout timeout = {}) const {
    if (!state().wait(timeout)) {
      throw TimeoutError("AsyncResult.get(): the result did not arrive within the timeout");
    }
    if (st_->error) std::rethrow_exception(st_->error);
    if constexpr (!std::is_void_v<R>) return *st_->value;
  }

  /// Waits until the result is ready or `timeout` passes. Python: AsyncResult.wait(timeout).
  /// @returns ready() (Python returns None).
  /// Peer death: as get().
  bool wait(Timeout timeout = {}) const { return state().wait(timeout); }  // NOLINT(modernize-use-nodiscard)

  /// True once the call has completed (callbacks included). Python: AsyncResult.ready().
  [[nodiscard]] bool ready() const {
    std::lock_guard lock(state().mu);
    return st_->ready;
  }

  /// True when the call completed without an exception. Python: AsyncResult.successful().
  /// @throws ValueError when the result is not ready yet.
  [[nodiscard]] bool successful() const {
    std::lock_guard lock(state().mu);
    if (!st_->ready) throw ValueError("AsyncResult.successful(): the result is not ready");
    return !st_->error;
  }

 private:
  template <class Backend>
  friend class basic_pool;
  explicit AsyncResult(std::shared_ptr<detail::async_state<R>> st) : st_(std::move(st)) {}
  /// get() for the only handle, without callbacks (apply, map): moves the value out.
  R take() {
    (void)state().wait(Timeout{});
    if (st_->error) std::rethrow_exception(st_->error);
    if constexpr (!std::is_void_v<R>) return std::move(*st_->value);
  }
  [[nodiscard]] detail::async_state<R>& state() const {
    if (!st_) throw ValueError("AsyncResult was moved from");
    return *st_;
  }
  std::shared_ptr<detail::async_state<R>> st_;
};

/// The lazy result of imap/imap_unordered (Python: multiprocessing.pool.IMapIterator), and of
/// futures Executor.map: a range to iterate once, or next(timeout). For imap it feeds its input to
/// the pool as it is consumed, keeping a bounded number of tasks in flight; destroying it cancels
/// tasks not yet started. Move-only; one thread at a time. The input range it was given (if an
/// lvalue) must outlive it.
template <class R>
class IMapIterator {
 public:
  IMapIterator(IMapIterator&&) noexcept = default;
  IMapIterator& operator=(IMapIterator&& other) noexcept {
    if (this != &other) {
      cancel();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }
  IMapIterator(const IMapIterator&) = delete;
  IMapIterator& operator=(const IMapIterator&) = delete;
  ~IMapIterator() { cancel(); }

  /// The next result (input order for imap, completion order for imap_unordered), waiting up to
  /// `timeout` (for Executor.map, also no later than map's own timeout). Python:
  /// IMapIterator.next(timeout).
  /// @returns nullopt once every result has been returned (Python: StopIteration).
  /// @throws TimeoutError when none arrived in time; the task's exception for that item (as
  ///   AsyncResult::get; iteration may continue after it); ValueError "Pool not running" when more
  ///   input must be sent to a terminated pool.
  /// Peer death: a dead worker's items throw BrokenProcessPool; never waits forever.
  [[nodiscard]] std::optional<R> next(Timeout timeout = {}) {
    if (!impl_) throw ValueError("IMapIterator was moved from");
    return impl_->next(timeout);
  }

 private:
  struct impl_base;

 public:
  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    R& operator*() const { return *owner_->current_; }
    R* operator->() const { return &*owner_->current_; }
    iterator& operator++() {
      owner_->current_ = owner_->next(Timeout{});
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.owner_ == nullptr || !it.owner_->current_;
    }

   private:
    friend class IMapIterator;
    explicit iterator(impl_base* owner) : owner_(owner) {}
    impl_base* owner_ = nullptr;
  };

  /// Fetches the first result (blocking) and returns an input iterator; iterate once.
  [[nodiscard]] iterator begin() {
    if (!impl_) throw ValueError("IMapIterator was moved from");
    impl_->current_ = impl_->next(Timeout{});
    return iterator(impl_.get());
  }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

 private:
  template <class Backend>
  friend class basic_pool;
  template <class Backend>
  friend class futures::basic_executor;

  struct impl_base {  // NOLINT(cppcoreguidelines-special-member-functions): copy deleted below
    impl_base(bool ordered, std::size_t chunk, std::size_t bound)
        : job(std::make_shared<detail::imap_job<R>>(ordered)), chunksize(chunk), limit(bound) {}
    impl_base(const impl_base&) = delete;
    impl_base& operator=(const impl_base&) = delete;
    virtual ~impl_base() = default;
    /// Submits the next chunk of input, whose first item has index `first`.
    /// @returns its item count; 0 when the input is exhausted.
    virtual std::size_t submit_next(std::size_t first) = 0;
    /// The input is exhausted or abandoned: the pool no longer waits for this feeder.
    virtual void feeder_done() noexcept = 0;
    /// A cancelled job: let the pool drop its chunks and re-check whether it is done.
    virtual void poke() noexcept = 0;

    void feed() {
      while (!exhausted && submitted - yielded < limit) {
        const std::size_t n = submit_next(submitted);
        if (n == 0) {
          exhausted = true;
          feeder_done();
          break;
        }
        submitted += n;
      }
    }

    std::optional<R> next(Timeout timeout) {
      std::optional<std::chrono::steady_clock::time_point> until = deadline;
      if (!timeout.forever()) {
        const auto mine = std::chrono::steady_clock::now() + *timeout.get();
        if (!until || mine < *until) until = mine;
      }
      for (;;) {
        feed();
        std::unique_lock lock(job->mu);
        for (;;) {
          std::optional<typename detail::imap_job<R>::entry> got;
          if (job->ordered) {
            if (auto it = job->by_index.find(yielded); it != job->by_index.end()) {
              got.emplace(std::move(it->second));
              job->by_index.erase(it);
            }
          } else if (!job->arrived.empty()) {
            got.emplace(std::move(job->arrived.front()));
            job->arrived.pop_front();
          }
          if (got) {
            ++yielded;
            lock.unlock();
            if (got->error) std::rethrow_exception(got->error);
            return std::move(got->value);
          }
          if (exhausted && yielded == submitted) return std::nullopt;
          if (!exhausted && submitted - yielded < limit) break;  // room to feed more
          if (!until) {
            job->cv.wait(lock);
          } else if (job->cv.wait_until(lock, *until) == std::cv_status::timeout) {
            throw TimeoutError(timeout_message);
          }
        }
      }
    }

    void cancel() noexcept {
      job->finished.store(true);
      if (!exhausted) {
        exhausted = true;
        feeder_done();
      } else {
        poke();
      }
    }

    std::shared_ptr<detail::imap_job<R>> job;
    std::size_t chunksize;
    std::size_t limit;  // items submitted and not yet returned
    std::size_t submitted = 0;
    std::size_t yielded = 0;
    bool exhausted = false;
    std::optional<R> current_;
    /// Executor.map: no result is waited for past this point.
    std::optional<std::chrono::steady_clock::time_point> deadline;
    const char* timeout_message = "IMapIterator.next(): no result within the timeout";
  };

  /// A feeder over `Stored`: `Range&` for an lvalue input (it must outlive the iterator), the
  /// range itself (moved in) for an rvalue. Maker builds the backend's chunks.
  template <class Core, class Maker, class F, class Stored>
  struct impl final : impl_base {
    template <class Range>
    impl(std::shared_ptr<Core> c, bool ordered, std::size_t chunk, std::size_t bound, F fn, Range&& r)
        : impl_base(ordered, chunk, bound), core(std::move(c)), f(std::move(fn)),
          view(std::forward<Range>(r)), maker(*core, f) {}
    std::size_t submit_next(std::size_t first) override {
      if (!it) it.emplace(std::ranges::begin(view));
      if (*it == std::ranges::end(view)) return 0;
      auto c = maker.make(this->job, first, [&](auto add) {
        std::uint32_t n = 0;
        for (; n < this->chunksize && *it != std::ranges::end(view); ++n, ++*it) add(**it);
        return n;
      });
      const std::size_t n = c->count;
      std::vector<typename Core::chunk_ptr> one;
      one.push_back(std::move(c));
      core->submit(std::move(one), true);
      return n;
    }
    void feeder_done() noexcept override {
      try {
        core->remove_feeder();
      } catch (...) {
      }
    }
    void poke() noexcept override {
      try {
        core->poke();
      } catch (...) {
      }
    }
    std::shared_ptr<Core> core;
    F f;
    Stored view;
    std::optional<std::ranges::iterator_t<Stored>> it;
    Maker maker;
  };

  explicit IMapIterator(std::unique_ptr<impl_base> p) : impl_(std::move(p)) {}
  void cancel() noexcept {
    if (impl_) impl_->cancel();
  }

  std::unique_ptr<impl_base> impl_;
};

/// A pool of workers (Python: multiprocessing.pool.Pool): the front end shared by mp::Pool
/// (worker processes) and mp::dummy::Pool (worker threads). Backend is detail::process_pool_backend
/// or detail::thread_pool_backend.
///
/// Not copyable (one pool, one set of workers); movable. Every method may be called from any
/// thread of the process that created the pool; from another process (a forked child) they
/// throw ProcessError. Callbacks run in the parent, one at a time, in the pool's result-handler
/// thread: keep them short, do not wait on another result of the same pool in them, and do not
/// join, terminate or destroy the pool from them (join and terminate throw ProcessError there).
///
/// How the process backend works: each worker has its own socketpair with the parent. The calling
/// thread serializes a call (or a chunk of map items) as [runner id, function, arguments]: function
/// pointers and the type-erased runner travel as ids into a per-pool table of code references
/// (detail/code_ref.hpp, checked against the worker's build-id once per id), so a task costs a
/// few bytes beyond its arguments. One handler thread gives chunks to workers (a few per worker,
/// more when tasks prove quick), reads results and exceptions, runs callbacks, and polls every
/// worker's pidfd to notice deaths (no SIGCHLD handler). Descriptors of handle arguments and
/// results ride as SCM_RIGHTS. See detail/pool_wire.hpp and detail/pool_core.hpp.
template <class Backend>
class basic_pool {
  using core_type = typename Backend::core_type;

 public:
  using options_type = typename Backend::options_type;

  /// cpu_count() workers (processes under the default context's start method). Python: Pool().
  /// @throws ProcessError when a worker cannot be started (the message says why).
  basic_pool() : basic_pool(options_type{}) {}
  /// `processes` workers. Python: Pool(processes). @throws ValueError when processes < 1.
  explicit basic_pool(int processes) : basic_pool(options_type{.processes = processes}) {}
  /// Python: Pool(processes, initializer, initargs, maxtasksperchild).
  /// @throws ValueError when processes < 1 or maxtasksperchild < 1; TypeError when initargs do
  ///   not match the initializer's parameters; ProcessError when a worker cannot start.
  explicit basic_pool(options_type options) : core_(Backend::make_core(std::move(options))) {}
  /// A pool whose workers start under `ctx`'s start method (what ctx.Pool(...) calls).
  basic_pool(options_type options, const Context& ctx)
    requires std::same_as<Backend, detail::process_pool_backend>
      : core_(Backend::make_core(std::move(options), ctx)) {}

  basic_pool(const basic_pool&) = delete;
  basic_pool& operator=(const basic_pool&) = delete;
  basic_pool(basic_pool&& other) noexcept = default;
  basic_pool& operator=(basic_pool&& other) noexcept {
    if (this != &other) {
      release();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  /// terminate(), as Python's `with Pool() as pool:` does on exit.
  ~basic_pool() { release(); }

  /// Calls f(args...) in a worker and waits for the result. Python: Pool.apply(func, args).
  /// @returns what f returned. @throws as AsyncResult::get; ValueError "Pool not running".
  /// Peer death: BrokenProcessPool when the worker dies during the call.
  template <class F, class... A>
  auto apply(F&& f, A&&... a) {
    return apply_async(std::forward<F>(f), std::forward<A>(a)...).take();
  }

  /// Submits f(args...) and returns at once. Python: Pool.apply_async(func, args).
  /// Arguments are copied now (serialized, for processes: a later change to them has no effect).
  /// @throws ValueError "Pool not running" after close()/terminate(); BrokenProcessPool when the
  ///   pool is broken; SerializationError when an argument cannot be encoded.
  template <class F, class... A>
    requires(!detail::starts_with_args_t<A...>)
  auto apply_async(F&& f, A&&... a) {
    return apply_async(std::forward<F>(f), args(std::forward<A>(a)...));
  }

  /// Python: Pool.apply_async(func, args, callback=None, error_callback=None). `callback(result)`
  /// (or `callback()` for void) runs in the handler thread when the call succeeds;
  /// `error_callback(std::exception_ptr)` or `error_callback(const std::exception&)` when it fails
  /// (before get() returns in either case).
  template <class F, class... Ts, class Callback = detail::no_callback,
            class ErrorCallback = detail::no_callback>
  auto apply_async(F&& f, args_t<Ts...> packed, Callback callback = {},
                   ErrorCallback error_callback = {});

  /// Calls f on every element of `range` and returns the results in order. Python:
  /// Pool.map(func, iterable, chunksize=None): the input is cut into chunks of `chunksize`
  /// items (default: len / (4 * processes), rounded up), each sent to a worker as one message.
  /// A single-pass input range is read whole first (map is eager, as in Python).
  /// @returns std::vector of the results (nothing when f returns void).
  /// @throws ValueError when chunksize < 1 or the pool is not running; the exception of the first
  ///   failing item to arrive (as AsyncResult::get); SerializationError for an argument.
  /// Memory ordering: as AsyncResult::get.
  /// Peer death: a worker that dies running a chunk fails the map with BrokenProcessPool; chunks
  ///   it held but had not started run elsewhere.
  template <class F, std::ranges::input_range Range>
  auto map(F&& f, Range&& range, std::optional<long> chunksize = std::nullopt) {
    return map_async(std::forward<F>(f), std::forward<Range>(range), chunksize).take();
  }

  /// Python: Pool.map_async(func, iterable, chunksize, callback, error_callback): map without
  /// waiting. The callback receives the whole result vector; the error callback the first
  /// exception (the result then fails at once; chunks not yet started are dropped).
  /// @returns AsyncResult<std::vector<R>> (AsyncResult<void> for void tasks).
  /// @throws as map, except the tasks' own exceptions, which the AsyncResult carries.
  template <class F, std::ranges::input_range Range, class Callback = detail::no_callback,
            class ErrorCallback = detail::no_callback>
  auto map_async(F&& f, Range&& range, std::optional<long> chunksize = std::nullopt,
                 Callback callback = {}, ErrorCallback error_callback = {}) {
    return map_impl<false>(std::forward<F>(f), std::forward<Range>(range), chunksize,
                           std::move(callback), std::move(error_callback));
  }

  /// Like map, with each element a tuple (std::tuple, std::pair, std::array) unpacked into f's
  /// arguments. Python: Pool.starmap(func, iterable, chunksize=None).
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& f, Range&& range, std::optional<long> chunksize = std::nullopt) {
    return starmap_async(std::forward<F>(f), std::forward<Range>(range), chunksize).take();
  }

  /// Python: Pool.starmap_async(func, iterable, chunksize, callback, error_callback). As
  /// map_async, with tuples unpacked.
  template <class F, std::ranges::input_range Range, class Callback = detail::no_callback,
            class ErrorCallback = detail::no_callback>
  auto starmap_async(F&& f, Range&& range, std::optional<long> chunksize = std::nullopt,
                     Callback callback = {}, ErrorCallback error_callback = {}) {
    return map_impl<true>(std::forward<F>(f), std::forward<Range>(range), chunksize,
                          std::move(callback), std::move(error_callback));
  }

  /// Lazy map: results in input order as they arrive. Python: Pool.imap(func, iterable,
  /// chunksize=1). The input is read by the iterating thread while it iterates, at most
  /// max(32, 16 * processes) * chunksize items ahead of the consumer, so an infinite range works
  /// in constant memory (CPython reads the whole input at once). An rvalue range is moved into
  /// the iterator; an lvalue range must outlive it. Destroying the iterator (breaking out of the
  /// loop) cancels the tasks not yet started. An iterator created before close() may go on
  /// feeding the pool after it; join() waits until it is exhausted or destroyed.
  /// @returns an IMapIterator<R>: `for (auto&& x : pool.imap(f, xs))` or `it.next(timeout)`.
  /// @throws ValueError when chunksize < 1 or the pool is not running.
  /// Peer death: the items of a chunk whose worker died throw BrokenProcessPool from next().
  template <class F, std::ranges::input_range Range>
  [[nodiscard]] auto imap(F&& f, Range&& range, long chunksize = 1) {
    return make_imap(true, std::forward<F>(f), std::forward<Range>(range), chunksize);
  }

  /// As imap, in completion order. Python: Pool.imap_unordered(func, iterable, chunksize=1).
  template <class F, std::ranges::input_range Range>
  [[nodiscard]] auto imap_unordered(F&& f, Range&& range, long chunksize = 1) {
    return make_imap(false, std::forward<F>(f), std::forward<Range>(range), chunksize);
  }

  /// Stops accepting tasks; the workers exit once every submitted task has completed (and every
  /// imap iterator created before has been consumed or destroyed). Python: Pool.close().
  /// Does not wait (join() does); idempotent.
  void close() { core().close(); }

  /// Stops the workers now: SIGTERM, then SIGKILL after 0.5 s; every unfinished result fails
  /// with CancelledError. Returns when the workers are gone. Python: Pool.terminate().
  /// Threads (dummy::Pool) cannot be stopped: their running calls are waited for.
  /// @throws ProcessError when called from one of the pool's callbacks.
  void terminate() { core().terminate(); }

  /// Waits for the workers to exit. Python: Pool.join().
  /// @returns false when `timeout` passed first (Python's join has no timeout).
  /// @throws ValueError "Pool is still running" before close() or terminate(); ProcessError when
  ///   called from one of the pool's callbacks.
  /// Peer death: a worker that died is reaped and, while tasks remain, replaced; join() returns
  ///   once the remaining tasks are done or failed.
  bool join(Timeout timeout = {}) {  // NOLINT(modernize-use-nodiscard): Python's join returns None
    core_type& c = core();
    if (c.current_state() == detail::pool_state::run) throw ValueError("Pool is still running");
    return c.join_handler(timeout);
  }

  /// The number of workers. Python: Pool._processes.
  [[nodiscard]] int processes() const { return core().processes(); }

 private:
  template <class B>
  friend class futures::basic_executor;

  template <class F, class... Args>
  using maker = typename Backend::template maker<F, Args...>;

  /// An executor's pool: the front end over a core it configured itself.
  explicit basic_pool(std::shared_ptr<core_type> core) : core_(std::move(core)) {}

  [[nodiscard]] core_type& core() const {
    if (!core_) throw ValueError("Pool was moved from");
    if (core_->creator() != ::getpid()) {
      throw ProcessError("a Pool can only be used by the process that created it");
    }
    return *core_;
  }

  void release() noexcept {
    if (!core_) return;
    if (core_->creator() == ::getpid()) {
      try {
        core_->terminate();
      } catch (...) {
      }
    }
    core_.reset();
  }

  /// Python's default: ceil(n / (4 * processes)).
  [[nodiscard]] std::size_t default_chunksize(std::size_t n) const {
    const auto workers = static_cast<std::size_t>(core().processes()) * 4;
    return std::max<std::size_t>(1, (n + workers - 1) / workers);
  }

  template <bool Star, class F, class Range, class Callback, class ErrorCallback>
  auto map_impl(F&& f, Range&& range, std::optional<long> chunksize, Callback callback,
                ErrorCallback error_callback);

  template <class F, class Range>
  auto make_imap(bool ordered, F&& f, Range&& range, long chunksize);

  std::shared_ptr<core_type> core_;
};

/// A pool of worker processes (Python: multiprocessing.pool.Pool). See basic_pool.
using Pool = basic_pool<detail::process_pool_backend>;

// ---------------------------------------------------------------------------------------------

namespace detail {

/// chunksize as a count; ValueError when < 1.
inline std::size_t checked_chunksize(long chunksize) {
  if (chunksize < 1) {
    throw ValueError("chunksize must be a positive integer (>= 1), not " + std::to_string(chunksize));
  }
  return static_cast<std::size_t>(chunksize);
}

/// Chunks of `chunksize` items of the first `n` of `items` (a forward range) for `job`;
/// `add_item(add, element)` adds one element's arguments.
template <class Maker, class Job, class Items, class AddItem>
auto cut_chunks(const Maker& maker, const std::shared_ptr<Job>& job, Items& items, std::size_t n,
                std::size_t chunksize, AddItem add_item) {
  std::vector<decltype(maker.make(job, 0, [](auto) { return 0u; }))> chunks;
  chunks.reserve((n + chunksize - 1) / chunksize);
  auto it = std::ranges::begin(items);
  for (std::size_t first = 0; first < n; first += chunksize) {
    chunks.push_back(maker.make(job, first, [&](auto add) {
      std::uint32_t count = 0;
      for (; count < chunksize && first + count < n; ++count, ++it) add_item(add, *it);
      return count;
    }));
  }
  return chunks;
}

inline std::shared_ptr<pool_core> make_process_pool_core(pool_config config, const PoolInitializer& init,
                                                         const PoolInitArgs& initargs,
                                                         std::unique_ptr<worker_launcher> launcher) {
  check_initargs(static_cast<bool>(init), !initargs.bytes_.empty(),
                 init.fingerprint_ == initargs.fingerprint_, initargs.types_name_, init.params_name_);
  auto core = std::make_shared<pool_core>(std::move(launcher), std::move(config));
  // Encoded here, now that the code table exists.
  if (init) {
    serialize::Writer w;
    w.save(static_cast<std::uint8_t>(pool_msg::init));
    w.save(std::uint8_t{1});
    const std::uint32_t runner = core->code_id(init.runner_);
    std::uint32_t needed = runner + 1;
    w.save(runner);
    if (init.fn_) {
      const std::uint32_t fn = core->code_id(*init.fn_);
      needed = std::max(needed, fn + 1);
      w.save(fn);
    }
    w.write_bytes(init.object_.data(), init.object_.size());
    w.write_bytes(initargs.bytes_.data(), initargs.bytes_.size());
    std::vector<unique_fd> fds;
    for (const auto& fd : *initargs.fds_) fds.push_back(dup_fd(fd.get(), "pool initarg"));
    core->set_initializer(std::move(w).take(), std::move(fds), needed);
  }
  core->start();
  return core;
}

inline std::shared_ptr<pool_core> process_pool_backend::make_core(PoolOptions options) {
  return make_core(std::move(options), get_context());
}

inline std::shared_ptr<pool_core> process_pool_backend::make_core(PoolOptions options, const Context& ctx,
                                                                 std::size_t max_prefetch) {
  pool_config config;
  std::tie(config.processes, config.maxtasks) = checked_pool_size(options, cpu_count());
  config.max_prefetch = std::max<std::size_t>(1, max_prefetch);
  return make_process_pool_core(std::move(config), options.initializer, options.initargs,
                                std::make_unique<process_launcher>(ctx));
}

}  // namespace detail

template <class Backend>
template <class F, class... Ts, class Callback, class ErrorCallback>
auto basic_pool<Backend>::apply_async(F&& f, args_t<Ts...> packed, Callback callback,
                                      ErrorCallback error_callback) {
  using Fn = std::decay_t<F>;
  static_assert(Backend::template check_task<Fn, Ts...>());
  using R = detail::pool_result_t<Fn, Ts...>;
  core_type& c = core();
  auto state = std::make_shared<detail::async_state<R>>();
  state->on_value = detail::wrap_callback<R>(std::move(callback));
  state->on_error = detail::wrap_error_callback(std::move(error_callback));
  auto job = std::make_shared<detail::single_job<R>>(state);
  const Fn& fn = f;
  const maker<Fn, Ts...> make(c, fn);
  std::vector<typename core_type::chunk_ptr> chunks;
  chunks.push_back(make.make(job, 0, [&](auto add) {
    std::apply([&](auto&... v) { add(std::move(v)...); }, packed.values);
    return 1u;
  }));
  c.submit(std::move(chunks));
  return AsyncResult<R>(std::move(state));
}

template <class Backend>
template <bool Star, class F, class Range, class Callback, class ErrorCallback>
auto basic_pool<Backend>::map_impl(F&& f, Range&& range, std::optional<long> chunksize,
                                   Callback callback, ErrorCallback error_callback) {
  using Fn = std::decay_t<F>;
  using Element = std::ranges::range_value_t<Range>;
  if constexpr (!std::ranges::forward_range<Range>) {
    // A single-pass input: take it all first (map is eager, as in Python).
    std::vector<Element> items;
    for (auto&& x : range) items.push_back(std::forward<decltype(x)>(x));
    return map_impl<Star>(std::forward<F>(f), items, chunksize, std::move(callback),
                          std::move(error_callback));
  } else {
    if (chunksize) (void)detail::checked_chunksize(*chunksize);
    core_type& c = core();
    const Fn& fn = f;
    const auto n = static_cast<std::size_t>(std::ranges::distance(range));
    const std::size_t size = chunksize ? static_cast<std::size_t>(*chunksize) : default_chunksize(n);
    auto run = [&]<class Maker>(const Maker& make, auto add_item) {
      using R = typename Maker::result_type;
      using Job = detail::map_job<R>;
      auto state = std::make_shared<detail::async_state<typename Job::result_type>>();
      state->on_value = detail::wrap_callback<typename Job::result_type>(std::move(callback));
      state->on_error = detail::wrap_error_callback(std::move(error_callback));
      auto job = std::make_shared<Job>(state, n);
      if (n == 0) {
        c.check_running(false);
        c.post([job] { job->complete(); });  // in the handler thread, like every callback
      } else {
        const std::shared_ptr<detail::result_sink<R>> sink = job;
        c.submit(detail::cut_chunks(make, sink, range, n, size, add_item));
      }
      return AsyncResult<typename Job::result_type>(std::move(state));
    };
    if constexpr (Star) {
      using star = detail::star_args<std::remove_cvref_t<Element>>;
      static_assert(star::template check<Backend, Fn>());
      const typename star::template maker<Backend, Fn> make(c, fn);
      return run(make, [](auto& add, auto&& item) { star::add(add, item); });
    } else {
      using A = detail::stored_arg_t<Element>;
      static_assert(Backend::template check_task<Fn, A>());
      const maker<Fn, A> make(c, fn);
      return run(make, [](auto& add, auto&& item) { add(item); });
    }
  }
}

template <class Backend>
template <class F, class Range>
auto basic_pool<Backend>::make_imap(bool ordered, F&& f, Range&& range, long chunksize) {
  using Fn = std::decay_t<F>;
  using Stored = std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>>;
  using A = detail::stored_arg_t<std::ranges::range_value_t<Stored>>;
  static_assert(Backend::template check_task<Fn, A>());
  using R = detail::pool_result_t<Fn, A>;
  static_assert(!std::is_void_v<R>, "mp: imap of a function returning void: use map or apply_async");
  const std::size_t size = detail::checked_chunksize(chunksize);
  core_type& c = core();
  // In flight (submitted, not yet returned): enough to keep every worker's queue full while the
  // consumer catches up, and still constant.
  const std::size_t bound = std::max<std::size_t>(32, 16 * static_cast<std::size_t>(c.processes())) * size;
  using Impl = typename IMapIterator<R>::template impl<core_type, maker<Fn, A>, Fn, Stored>;
  c.add_feeder();
  std::unique_ptr<typename IMapIterator<R>::impl_base> p;
  try {
    p = std::make_unique<Impl>(core_, ordered, size, bound, Fn(std::forward<F>(f)),
                               std::forward<Range>(range));
  } catch (...) {
    c.remove_feeder();
    throw;
  }
  IMapIterator<R> result(std::move(p));
  result.impl_->feed();  // start the workers now, as Python's imap does
  return result;
}

// Context factories (declared in context.hpp).
inline Pool Context::Pool() const { return multiprocessing::Pool(PoolOptions{}, *this); }
inline Pool Context::Pool(int processes) const {
  return multiprocessing::Pool(PoolOptions{.processes = processes}, *this);
}
inline Pool Context::Pool(PoolOptions options) const {
  return multiprocessing::Pool(std::move(options), *this);
}

}  // namespace multiprocessing

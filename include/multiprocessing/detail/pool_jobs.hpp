// SPDX-License-Identifier: MIT
// multiprocessing/detail/pool_jobs.hpp
//
// What the front ends of pools and executors (pool.hpp, futures.hpp) share with both backends
// (detail/pool_core.hpp runs chunks in worker processes, detail/pool_thread.hpp in threads): the
// state of a pool, the jobs that receive the results of one submission (apply_async, map, imap,
// submit), and the state behind AsyncResult.
//
// A backend runs chunks (a batch of calls of one function) and hands each item's outcome to the
// chunk's job: result_sink<R>::put() with the value, pool_job::error() with the exception. It calls
// them from one thread at a time (the pool's result-handler thread, where callbacks run), and
// pool_job::begin() just before a chunk starts, so a cancelled job's chunks are dropped unstarted.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "../errors.hpp"
#include "../timeout.hpp"
#include "remote_exception.hpp"

namespace multiprocessing::detail {

/// Python: Pool's RUN, CLOSE and TERMINATE.
enum class pool_state { run, close, terminate };

/// "No callback given".
struct no_callback {};

/// The decayed result of calling F with Args (void stays void).
template <class F, class... Args>
using pool_result_t = std::decay_t<std::invoke_result_t<F&, Args&&...>>;

/// What a job stores for a result of type T (std::monostate for void).
template <class T>
using stored_result_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// Prints an exception that escaped a user callback (the thread running it must keep going).
inline void report_callback_exception(const char* which) noexcept {
  const exception_record rec = record_current_exception();
  std::fprintf(stderr, "multiprocessing: exception in %s: %s%s%s\n", which, rec.type_name.c_str(),
               rec.what.empty() ? "" : ": ", rec.what.c_str());
  std::fflush(stderr);
}

/// The worker count and tasks per worker (0: unlimited) of a Pool's options (mp::PoolOptions or
/// dummy::PoolOptions), checked as Python's Pool checks them. `cpus` is the default count.
/// @throws ValueError when processes < 1 or maxtasksperchild < 1.
template <class Options>
std::pair<int, std::int64_t> checked_pool_size(const Options& options, int cpus) {
  const int processes = options.processes.value_or(cpus);
  if (processes < 1) throw ValueError("Number of processes must be at least 1");
  if (options.maxtasksperchild && *options.maxtasksperchild < 1) {
    throw ValueError("maxtasksperchild must be a positive int or None");
  }
  return {processes, options.maxtasksperchild.value_or(0)};
}

/// Checks a Pool's initargs against its initializer, for both backends: `matches` tells whether
/// the initargs' types are the initializer's parameters (after decay).
/// @throws TypeError naming both when they differ; ValueError for initargs without an initializer.
inline void check_initargs(bool has_initializer, bool has_initargs, bool matches,
                           const std::string& initargs_types, const std::string& parameter_types) {
  if (has_initializer && !matches) {
    throw TypeError("Pool: initargs " + initargs_types + " do not match the initializer's parameters " +
                    parameter_types + " (after decay; pass mp::args(...) of exactly those types)");
  }
  if (!has_initializer && has_initargs) throw ValueError("Pool: initargs given without an initializer");
}

/// A pool's result-handler thread, as both backends start, end and join it. The handler calls
/// finished() as its last act; join() waits for that (or the timeout), then joins the thread once
/// whichever thread asks.
class handler_thread {
 public:
  handler_thread() = default;
  handler_thread(const handler_thread&) = delete;
  handler_thread& operator=(const handler_thread&) = delete;
  /// A copy of the pool inherited by fork: its handler does not exist in this process and must
  /// be neither joined nor detached.
  ~handler_thread() {
    if (thread_ && thread_->joinable()) (void)thread_.release();
  }

  /// Starts the thread (before any other thread can reach the pool). @throws std::system_error.
  template <class Body>
  void start(Body&& body) {
    thread_ = std::make_unique<std::thread>(std::forward<Body>(body));
    id_ = thread_->get_id();
  }

  /// True in the handler thread itself.
  [[nodiscard]] bool is_current() const noexcept { return thread_ && std::this_thread::get_id() == id_; }

  /// Called by the handler as its last act.
  void finished() noexcept {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }

  /// Waits until the handler has finished, then joins it. True at once when it never started.
  /// @returns false when `timeout` passed first.
  bool join(Timeout timeout) {
    if (!thread_) return true;
    {
      std::unique_lock lock(mu_);
      const auto done = [&] { return done_; };
      if (timeout.forever()) {
        cv_.wait(lock, done);
      } else if (!cv_.wait_for(lock, *timeout.get(), done)) {
        return false;
      }
    }
    std::lock_guard join_lock(join_mu_);
    if (thread_->joinable()) thread_->join();
    return true;
  }

 private:
  std::unique_ptr<std::thread> thread_;
  std::thread::id id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::mutex join_mu_;  // one std::thread::join at a time
};

/// Receives the outcomes of one submission's items.
struct pool_job {
  pool_job() = default;
  pool_job(const pool_job&) = delete;
  pool_job& operator=(const pool_job&) = delete;
  virtual ~pool_job() = default;
  /// Item `index` failed with `error`.
  virtual void error(std::size_t index, std::exception_ptr error) = 0;
  /// Called just before one of the job's chunks starts (or is handed to a worker process): false
  /// drops the chunk unstarted. A chunk may begin again after its worker died before running it.
  virtual bool begin() noexcept { return !finished.load(); }
  /// True once no more results are wanted (complete, failed, or cancelled): chunks of this job
  /// not yet started are dropped.
  std::atomic<bool> finished{false};
};

/// A job whose items produce values of type R.
template <class R>
struct result_sink : pool_job {
  using value_type = stored_result_t<R>;
  /// Item `index` succeeded with `value`.
  virtual void put(std::size_t index, value_type&& value) = 0;
};

/// The state behind AsyncResult<T> handles.
template <class T>
struct async_state {
  using value_type = stored_result_t<T>;

  std::mutex mu;
  std::condition_variable cv;
  bool settled = false;  // a value or error is stored (callbacks may still run)
  bool ready = false;    // ... and the callbacks have run
  std::atomic<bool> ready_flag{false};  // `ready`, readable without the lock
  std::optional<value_type> value;
  std::exception_ptr error;
  std::function<void(const value_type&)> on_value;
  std::function<void(const std::exception_ptr&)> on_error;

  static constexpr std::chrono::microseconds wait_spin{20};

  void set_value(value_type v) {
    {
      std::lock_guard lock(mu);
      if (settled) return;
      settled = true;
      value.emplace(std::move(v));
    }
    if (on_value) {
      try {
        on_value(*value);  // `value` no longer changes
      } catch (...) {
        report_callback_exception("a Pool callback");
      }
    }
    finish();
  }

  void set_error(std::exception_ptr e) {
    {
      std::lock_guard lock(mu);
      if (settled) return;
      settled = true;
      error = std::move(e);
    }
    if (on_error) {
      try {
        on_error(error);
      } catch (...) {
        report_callback_exception("a Pool error_callback");
      }
    }
    finish();
  }

  void finish() {
    {
      std::lock_guard lock(mu);
      ready = true;
      ready_flag.store(true, std::memory_order_release);
    }
    cv.notify_all();
  }

  bool wait(Timeout timeout) {
    // A quick task answers within microseconds: look for it briefly before sleeping.
    if (timeout.forever() || *timeout.get() > wait_spin) {
      const auto spin_until = std::chrono::steady_clock::now() + wait_spin;
      // Yielding, so that on a busy machine the worker and the handler get the CPU meanwhile.
      while (!ready_flag.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < spin_until) {
        std::this_thread::yield();
      }
    }
    std::unique_lock lock(mu);
    if (timeout.forever()) {
      cv.wait(lock, [&] { return ready; });
      return true;
    }
    return cv.wait_for(lock, *timeout.get(), [&] { return ready; });
  }
};

/// Wraps the user's callback for a value of type T (a no-argument callable for void).
template <class T, class Callback>
std::function<void(const stored_result_t<T>&)> wrap_callback(Callback callback) {
  if constexpr (std::is_same_v<Callback, no_callback>) {
    return {};
  } else if constexpr (std::is_void_v<T>) {
    static_assert(std::is_invocable_v<Callback&>, "mp: the callback of a void task takes no argument");
    return [cb = std::move(callback)](const std::monostate&) mutable { cb(); };
  } else {
    static_assert(std::is_invocable_v<Callback&, const T&>,
                  "mp: the callback must be callable with the task's result");
    return [cb = std::move(callback)](const T& v) mutable { cb(v); };
  }
}

/// Wraps the user's error callback: it may take std::exception_ptr or const std::exception&.
template <class ErrorCallback>
std::function<void(const std::exception_ptr&)> wrap_error_callback(ErrorCallback callback) {
  if constexpr (std::is_same_v<ErrorCallback, no_callback>) {
    return {};
  } else if constexpr (std::is_invocable_v<ErrorCallback&, const std::exception_ptr&>) {
    return [cb = std::move(callback)](const std::exception_ptr& e) mutable { cb(e); };
  } else {
    static_assert(std::is_invocable_v<ErrorCallback&, const std::exception&>,
                  "mp: the error_callback must take std::exception_ptr or const std::exception&");
    return [cb = std::move(callback)](const std::exception_ptr& e) mutable {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        cb(ex);
      } catch (...) {
        cb(std::runtime_error("unknown exception"));
      }
    };
  }
}

/// One call: apply_async.
template <class R>
struct single_job final : result_sink<R> {
  explicit single_job(std::shared_ptr<async_state<R>> s) : state(std::move(s)) {}
  void put(std::size_t, stored_result_t<R>&& v) override {
    if (this->finished.exchange(true)) return;
    state->set_value(std::move(v));
  }
  void error(std::size_t, std::exception_ptr e) override {
    if (this->finished.exchange(true)) return;
    state->set_error(std::move(e));
  }
  std::shared_ptr<async_state<R>> state;
};

/// map_async/starmap_async: n items, one result vector (void for void tasks). A default-
/// constructible R is stored in place in the vector returned (no copy at the end).
template <class R>
struct map_job final : result_sink<R> {
  using result_type = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
  static constexpr bool in_place = !std::is_void_v<R> && std::is_default_constructible_v<stored_result_t<R>>;
  using slot_type = std::conditional_t<in_place, stored_result_t<R>, std::optional<stored_result_t<R>>>;

  map_job(std::shared_ptr<async_state<result_type>> s, std::size_t n) : state(std::move(s)), remaining(n) {
    if constexpr (!std::is_void_v<R>) items.resize(n);
  }
  void put(std::size_t index, stored_result_t<R>&& v) override {
    if (this->finished.load()) return;
    if constexpr (!std::is_void_v<R>) items[index] = std::move(v);
    if (--remaining == 0) complete();
  }
  void error(std::size_t, std::exception_ptr e) override {
    if (this->finished.exchange(true)) return;
    state->set_error(std::move(e));
  }
  void complete() {
    this->finished.store(true);
    if constexpr (std::is_void_v<R>) {
      state->set_value(std::monostate{});
    } else if constexpr (in_place) {
      state->set_value(std::move(items));
    } else {
      std::vector<R> out;
      out.reserve(items.size());
      for (auto& item : items) out.push_back(std::move(*item));
      items.clear();
      state->set_value(std::move(out));
    }
  }
  std::shared_ptr<async_state<result_type>> state;
  std::conditional_t<std::is_void_v<R>, std::monostate, std::vector<slot_type>> items;
  std::size_t remaining;
};

/// imap/imap_unordered and Executor.map: results handed to the iterating thread as they arrive.
template <class R>
struct imap_job final : result_sink<R> {
  struct entry {
    std::optional<R> value;
    std::exception_ptr error;
  };
  explicit imap_job(bool in_order) : ordered(in_order) {}
  void put(std::size_t index, stored_result_t<R>&& v) override {
    if (this->finished.load()) return;
    push(index, entry{std::move(v), nullptr});
  }
  void error(std::size_t index, std::exception_ptr error) override {
    if (this->finished.load()) return;
    push(index, entry{std::nullopt, std::move(error)});
  }
  void push(std::size_t index, entry e) {
    {
      std::lock_guard lock(mu);
      if (ordered) {
        by_index.emplace(index, std::move(e));
      } else {
        arrived.push_back(std::move(e));
      }
    }
    cv.notify_all();
  }
  const bool ordered;
  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::size_t, entry> by_index;  // ordered
  std::deque<entry> arrived;                        // unordered
};

}  // namespace multiprocessing::detail

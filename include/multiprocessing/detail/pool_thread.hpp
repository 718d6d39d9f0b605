// SPDX-License-Identifier: MIT
// multiprocessing/detail/pool_thread.hpp
//
// The thread backend of pools and executors (dummy::Pool, ThreadPoolExecutor): worker threads of
// this process run chunks of calls directly on the arguments (nothing is serialized, so any
// copyable callable and any movable arguments and results work), and one handler thread hands
// the outcomes to their jobs, runs callbacks and posted work, and replaces workers that retire
// after maxtasksperchild. Its interface mirrors pool_core's, so the front ends (pool.hpp,
// futures.hpp) drive both the same way.
//
// What differs from processes: a thread cannot be killed, so terminate() fails every unfinished
// result with CancelledError at once but waits for running calls to return; an exception thrown
// by a task reaches get() as the very same object, not a copy rebuilt from its name.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <unistd.h>

#include "../errors.hpp"
#include "../timeout.hpp"
#include "pool_jobs.hpp"
#include "remote_exception.hpp"
#include "target.hpp"

namespace multiprocessing::dummy {
struct PoolOptions;  // dummy.hpp
}  // namespace multiprocessing::dummy

namespace multiprocessing::detail {

/// The name current_process() reports in a thread of a thread-backed pool, executor or
/// dummy::Process (nullptr elsewhere).
inline thread_local const std::string* current_thread_name = nullptr;

/// A batch of calls of one function, run by a worker thread.
struct thread_chunk {
  thread_chunk() = default;
  thread_chunk(const thread_chunk&) = delete;
  thread_chunk& operator=(const thread_chunk&) = delete;
  virtual ~thread_chunk() = default;
  /// Computes every item's outcome (in a worker thread); stops early once the job is finished.
  virtual void run() noexcept = 0;
  /// Hands the outcomes to the job (in the thread that delivers: see thread_pool_config).
  virtual void deliver() noexcept = 0;

  std::shared_ptr<pool_job> job;
  std::size_t first = 0;  // index of the first item in the job
  std::uint32_t count = 0;
  bool delivered = false;  // by the worker that ran it (deliver_in_worker)
};

using thread_chunk_ptr = std::shared_ptr<thread_chunk>;

template <class F, class R, class... Args>
struct thread_chunk_impl final : thread_chunk {
  using outcome = std::variant<stored_result_t<R>, std::exception_ptr>;

  void run() noexcept override {
    try {
      outcomes.reserve(items.size());
      for (auto& args : items) {
        if (job->finished.load()) break;
        try {
          if constexpr (std::is_void_v<R>) {
            std::apply(*f, std::move(args));
            outcomes.emplace_back(std::in_place_index<0>);
          } else {
            outcomes.emplace_back(std::in_place_index<0>, std::apply(*f, std::move(args)));
          }
        } catch (...) {
          outcomes.emplace_back(std::in_place_index<1>, std::current_exception());
        }
      }
    } catch (...) {  // out of memory for an outcome: the rest fail with it
      failure = std::current_exception();
    }
    items.clear();
  }

  void deliver() noexcept override {
    for (std::size_t i = 0; i < count; ++i) {
      if (job->finished.load()) break;
      const std::size_t index = first + i;
      try {
        if (i >= outcomes.size()) {
          if (failure) sink->error(index, failure);
          continue;
        }
        if (outcomes[i].index() == 0) {
          sink->put(index, std::move(std::get<0>(outcomes[i])));
        } else {
          sink->error(index, std::get<1>(outcomes[i]));
        }
      } catch (...) {  // moving the value out threw
        sink->error(index, std::current_exception());
      }
    }
    outcomes.clear();
  }

  std::shared_ptr<F> f;
  std::shared_ptr<result_sink<R>> sink;
  std::vector<std::tuple<Args...>> items;
  std::vector<outcome> outcomes;
  std::exception_ptr failure;
};

/// The rules for a task of a thread-backed pool: anything callable with the stored arguments.
template <class F, class... Args>
constexpr bool check_thread_task() {
  static_assert(std::is_invocable_v<F&, Args&&...>,
                "mp: the task cannot be called with these arguments (after decay; C strings "
                "become std::string)");
  static_assert(std::is_copy_constructible_v<F>,
                "mp: the task of a thread-backed pool must be copy-constructible (one copy is "
                "shared by the worker threads)");
  static_assert((std::is_move_constructible_v<Args> && ...),
                "mp: every argument of a thread-backed pool's task must be movable");
  if constexpr (std::is_invocable_v<F&, Args&&...>) {
    using R = pool_result_t<F, Args...>;
    static_assert(std::is_void_v<R> || std::is_move_constructible_v<R>,
                  "mp: the result of a thread-backed pool's task must be movable (or void)");
  }
  return true;
}

class thread_pool_core;

/// Builds chunks of calls of F(Args...) for a thread-backed pool: the arguments are stored as they
/// are, and one copy of F serves every chunk.
template <class F, class... Args>
class thread_chunk_maker {
 public:
  using result_type = pool_result_t<F, Args...>;

  thread_chunk_maker(thread_pool_core& /*core*/, const F& f) : f_(std::make_shared<F>(f)) {}

  /// As process_chunk_maker::make.
  template <class AddItems>
  [[nodiscard]] thread_chunk_ptr make(const std::shared_ptr<result_sink<result_type>>& job,
                                      std::size_t first, AddItems&& add_items) const {
    auto c = std::make_shared<thread_chunk_impl<F, result_type, Args...>>();
    c->f = f_;
    c->sink = job;
    c->job = job;
    c->first = first;
    c->count = static_cast<std::uint32_t>(add_items([&c](auto&&... xs) {
      c->items.emplace_back(store_as<Args>(std::forward<decltype(xs)>(xs))...);
    }));
    return c;
  }

 private:
  std::shared_ptr<F> f_;
};

/// What a thread_pool_core is configured with.
struct thread_pool_config {
  int processes = 1;
  std::int64_t maxtasks = 0;  // chunks a thread runs before it is replaced; 0: unlimited
  /// Run first in each worker thread; an exception breaks the pool (BrokenThreadPool).
  std::function<void()> initializer;
  /// The name of worker `n` (1, 2, ...), as current_process().name() reports it there.
  std::function<std::string(int)> name = [](int n) { return "Thread-" + std::to_string(n) + " (worker)"; };
  /// Executors: the worker thread that ran a chunk delivers its outcomes (so done-callbacks run
  /// there, as in Python's ThreadPoolExecutor), one delivery at a time. Pools: the handler does.
  bool deliver_in_worker = false;
};

class thread_pool_core {
 public:
  using state = pool_state;
  using chunk_ptr = thread_chunk_ptr;

  explicit thread_pool_core(thread_pool_config config) : config_(std::move(config)) {}
  thread_pool_core(const thread_pool_core&) = delete;
  thread_pool_core& operator=(const thread_pool_core&) = delete;
  ~thread_pool_core() {
    if (creator_ != ::getpid()) {
      // A copy inherited by fork: its threads do not exist in this process.
      for (auto& w : workers_) (void)w.release();
      return;  // handler_ leaves its thread alone too
    }
    try {
      terminate();
    } catch (...) {
    }
  }

  [[nodiscard]] int processes() const noexcept { return config_.processes; }
  [[nodiscard]] pid_t creator() const noexcept { return creator_; }

  /// Starts the worker threads and the handler thread. @throws std::system_error when a thread
  /// cannot be created.
  void start() {
    std::unique_lock lock(mu_);
    try {
      for (int i = 0; i < config_.processes; ++i) start_worker_locked();
      handler_.start([this] { handler_main(); });
    } catch (...) {
      state_ = state::terminate;
      work_cv_.notify_all();
      std::vector<std::unique_ptr<worker>> started;
      started.swap(workers_);
      lock.unlock();
      for (auto& w : started) w->thread.join();
      throw;
    }
  }

  /// Runs `fn` in the handler thread (where callbacks run). @throws as submit().
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      check_running_locked(false);
      posted_.push_back(std::move(fn));
    }
    handler_cv_.notify_one();
  }

  /// Throws unless new work may be submitted.
  void check_running(bool feeder) {
    std::lock_guard lock(mu_);
    check_running_locked(feeder);
  }

  /// Queues chunks for the workers; see pool_core::submit.
  void submit(std::vector<chunk_ptr> chunks, bool feeder = false) {
    {
      std::lock_guard lock(mu_);
      check_running_locked(feeder);
      for (auto& c : chunks) queue_.push_back(std::move(c));
    }
    if (chunks.size() == 1) {
      work_cv_.notify_one();
    } else {
      work_cv_.notify_all();
    }
  }

  void add_feeder() {
    std::lock_guard lock(mu_);
    check_running_locked(false);
    ++feeders_;
  }
  void remove_feeder() {
    {
      std::lock_guard lock(mu_);
      --feeders_;
    }
    work_cv_.notify_all();
    handler_cv_.notify_one();
  }
  /// A job was cancelled: its queued chunks are dropped when a worker reaches them.
  void poke() { work_cv_.notify_all(); }

  void close() {
    {
      std::lock_guard lock(mu_);
      if (state_ == state::run) state_ = state::close;
    }
    work_cv_.notify_all();
    handler_cv_.notify_one();
  }

  /// Fails every unfinished result with CancelledError, then waits for the calls that are running
  /// (a thread cannot be stopped) and for every thread to end.
  void terminate() {
    {
      std::lock_guard lock(mu_);
      state_ = state::terminate;
    }
    work_cv_.notify_all();
    handler_cv_.notify_one();
    join_handler(Timeout{});
  }

  [[nodiscard]] state current_state() {
    std::lock_guard lock(mu_);
    return state_;
  }

  /// Waits until every thread of the pool has ended. @returns false on timeout.
  /// @throws ProcessError from one of the pool's own threads (a callback).
  bool join_handler(Timeout timeout) {
    if (current_pool == this) {
      throw ProcessError("a pool cannot be joined or terminated from its own callback or task");
    }
    return handler_.join(timeout);
  }

 private:
  struct worker {
    std::thread thread;
    std::string name;
    bool exited = false;  // guarded by mu_
  };

  /// The pool whose thread this is (refuses join/terminate from inside).
  static inline thread_local const thread_pool_core* current_pool = nullptr;

  void check_running_locked(bool feeder) const {
    if (!broken_.empty()) throw BrokenThreadPool(broken_);
    if (state_ == state::run || (feeder && state_ == state::close)) return;
    throw ValueError("Pool not running");
  }

  void start_worker_locked() {
    auto w = std::make_unique<worker>();
    w->name = config_.name(++worker_counter_);
    worker* raw = w.get();
    workers_.push_back(std::move(w));
    try {
      raw->thread = std::thread([this, raw] { worker_main(*raw); });
    } catch (...) {
      workers_.pop_back();
      throw;
    }
  }

  /// True when a worker has nothing more to do and should end.
  [[nodiscard]] bool worker_should_end_locked() const {
    return state_ == state::terminate || !broken_.empty() ||
           (state_ == state::close && queue_.empty() && feeders_ == 0);
  }

  void worker_main(worker& self) noexcept {
    current_pool = this;
    current_thread_name = &self.name;
    bool ok = true;
    if (config_.initializer) {
      try {
        config_.initializer();
      } catch (...) {
        const exception_record rec = record_current_exception();
        std::fprintf(stderr, "%s: exception in the pool's initializer: %s%s%s\n", self.name.c_str(),
                     rec.type_name.c_str(), rec.what.empty() ? "" : ": ", rec.what.c_str());
        std::fflush(stderr);
        std::lock_guard lock(mu_);
        if (broken_.empty()) {
          broken_ = "the pool's initializer raised " + rec.type_name + (rec.what.empty() ? "" : ": " + rec.what);
        }
        ok = false;
      }
    }
    std::int64_t done = 0;
    std::unique_lock lock(mu_);
    while (ok) {
      work_cv_.wait(lock, [&] { return !queue_.empty() || worker_should_end_locked(); });
      if (state_ == state::terminate || !broken_.empty() || queue_.empty()) break;
      chunk_ptr c = std::move(queue_.front());
      queue_.pop_front();
      if (!c->job->begin()) continue;  // cancelled: never started
      running_.push_back(c.get());
      lock.unlock();
      c->run();
      if (config_.deliver_in_worker) {
        std::lock_guard deliver(deliver_mu_);
        if (!discard_) c->deliver();
        c->delivered = true;
      }
      lock.lock();
      running_.erase(std::find(running_.begin(), running_.end(), c.get()));
      if (!config_.deliver_in_worker) finished_.push_back(std::move(c));
      handler_cv_.notify_one();
      if (config_.maxtasks > 0 && ++done >= config_.maxtasks) break;  // retire: the handler replaces us
    }
    self.exited = true;
    lock.unlock();
    handler_cv_.notify_one();
    work_cv_.notify_all();  // what made us end may end the others too
    current_thread_name = nullptr;
    current_pool = nullptr;
  }

  void handler_main() noexcept {
    current_pool = this;
    bool failed_all = false;  // after terminate() or breakage: every unfinished job has failed
    std::unique_lock lock(mu_);
    for (;;) {
      handler_cv_.wait(lock, [&] {
        return !finished_.empty() || !posted_.empty() ||
               std::any_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->exited; }) ||
               (!failed_all && (state_ == state::terminate || !broken_.empty())) ||
               (workers_.empty() && state_ != state::run);
      });
      std::deque<chunk_ptr> finished;
      finished.swap(finished_);
      std::deque<std::function<void()>> posted;
      posted.swap(posted_);
      std::vector<std::unique_ptr<worker>> exited;
      for (auto it = workers_.begin(); it != workers_.end();) {
        if ((*it)->exited) {
          exited.push_back(std::move(*it));
          it = workers_.erase(it);
        } else {
          ++it;
        }
      }
      std::exception_ptr failure;
      if (!failed_all && (state_ == state::terminate || !broken_.empty())) {
        failed_all = true;
        failure = broken_.empty() ? std::make_exception_ptr(CancelledError(
                                        "the pool was terminated before this task completed"))
                                  : std::make_exception_ptr(BrokenThreadPool(broken_));
      }
      lock.unlock();
      for (auto& w : exited) w->thread.join();
      {
        std::lock_guard deliver(deliver_mu_);
        if (!discard_) {
          for (auto& c : finished) c->deliver();
        }
        if (failure) fail_unfinished(failure);
        for (auto& fn : posted) {
          try {
            fn();
          } catch (...) {
            report_callback_exception("a Pool callback");
          }
        }
      }
      finished.clear();
      lock.lock();
      if (!exited.empty() && broken_.empty() &&
          (state_ == state::run || (state_ == state::close && (!queue_.empty() || feeders_ > 0)))) {
        while (static_cast<int>(workers_.size()) < config_.processes) {
          try {
            start_worker_locked();
          } catch (const std::exception& e) {
            broken_ = std::string("cannot start a replacement worker thread: ") + e.what();
            break;
          }
        }
      }
      if (workers_.empty() && state_ != state::run && finished_.empty() && posted_.empty()) break;
    }
    lock.unlock();
    current_pool = nullptr;
    handler_.finished();
  }

  /// Fails every queued chunk and every running one not yet delivered with `error`; outcomes
  /// that arrive later are discarded. Called with deliver_mu_ held, so that no worker delivers
  /// meanwhile.
  void fail_unfinished(const std::exception_ptr& error) noexcept {
    std::vector<std::shared_ptr<pool_job>> jobs;
    std::vector<std::pair<std::size_t, std::uint32_t>> ranges;
    std::deque<chunk_ptr> late;  // finished since the handler last looked: delivered as usual
    try {
      std::lock_guard lock(mu_);
      late.swap(finished_);
      for (const auto& c : queue_) {
        jobs.push_back(c->job);
        ranges.emplace_back(c->first, c->count);
      }
      queue_.clear();
      for (const thread_chunk* c : running_) {
        if (c->delivered) continue;
        jobs.push_back(c->job);
        ranges.emplace_back(c->first, c->count);
      }
    } catch (...) {  // out of memory: what was collected still fails
    }
    for (auto& c : late) c->deliver();
    discard_ = true;
    for (std::size_t k = 0; k < jobs.size(); ++k) {
      for (std::uint32_t i = 0; i < ranges[k].second; ++i) {
        if (jobs[k]->finished.load()) break;
        try {
          jobs[k]->error(ranges[k].first + i, error);
        } catch (...) {
        }
      }
    }
  }

  thread_pool_config config_;
  pid_t creator_ = ::getpid();

  std::mutex mu_;
  std::condition_variable work_cv_;     // workers wait for chunks
  std::condition_variable handler_cv_;  // the handler waits for outcomes, posts and exits
  std::deque<chunk_ptr> queue_;
  std::vector<thread_chunk*> running_;
  std::deque<chunk_ptr> finished_;
  std::deque<std::function<void()>> posted_;
  std::vector<std::unique_ptr<worker>> workers_;
  state state_ = state::run;
  std::string broken_;
  int feeders_ = 0;
  int worker_counter_ = 0;

  std::mutex deliver_mu_;  // one delivery (callbacks) at a time; guards discard_ and delivered
  bool discard_ = false;   // terminated or broken: outcomes arriving now are dropped
  handler_thread handler_;
};

/// How the front ends reach the thread backend.
struct thread_pool_backend {
  using core_type = thread_pool_core;
  using options_type = dummy::PoolOptions;
  /// Starts the worker threads of a dummy::Pool with these options (defined in dummy.hpp); the
  /// rest of the configuration (names, who delivers) comes from `base`.
  /// @throws as the dummy::Pool constructor.
  static std::shared_ptr<thread_pool_core> make_core(dummy::PoolOptions options,
                                                     thread_pool_config base = {});
  template <class F, class... Args>
  using maker = thread_chunk_maker<F, Args...>;
  template <class F, class... Args>
  static constexpr bool check_task() {
    return check_thread_task<F, Args...>();
  }
};

}  // namespace multiprocessing::detail

// SPDX-License-Identifier: MIT
// multiprocessing/detail/pool_core.hpp
//
// The parent side of a Pool: the workers, the queue of chunks, and the one handler thread that
// feeds workers, reads their results, runs callbacks, watches each worker's pidfd, and replaces
// workers that die or retire.
//
// Submitting threads serialize their chunks themselves and append them to `submitted_` under
// `mu_`; the handler takes them from there (an eventfd wakes it only when it sleeps). Everything
// about workers belongs to the handler thread alone. A chunk stays owned (bytes and duplicated
// descriptors) until its results arrive, so a chunk a dead worker had not started yet is sent
// again to another worker; the one it was running fails with BrokenProcessPool naming the exit
// code or signal.
//
// Where a worker runs is a worker_launcher's business: a process of this machine started under a
// Context (process_launcher, below), or a process on an MPI rank (multiprocessing/mpi.hpp). The
// handler sees every worker as a worker_link: a socket carrying pool_wire frames, a descriptor
// that becomes readable when the worker has ended, and its exit status.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../context.hpp"
#include "../errors.hpp"
#include "../process.hpp"
#include "../sharedctypes.hpp"
#include "../timeout.hpp"
#include "pool_jobs.hpp"
#include "pool_wire.hpp"
#include "posix.hpp"

namespace multiprocessing::detail {

/// A batch of calls of one function, serialized, waiting for a worker or running on one.
struct pool_chunk {
  /// Decodes one item's value from `in` and hands it to `job` (result_sink<R>::put).
  using decoder = void (*)(pool_job& job, std::size_t index, serialize::Reader& in);

  std::shared_ptr<pool_job> job;
  decoder decode = nullptr;
  std::size_t first = 0;       // index of the first item in the job
  std::uint32_t count = 0;
  std::vector<std::byte> payload;  // a complete chunk message
  std::vector<unique_fd> fds;      // duplicates of the descriptors the arguments attached
  std::uint32_t code_needed = 0;   // code ids [0, code_needed) must be defined in the worker
};

using chunk_ptr = std::shared_ptr<pool_chunk>;

/// "signal 9 (SIGKILL)" or "exit code 3".
[[nodiscard]] inline std::string describe_exit(std::optional<int> code) {
  if (!code) return "an unknown exit status";
  if (*code >= 0) return "exit code " + std::to_string(*code);
  const int sig = -*code;
  std::string text = "signal " + std::to_string(sig);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* abbrev = ::sigabbrev_np(sig)) text += std::string(" (SIG") + abbrev + ")";
#endif
  return text;
}

/// One worker as the pool's handler sees it, wherever it runs.
class worker_link {
 public:
  worker_link() = default;
  worker_link(const worker_link&) = delete;
  worker_link& operator=(const worker_link&) = delete;
  virtual ~worker_link() = default;
  /// The socket that carries pool_wire frames to and from pool_worker_main.
  [[nodiscard]] virtual int channel() const noexcept = 0;
  /// Readable once the worker has ended.
  [[nodiscard]] virtual int ended_fd() const noexcept = 0;
  /// "pid 1234", or where else it runs: for messages.
  [[nodiscard]] virtual std::string describe() const = 0;
  [[nodiscard]] virtual pid_t pid() const noexcept = 0;
  /// Chunks the worker had begun (pool_worker_main counts them), read after it ended.
  [[nodiscard]] virtual std::uint64_t begun() const noexcept = 0;
  /// True when it ended without a report (a remote worker whose machine stopped answering):
  /// which chunk it was running is unknown, so every chunk it was sent fails.
  [[nodiscard]] virtual bool lost() const noexcept { return false; }
  /// Asks it to end now (SIGTERM).
  virtual void terminate() noexcept = 0;
  /// Ends it at once (SIGKILL).
  virtual void kill() noexcept = 0;
  /// Waits up to `limit` for it to end and reaps it. @returns the exit code (negative: the
  ///   signal), nullopt when it is unknown.
  virtual std::optional<int> reap(std::chrono::milliseconds limit) noexcept = 0;
};

/// Starts the workers of one pool.
class worker_launcher {
 public:
  worker_launcher() = default;
  worker_launcher(const worker_launcher&) = delete;
  worker_launcher& operator=(const worker_launcher&) = delete;
  virtual ~worker_launcher() = default;
  /// A new worker running pool_worker_main(..., maxtasks, ...) at the other end of its channel.
  /// @throws ProcessError (or OSError) when no worker can be started.
  virtual std::unique_ptr<worker_link> launch(std::int64_t maxtasks) = 0;
  /// False when the workers are on other machines: arguments cannot carry descriptors there.
  [[nodiscard]] virtual bool passes_descriptors() const noexcept { return true; }
  /// Where the workers run, for the error that refuses a descriptor ("another MPI rank").
  [[nodiscard]] virtual std::string where() const { return "a worker process"; }
};

/// Workers as processes of this machine, started under a Context's start method and named as
/// Python names them (ForkPoolWorker-1, SpawnPoolWorker-2, ...).
class process_launcher final : public worker_launcher {
 public:
  explicit process_launcher(Context ctx) : ctx_(std::move(ctx)) {
    const std::string method = ctx_.get_start_method();
    prefix_ = method == "fork" ? "ForkPoolWorker" : method == "spawn" ? "SpawnPoolWorker"
                                                                      : "ForkServerPoolWorker";
  }

  std::unique_ptr<worker_link> launch(std::int64_t maxtasks) override {
    auto [mine, theirs] = socket_pair("pool worker channel");
    auto w = std::make_unique<link>();
    w->proc = ctx_.Process(&pool_worker_main, pool_socket{theirs.get(), mine.get()}, maxtasks,
                           w->started, true);
    w->proc.name(prefix_ + "-" + std::to_string(++counter_));
    w->proc.daemon(true);
    w->proc.start();
    w->sock = std::move(mine);
    w->pid_ = w->proc.pid().value_or(0);
    return w;
  }

 private:
  struct link final : worker_link {
    Process proc;
    RawValue<std::uint64_t> started;  // chunks the worker has begun (it counts, we read)
    unique_fd sock;
    pid_t pid_ = 0;

    [[nodiscard]] int channel() const noexcept override { return sock.get(); }
    [[nodiscard]] int ended_fd() const noexcept override { return proc.sentinel(); }
    [[nodiscard]] std::string describe() const override { return "pid " + std::to_string(pid_); }
    [[nodiscard]] pid_t pid() const noexcept override { return pid_; }
    [[nodiscard]] std::uint64_t begun() const noexcept override {
      return std::atomic_ref<std::uint64_t>(started.value()).load(std::memory_order_acquire);
    }
    void terminate() noexcept override {
      try {
        proc.terminate();
      } catch (...) {
      }
    }
    void kill() noexcept override {
      try {
        proc.kill();
      } catch (...) {
      }
    }
    std::optional<int> reap(std::chrono::milliseconds limit) noexcept override {
      try {
        proc.join(limit);
        return proc.exitcode();
      } catch (...) {
        return std::nullopt;
      }
    }
  };

  Context ctx_;
  std::string prefix_;
  int counter_ = 0;
};

/// What a Pool is configured with.
struct pool_config {
  int processes = 1;
  std::int64_t maxtasks = 0;  // 0: unlimited
  std::size_t max_prefetch = 256;  // chunks a worker may hold at once (executors: 2)
  // The initializer, if any: its runner's and callable's code ids are in the code table.
  bool has_initializer = false;
  std::vector<std::byte> init_payload;  // a complete init message
  std::vector<unique_fd> init_fds;
  std::uint32_t init_code_needed = 0;
};

class pool_core {
 public:
  using state = pool_state;
  using chunk_ptr = detail::chunk_ptr;

  pool_core(std::unique_ptr<worker_launcher> launcher, pool_config config)
      : launcher_(std::move(launcher)),
        config_(std::move(config)),
        wake_fd_(make_eventfd("pool wakeup")) {}
  /// Workers as processes of this machine under `ctx`'s start method.
  pool_core(Context ctx, pool_config config)
      : pool_core(std::make_unique<process_launcher>(std::move(ctx)), std::move(config)) {}
  pool_core(const pool_core&) = delete;
  pool_core& operator=(const pool_core&) = delete;
  ~pool_core() = default;  // handler_ leaves a forked copy's handler alone

  [[nodiscard]] int processes() const noexcept { return config_.processes; }
  [[nodiscard]] pid_t creator() const noexcept { return creator_; }

  /// Starts the workers (in the calling thread, so start-up errors reach the constructor) and
  /// the handler thread.
  void start() {
    try {
      for (int i = 0; i < config_.processes; ++i) start_worker();
    } catch (...) {
      kill_all_workers();
      throw;
    }
    handler_.start([this] { run(); });
  }

  /// Sets the message that runs the initializer in each new worker (before start()).
  void set_initializer(std::vector<std::byte> payload, std::vector<unique_fd> fds,
                       std::uint32_t code_needed) {
    if (!fds.empty()) refuse_descriptors("the initializer's arguments hold");
    config_.has_initializer = true;
    config_.init_payload = std::move(payload);
    config_.init_fds = std::move(fds);
    config_.init_code_needed = code_needed;
  }

  /// Runs `fn` in the handler thread (where callbacks run). @throws as submit().
  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      check_running_locked(false);
      posted_.push_back(std::move(fn));
    }
    wake_handler();
  }

  /// The id of the code at `addr` in the table shared with every worker.
  std::uint32_t code_id(std::uintptr_t addr) {
    std::lock_guard lock(code_mu_);
    if (auto it = code_ids_.find(addr); it != code_ids_.end()) return it->second;
    code_refs_.push_back(make_code_ref(addr));
    const auto id = static_cast<std::uint32_t>(code_refs_.size() - 1);
    code_ids_.emplace(addr, id);
    return id;
  }

  /// Throws unless new work may be submitted.
  void check_running(bool feeder) {
    std::lock_guard lock(mu_);
    check_running_locked(feeder);
  }

  /// Queues chunks for the workers. A `feeder` (an imap iterator created while the pool ran) may
  /// still submit after close().
  /// @throws ValueError "Pool not running"; BrokenProcessPool when the pool is broken.
  void submit(std::vector<chunk_ptr> chunks, bool feeder = false) {
    for (const auto& c : chunks) {
      if (!c->fds.empty()) refuse_descriptors("a task's arguments hold");
    }
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      check_running_locked(feeder);
      for (auto& c : chunks) submitted_.push_back(std::move(c));
      submissions_.fetch_add(1, std::memory_order_release);
      // sleeping_ stays set until the handler wakes: a submitter that finds it set either
      // dispatches its chunks itself or wakes the handler, so none waits behind a sleeping one.
      wake = sleeping_;
    }
    if (wake && !dispatch_directly()) wake_handler();
  }

  /// An imap iterator that may still submit: keeps the workers alive after close().
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
    wake_handler();
  }
  /// A job was cancelled: let the handler drop its chunks and re-check whether it is done.
  void poke() { wake_handler(); }

  void close() {
    {
      std::lock_guard lock(mu_);
      if (state_ == state::run) state_ = state::close;
    }
    wake_handler();
  }

  void terminate() {
    {
      std::lock_guard lock(mu_);
      state_ = state::terminate;
    }
    wake_handler();
    join_handler(Timeout{});
  }

  [[nodiscard]] state current_state() {
    std::lock_guard lock(mu_);
    return state_;
  }

  /// Waits for the handler thread to finish (all workers gone). @returns false on timeout.
  bool join_handler(Timeout timeout) {
    if (handler_.is_current()) {
      throw ProcessError("a Pool cannot be joined or terminated from its own callback");
    }
    return handler_.join(timeout);
  }

 private:
  struct in_flight {
    chunk_ptr chunk;
    bool sent = false;
    std::chrono::steady_clock::time_point given;
    std::size_t ahead = 0;  // chunks the worker held when this one was given: they run first
  };
  // Chunks a worker may hold: two while tasks are slow (a long task delays little behind it),
  // more once they prove quick: about `prefetch_window` of work, so that a run of tiny tasks
  // costs the handler and the worker one wake-up per few hundred tasks, while no worker holds
  // more than a millisecond or so that another could have run. A dead worker fails only the one
  // it was running either way; the others run elsewhere.
  static constexpr std::size_t slow_prefetch = 2;
  static constexpr std::chrono::microseconds prefetch_window{1000};
  struct worker {
    std::unique_ptr<worker_link> link;
    std::uint64_t answered = 0;  // results received
    int sock = -1;               // link->channel()
    int ended = -1;              // link->ended_fd()
    pid_t pid = 0;
    frame_in in;
    frame_out out;
    std::deque<in_flight> outstanding;
    std::uint32_t defined = 0;  // code ids the worker knows
    std::int64_t assigned = 0;  // chunks given (maxtasksperchild)
    bool ready = false;
    bool stopping = false;
    std::size_t prefetch = slow_prefetch;
    // The job whose chunks proved quick on this worker: only its chunks get the larger prefetch,
    // so that the slow chunks of the next job do not pile up here behind each other.
    std::weak_ptr<pool_job> fast_job;
  };

  /// The prefetch of a worker that answered a chunk `took` after it was handed over, when it
  /// held `ahead` chunks already: it ran those first, so took / (ahead + 1) bounds one chunk's
  /// run time.
  [[nodiscard]] static std::size_t prefetch_after(std::chrono::steady_clock::duration took,
                                                  std::size_t ahead, std::size_t cap) noexcept {
    using duration = std::chrono::steady_clock::duration;
    const duration per_chunk = std::max(took / static_cast<duration::rep>(ahead + 1), duration{1});
    const auto fits = static_cast<std::size_t>(prefetch_window / per_chunk);
    return std::min(cap, std::max(slow_prefetch, fits));
  }

  /// How many chunks of `job` worker `w` may hold at once.
  [[nodiscard]] static std::size_t prefetch_for(const worker& w, const std::shared_ptr<pool_job>& job) noexcept {
    const bool same = !w.fast_job.owner_before(job) && !job.owner_before(w.fast_job);
    return same ? w.prefetch : slow_prefetch;
  }

  /// @throws ValueError when the workers cannot receive descriptors.
  void refuse_descriptors(const char* what) const {
    if (launcher_->passes_descriptors()) return;
    throw ValueError(std::string("Pool: ") + what +
                     " a descriptor (a Queue, Lock, Value, Connection or shared memory), which cannot "
                     "reach " + launcher_->where());
  }

  void check_running_locked(bool feeder) const {
    if (!broken_.empty()) throw BrokenProcessPool(broken_);
    if (state_ == state::run || (feeder && state_ == state::close)) return;
    throw ValueError("Pool not running");
  }

  /// The handler sleeps and nothing waits before the new chunks: hand them to the workers from
  /// this thread, sparing the handler a wake-up (it wakes anyway when the results arrive).
  /// @returns false when the handler must do it (it is busy, or this is its own thread, or not
  ///   everything could be written).
  bool dispatch_directly() noexcept {
    if (handler_.is_current()) return false;
    std::unique_lock io(io_mu_, std::try_to_lock);
    if (!io.owns_lock()) return false;
    try {
      {
        std::lock_guard lock(mu_);
        if (state_ != state::run || !broken_.empty()) return false;
        while (!submitted_.empty()) {
          queue_.push_back(std::move(submitted_.front()));
          submitted_.pop_front();
        }
      }
      dispatch();
      if (!queue_.empty() || !std::all_of(workers_.begin(), workers_.end(),
                                          [](const auto& w) { return w->out.empty(); })) {
        return false;
      }
      std::lock_guard lock(mu_);
      return submitted_.empty();  // what came meanwhile is the handler's
    } catch (...) {
      return false;  // the handler will meet the same trouble and deal with it
    }
  }

  void wake_handler() noexcept { signal_eventfd(wake_fd_.get()); }

  void start_worker() {
    auto w = std::make_unique<worker>();
    w->link = launcher_->launch(config_.maxtasks);
    w->sock = w->link->channel();
    w->ended = w->link->ended_fd();
    w->pid = w->link->pid();
    // The initializer goes first; code it needs is defined before it.
    define_code(*w, config_.init_code_needed);
    if (config_.has_initializer) {
      std::vector<int> fds;
      for (const auto& f : config_.init_fds) fds.push_back(f.get());
      w->out.push_borrowed(config_.init_payload, std::move(fds), nullptr);
    } else {
      std::vector<std::byte> init{static_cast<std::byte>(pool_msg::init), std::byte{0}};
      w->out.push(std::move(init));
    }
    w->out.flush(w->sock);
    workers_.push_back(std::move(w));
  }

  /// Queues a define message so that the worker knows code ids [0, needed).
  void define_code(worker& w, std::uint32_t needed) {
    if (needed <= w.defined) return;
    serialize::Writer out;
    out.save(static_cast<std::uint8_t>(pool_msg::define));
    out.save(needed - w.defined);
    {
      std::lock_guard lock(code_mu_);
      for (std::uint32_t id = w.defined; id < needed; ++id) {
        out.save(id);
        out.save(code_refs_[id]);
      }
    }
    w.defined = needed;
    w.out.push(std::move(out).take());
  }

  void kill_all_workers() noexcept {
    for (auto& w : workers_) {
      w->link->kill();
      (void)w->link->reap(std::chrono::seconds(5));
    }
    workers_.clear();
  }

  // --- the handler thread --------------------------------------------------------------------

  void run() noexcept {
    try {
      loop();
    } catch (const std::exception& e) {
      // A failure of the machinery itself (out of descriptors...): fail everything, never hang.
      const std::lock_guard io(io_mu_);
      set_broken(std::string("the pool's handler thread failed: ") + e.what());
      fail_everything(std::make_exception_ptr(BrokenProcessPool(broken_copy())));
      kill_all_workers();
    } catch (...) {
      const std::lock_guard io(io_mu_);
      set_broken("the pool's handler thread failed");
      fail_everything(std::make_exception_ptr(BrokenProcessPool(broken_copy())));
      kill_all_workers();
    }
    handler_.finished();
  }

  void set_broken(const std::string& reason) {
    std::lock_guard lock(mu_);
    if (broken_.empty()) broken_ = reason;
  }
  std::string broken_copy() {
    std::lock_guard lock(mu_);
    return broken_;
  }

  void loop() {
    std::vector<pollfd> fds;
    for (;;) {
      std::unique_lock io(io_mu_);  // released while polling: see dispatch_directly()
      state st{};
      int feeders = 0;
      bool broken = false;
      run_posted();
      {
        std::lock_guard lock(mu_);
        while (!submitted_.empty()) {
          queue_.push_back(std::move(submitted_.front()));
          submitted_.pop_front();
        }
        st = state_;
        feeders = feeders_;
        broken = !broken_.empty();
      }
      if (st == state::terminate) {
        terminate_workers();
        fail_everything(std::make_exception_ptr(
            CancelledError("the pool was terminated before this task completed")));
        workers_.clear();
        return;
      }
      if (broken) {
        fail_everything(std::make_exception_ptr(BrokenProcessPool(broken_copy())));
        kill_all_workers();
        if (st != state::run) return;  // close() or terminate(): nothing more will come
      } else {
        dispatch();
        const bool idle = queue_.empty() && std::all_of(workers_.begin(), workers_.end(),
                                                        [](const auto& w) { return w->outstanding.empty(); });
        if (st == state::close && idle && feeders == 0) {
          if (workers_.empty()) return;
          for (auto& w : workers_) {
            if (w->stopping) continue;
            w->stopping = true;
            w->out.push({static_cast<std::byte>(pool_msg::stop)});
            if (!w->out.flush(w->sock)) continue;  // dead: its pidfd will say so
          }
        } else {
          replace_workers();
        }
      }

      // Sleep until a worker speaks, ends, can take more bytes, or someone wakes us.
      fds.clear();
      fds.push_back({wake_fd_.get(), POLLIN, 0});
      for (auto& w : workers_) {
        fds.push_back({w->sock, static_cast<short>(POLLIN | (w->out.empty() ? 0 : POLLOUT)), 0});
        fds.push_back({w->ended, POLLIN, 0});
      }
      // A worker's answer or a new submission usually follows within microseconds: look for it
      // briefly before sleeping (each sleep costs a wake-up on both sides).
      int rc = 0;
      io.unlock();
      const std::uint64_t seen = submissions_.load(std::memory_order_acquire);
      const auto spin_until = std::chrono::steady_clock::now() + handler_spin;
      for (;;) {
        rc = ::poll(fds.data(), fds.size(), 0);
        if (rc != 0 || submissions_.load(std::memory_order_acquire) != seen ||
            std::chrono::steady_clock::now() >= spin_until) {
          break;
        }
        std::this_thread::yield();  // on a busy machine, the workers get the CPU meanwhile
      }
      if (rc == 0) {
        {
          std::lock_guard lock(mu_);
          if (!submitted_.empty() || !posted_.empty() || state_ != st || feeders_ != feeders) continue;
          sleeping_ = true;
        }
        rc = ::poll(fds.data(), fds.size(), -1);
        std::lock_guard lock(mu_);
        sleeping_ = false;
      }
      if (rc == -1) {
        if (errno == EINTR) continue;
        throw_errno("poll pool handler");
      }
      io.lock();
      if ((fds[0].revents & POLLIN) != 0) drain_eventfd(wake_fd_.get());
      std::vector<std::size_t> dead;
      for (std::size_t i = 0; i < workers_.size(); ++i) {
        worker& w = *workers_[i];
        const short sock_events = fds[1 + 2 * i].revents;
        const short pid_events = fds[2 + 2 * i].revents;
        if ((sock_events & (POLLIN | POLLHUP | POLLERR)) != 0) {
          w.in.read(w.sock, false);
          handle_frames(w);
        }
        if ((sock_events & POLLOUT) != 0) w.out.flush(w.sock);
        if (pid_events != 0) dead.push_back(i);
      }
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) worker_ended(*it);
    }
  }

  void run_posted() {
    std::deque<std::function<void()>> todo;
    {
      std::lock_guard lock(mu_);
      todo.swap(posted_);
    }
    for (auto& fn : todo) fn();
  }

  /// Gives queued chunks to workers with room: at most `prefetch` chunks per worker, so a dead
  /// worker takes little with it and a long task delays little behind it.
  void dispatch() {
    while (!queue_.empty()) {
      if (queue_.front()->job->finished.load()) {  // cancelled or already failed: drop
        queue_.pop_front();
        continue;
      }
      worker* best = nullptr;
      for (auto& w : workers_) {
        if (w->stopping || w->outstanding.size() >= prefetch_for(*w, queue_.front()->job)) continue;
        if (config_.maxtasks > 0 && w->assigned >= config_.maxtasks) continue;
        if (best == nullptr || w->outstanding.size() < best->outstanding.size()) best = w.get();
      }
      if (best == nullptr) break;
      chunk_ptr c = std::move(queue_.front());
      queue_.pop_front();
      if (!c->job->begin()) continue;  // cancelled (an executor's future): never started
      define_code(*best, c->code_needed);
      std::vector<int> raw;
      raw.reserve(c->fds.size());
      for (const auto& f : c->fds) raw.push_back(f.get());
      const std::size_t ahead = best->outstanding.size();
      best->outstanding.push_back({c, false, std::chrono::steady_clock::now(), ahead});
      best->out.push_borrowed(c->payload, std::move(raw), &best->outstanding.back().sent);
      ++best->assigned;
    }
    for (auto& w : workers_) {
      if (!w->out.empty()) w->out.flush(w->sock);
    }
  }

  /// Starts workers until there are `processes` of them. One that retires after
  /// maxtasksperchild is replaced once it has exited, as in Python.
  void replace_workers() {
    auto active = static_cast<int>(
        std::count_if(workers_.begin(), workers_.end(), [](const auto& w) { return !w->stopping; }));
    while (active < config_.processes) {
      try {
        start_worker();
      } catch (const std::exception& e) {
        set_broken(std::string("cannot start a replacement worker: ") + e.what());
        return;
      }
      ++active;
    }
  }

  void handle_frames(worker& w) {
    frame_in::frame fr;
    while (w.in.next(fr)) {
      std::vector<int> raw;
      raw.reserve(fr.fds.size());
      for (const auto& f : fr.fds) raw.push_back(f.get());
      serialize::Reader r(fr.payload, raw);
      const auto msg = static_cast<pool_msg>(r.load<std::uint8_t>());
      if (msg == pool_msg::ready) {
        w.ready = true;
        startup_failures_ = 0;
      } else if (msg == pool_msg::init_failed) {
        const auto rec = r.load<exception_record>();
        set_broken("the pool's initializer raised " + rec.type_name +
                   (rec.what.empty() ? "" : ": " + rec.what));
      } else if (msg == pool_msg::result) {
        if (w.outstanding.empty() || !w.outstanding.front().sent) {
          throw SerializationError("pool: a worker answered a task it was not given");
        }
        const chunk_ptr c = std::move(w.outstanding.front().chunk);
        const auto took = std::chrono::steady_clock::now() - w.outstanding.front().given;
        const std::size_t ahead = w.outstanding.front().ahead;
        w.outstanding.pop_front();
        ++w.answered;
        w.prefetch = prefetch_after(took, ahead, config_.max_prefetch);
        w.fast_job = c->job;
        deliver(*c, fr.payload.subspan(1), raw, w.pid);
      }
      fr = {};
      w.in.pop();
    }
  }

  /// Hands each item of a result message to its job.
  /// Reads a little-endian number at `at` of `bytes`, advancing `at`.
  template <class T>
  static T take(std::span<const std::byte> bytes, std::size_t& at) {
    if (bytes.size() - at < sizeof(T)) throw SerializationError("pool: truncated result message");
    T value{};
    std::memcpy(&value, bytes.data() + at, sizeof value);
    at += sizeof value;
    return value;
  }

  /// `body`: a result message after its type byte. Items are decoded in place (no copy).
  static void deliver(pool_chunk& c, std::span<const std::byte> body, const std::vector<int>& fds,
                      pid_t pid) {
    std::size_t at = 0;
    const auto count = take<std::uint32_t>(body, at);
    std::size_t fd_at = 0;
    for (std::uint32_t i = 0; i < count && i < c.count; ++i) {
      const auto status = take<std::uint8_t>(body, at);
      const auto nfds = take<std::uint32_t>(body, at);
      const auto length = take<std::uint64_t>(body, at);
      if (length > body.size() - at || nfds > fds.size() - fd_at) {
        throw SerializationError("pool: corrupt result message");
      }
      const auto item_bytes = body.subspan(at, static_cast<std::size_t>(length));
      at += static_cast<std::size_t>(length);
      const std::span<const int> item_fds(fds.data() + fd_at, nfds);
      fd_at += nfds;
      if (c.job->finished.load()) continue;
      serialize::Reader item(item_bytes, item_fds);
      if (status == 0) {
        try {
          c.decode(*c.job, c.first + i, item);
        } catch (...) {
          c.job->error(c.first + i, std::current_exception());
        }
      } else {
        std::exception_ptr e;
        try {
          e = rebuild_exception(item.load<exception_record>(), pid);
        } catch (...) {
          e = std::current_exception();
        }
        c.job->error(c.first + i, e);
      }
    }
  }

  /// A worker's pidfd fired: take its last words, reap it, settle the chunks it held.
  void worker_ended(std::size_t index) {
    std::unique_ptr<worker> w = std::move(workers_[index]);
    workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(index));
    try {
      w->in.read(w->sock, false);  // it is dead: everything it wrote is there
      handle_frames(*w);
    } catch (const std::exception&) {  // a torn last message: its chunk fails below
    }
    const std::optional<int> code = w->link->reap(std::chrono::seconds(10));
    const std::string how = describe_exit(code);
    if (!w->ready) {
      // It died before its initializer finished: none of its chunks started.
      if (++startup_failures_ >= 3) {
        set_broken("worker processes keep ending before they are ready (the last one with " + how +
                   ")");
      }
    }
    // The chunk it was running is the one it began last (its count is in shared memory); the
    // ones before it finished, but their results were held back in its batch and are lost with
    // it, so they run again elsewhere, as do the ones it had not begun.
    const std::uint64_t begun = w->link->begun();
    std::uint64_t seq = w->answered + w->outstanding.size();  // the last outstanding chunk's number
    for (auto it = w->outstanding.rbegin(); it != w->outstanding.rend(); ++it, --seq) {
      const bool running = it->sent && (w->link->lost() || (w->ready && seq == begun));
      if (running) {
        const auto error = std::make_exception_ptr(BrokenProcessPool(
            "a worker process (" + w->link->describe() + ") died with " + how +
            " while running this task"));
        for (std::uint32_t i = 0; i < it->chunk->count; ++i) {
          if (it->chunk->job->finished.load()) break;
          it->chunk->job->error(it->chunk->first + i, error);
        }
      } else {
        queue_.push_front(std::move(it->chunk));  // never started: another worker runs it
      }
    }
  }

  /// SIGTERM to every worker, SIGKILL after a short grace, all reaped.
  void terminate_workers() noexcept {
    for (auto& w : workers_) w->link->terminate();
    const deadline grace(std::chrono::milliseconds(500));
    for (auto& w : workers_) {
      try {
        if (!poll_fd(w->ended, POLLIN, grace, "pool worker")) w->link->kill();
      } catch (...) {
        w->link->kill();
      }
    }
    for (auto& w : workers_) (void)w->link->reap(std::chrono::seconds(10));
  }

  /// Fails every chunk not finished (queued, submitted or on a worker) with `error`.
  void fail_everything(const std::exception_ptr& error) noexcept {
    try {
      run_posted();
    } catch (...) {
    }
    std::deque<chunk_ptr> all;
    {
      std::lock_guard lock(mu_);
      while (!submitted_.empty()) {
        queue_.push_back(std::move(submitted_.front()));
        submitted_.pop_front();
      }
    }
    for (auto& w : workers_) {
      for (auto& f : w->outstanding) all.push_back(std::move(f.chunk));
      w->outstanding.clear();
    }
    for (auto& c : queue_) all.push_back(std::move(c));
    queue_.clear();
    for (auto& c : all) {
      for (std::uint32_t i = 0; i < c->count; ++i) {
        if (c->job->finished.load()) break;
        try {
          c->job->error(c->first + i, error);
        } catch (...) {
        }
      }
    }
  }

  std::unique_ptr<worker_launcher> launcher_;
  pool_config config_;
  pid_t creator_ = ::getpid();

  std::mutex code_mu_;  // guards the code table
  std::unordered_map<std::uintptr_t, std::uint32_t> code_ids_;
  std::vector<code_ref> code_refs_;

  std::mutex mu_;  // guards what submitting threads share with the handler
  // Held by the handler except while it polls: guards the workers and queue_, so that a
  // submitting thread may dispatch while the handler sleeps.
  std::mutex io_mu_;
  std::deque<chunk_ptr> submitted_;
  std::deque<std::function<void()>> posted_;
  state state_ = state::run;
  std::string broken_;
  int feeders_ = 0;
  bool sleeping_ = false;
  std::atomic<std::uint64_t> submissions_{0};  // lets the spinning handler see new work
  static constexpr std::chrono::microseconds handler_spin{30};

  unique_fd wake_fd_;
  handler_thread handler_;

  // The handler thread's own.
  std::vector<std::unique_ptr<worker>> workers_;
  std::deque<chunk_ptr> queue_;
  int startup_failures_ = 0;
};

}  // namespace multiprocessing::detail

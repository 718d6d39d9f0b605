// SPDX-License-Identifier: MIT
// multiprocessing/detail/mpi_relay.hpp
//
// How a Pool reaches workers on other MPI ranks (multiprocessing/mpi.hpp).
//
// Nothing of the pool changes: its handler (detail/pool_core.hpp) talks pool_wire frames over a
// socket to each worker, as it does locally. For a worker on rank r that socket ends in rank 0's
// relay thread, which carries each frame as one MPI message to rank r's host loop; the host loop
// runs the worker as a process of its own machine (a fork, by the host's default start method)
// and writes the frame to that worker's socket. Answers travel back the same way. So a task that
// crashes ends only its worker process on rank r, which the host reports (exit code or signal,
// and how many chunks it had begun) exactly as a local worker's pidfd would; the pool fails that
// task with BrokenProcessPool and starts a replacement, on any rank.
//
// All MPI calls of rank 0 happen in the relay thread (MPI_THREAD_SERIALIZED suffices; the main
// thread only initializes and finalizes). Messages, all on one tag so that MPI's non-overtaking
// rule keeps them in order per peer:
//   u8 kind | u32 worker id | body
//   0 -> host  start   i64 maxtasks           host -> 0  started       i32 pid
//              frame   a pool frame's payload            start_failed  the reason
//              part    a leading piece of one (frames over 1 GiB)      frame / part, as 0 -> host
//              signal  i32 signal number                 ended         i32 has code, i32 code,
//              exit    (the host ends; id 0)                           u64 chunks begun
//                                                        alive         (id 0, every second while
//                                                                      it has workers)
// Sends are MPI_Isend (a large frame never blocks the loop); both loops spin briefly after
// activity and then sleep in ppoll() with a growing timeout (at most 1 ms), since MPI gives no
// descriptor to wait on.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <climits>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../context.hpp"
#include "../errors.hpp"
#include "../process.hpp"
#include "../sharedctypes.hpp"
#include "pool_core.hpp"
#include "pool_wire.hpp"
#include "posix.hpp"

namespace multiprocessing::detail {

inline constexpr int mpi_tag = 0x6d70;  // "mp"

enum class mpi_msg : std::uint8_t {
  start = 1,
  started = 2,
  start_failed = 3,
  frame = 4,
  part = 5,
  signal = 6,
  ended = 7,
  exit = 8,
  alive = 9,
};

/// A rank with workers says it is alive this often; rank 0 gives it up after mpi_lost_after of
/// silence. (Under mpirun a dead rank ends the whole job; a spawned one does not, and MPI tells
/// its parent nothing.)
inline constexpr std::chrono::seconds mpi_alive_every{1};
inline constexpr std::chrono::seconds mpi_lost_after{10};

/// Frames larger than this travel as several messages (an MPI count is an int).
inline constexpr std::size_t mpi_piece = std::size_t{1} << 30;
inline constexpr std::size_t mpi_head = 1 + sizeof(std::uint32_t);

/// @throws OSError "MPI <what>: <MPI's error string>" unless `rc` is MPI_SUCCESS.
inline void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw OSError(std::string("MPI ") + what + ": " + std::string(text, static_cast<std::size_t>(length)));
}

/// One received message.
struct mpi_message {
  mpi_msg kind{};
  std::uint32_t worker = 0;
  int source = 0;
  std::vector<std::byte> bytes;  // the whole message; the body starts at mpi_head
  [[nodiscard]] std::span<const std::byte> body() const noexcept {
    return std::span<const std::byte>(bytes).subspan(mpi_head);
  }
};

/// A message from `source` (or MPI_ANY_SOURCE) on `comm`, if one has arrived.
inline std::optional<mpi_message> mpi_receive(MPI_Comm comm, int source) {
  int flag = 0;
  MPI_Status status{};
  check_mpi(MPI_Iprobe(source, mpi_tag, comm, &flag, &status), "Iprobe");
  if (flag == 0) return std::nullopt;
  int count = 0;
  check_mpi(MPI_Get_count(&status, MPI_BYTE, &count), "Get_count");
  mpi_message m;
  m.source = status.MPI_SOURCE;
  m.bytes.resize(static_cast<std::size_t>(count));
  check_mpi(MPI_Recv(m.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, mpi_tag, comm, MPI_STATUS_IGNORE),
            "Recv");
  if (m.bytes.size() < mpi_head) throw SerializationError("MPI pool: a message shorter than its header");
  m.kind = static_cast<mpi_msg>(m.bytes[0]);
  std::memcpy(&m.worker, m.bytes.data() + 1, sizeof m.worker);
  return m;
}

/// Messages on their way out, each kept until MPI_Isend completes.
class mpi_outbox {
 public:
  mpi_outbox() = default;
  mpi_outbox(const mpi_outbox&) = delete;
  mpi_outbox& operator=(const mpi_outbox&) = delete;
  ~mpi_outbox() { abandon(); }

  /// Queues `body` for (comm, rank); a frame over mpi_piece goes as parts and a final frame.
  void send(MPI_Comm comm, int rank, mpi_msg kind, std::uint32_t worker, std::span<const std::byte> body) {
    while (kind == mpi_msg::frame && body.size() > mpi_piece) {
      post(comm, rank, mpi_msg::part, worker, body.first(mpi_piece));
      body = body.subspan(mpi_piece);
    }
    post(comm, rank, kind, worker, body);
  }
  template <class T>
  void send_value(MPI_Comm comm, int rank, mpi_msg kind, std::uint32_t worker, const T& value) {
    send(comm, rank, kind, worker, std::as_bytes(std::span(&value, 1)));
  }

  /// Drops the messages that have gone. @returns true when any had.
  bool progress() {
    bool any = false;
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      check_mpi(MPI_Test(&it->request, &done, MPI_STATUS_IGNORE), "Test");
      if (done != 0) {
        it = pending_.erase(it);
        any = true;
      } else {
        ++it;
      }
    }
    return any;
  }
  [[nodiscard]] bool empty() const noexcept { return pending_.empty(); }

  /// Cancels what has not gone (after an MPI error, or at the very end).
  void abandon() noexcept {
    for (auto& p : pending_) {
      if (p.request != MPI_REQUEST_NULL) {
        MPI_Cancel(&p.request);
        MPI_Request_free(&p.request);
      }
    }
    pending_.clear();
  }

 private:
  struct pending {
    std::vector<std::byte> bytes;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  void post(MPI_Comm comm, int rank, mpi_msg kind, std::uint32_t worker, std::span<const std::byte> body) {
    pending& p = pending_.emplace_back();
    p.bytes.resize(mpi_head + body.size());
    p.bytes[0] = static_cast<std::byte>(kind);
    std::memcpy(p.bytes.data() + 1, &worker, sizeof worker);
    if (!body.empty()) std::memcpy(p.bytes.data() + mpi_head, body.data(), body.size());
    check_mpi(MPI_Isend(p.bytes.data(), static_cast<int>(p.bytes.size()), MPI_BYTE, rank, mpi_tag, comm,
                        &p.request),
              "Isend");
  }
  std::deque<pending> pending_;
};

/// Reads a T from the front of `body`. @throws SerializationError when it is too short.
template <class T>
T mpi_take(std::span<const std::byte>& body) {
  if (body.size() < sizeof(T)) throw SerializationError("MPI pool: a truncated message");
  T value{};
  std::memcpy(&value, body.data(), sizeof value);
  body = body.subspan(sizeof value);
  return value;
}

/// How long a loop that also waits for MPI may sleep: not at all while things happen (a task's
/// answer usually follows within microseconds), then a little longer each time, up to 1 ms.
class mpi_idle {
 public:
  void active() noexcept {
    last_ = std::chrono::steady_clock::now();
    sleep_ = std::chrono::microseconds(0);
  }
  /// The timeout for the next ppoll(); yields the CPU while spinning.
  [[nodiscard]] timespec next() noexcept {
    const auto quiet = std::chrono::steady_clock::now() - last_;
    if (quiet < spin) {
      std::this_thread::yield();
      return {0, 0};
    }
    sleep_ = std::clamp(sleep_ * 2, std::chrono::microseconds(50), std::chrono::microseconds(1000));
    return {0, static_cast<long>(sleep_.count()) * 1000};
  }

 private:
  static constexpr std::chrono::microseconds spin{1000};
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
  std::chrono::microseconds sleep_{0};
};

/// ppoll() for up to `timeout` (nullopt: no limit). @returns its result; EINTR counts as 0.
inline int mpi_wait(std::vector<pollfd>& fds, std::optional<timespec> timeout) {
  const int rc = ::ppoll(fds.data(), fds.size(), timeout ? &*timeout : nullptr, nullptr);
  if (rc == -1 && errno != EINTR) throw_errno("ppoll MPI pool");
  return rc == -1 ? 0 : rc;
}

// --- a serving rank -----------------------------------------------------------------------------

/// The loop of a rank that serves tasks: starts worker processes when rank 0 asks, carries frames
/// between them and rank 0, reports how each ended. Returns when rank 0 says exit.
/// `comm`: MPI_COMM_WORLD's duplicate (rank 0 is the peer) or the intercommunicator to the
/// program that spawned this one (its rank 0).
class mpi_host {
 public:
  mpi_host(MPI_Comm comm, int rank) : comm_(comm), rank_(rank) {}

  void serve() {
    mpi_idle idle;
    std::vector<pollfd> fds;
    bool running = true;
    auto last_alive = std::chrono::steady_clock::now();
    while (running) {
      bool active = false;
      if (const auto now = std::chrono::steady_clock::now(); !workers_.empty() && now - last_alive >= mpi_alive_every) {
        out_.send(comm_, 0, mpi_msg::alive, 0, {});
        last_alive = now;
      }
      while (auto m = mpi_receive(comm_, 0)) {
        active = true;
        if (m->kind == mpi_msg::exit) {
          running = false;
          break;
        }
        handle(*m);
      }
      active |= out_.progress();
      if (!running) break;
      fds.clear();
      std::vector<std::uint32_t> ids;
      for (auto& [id, w] : workers_) {
        fds.push_back({w->sock.get(), static_cast<short>(POLLIN | (w->out.empty() ? 0 : POLLOUT)), 0});
        fds.push_back({w->proc.sentinel(), POLLIN, 0});
        ids.push_back(id);
      }
      if (mpi_wait(fds, active ? timespec{0, 0} : idle.next()) > 0) {
        active = true;
        for (std::size_t i = 0; i < ids.size(); ++i) {
          auto& w = *workers_.at(ids[i]);
          if ((fds[2 * i].revents & POLLOUT) != 0) w.out.flush(w.sock.get());
          if ((fds[2 * i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) forward(w);
          if (fds[2 * i + 1].revents != 0) ended(ids[i]);
        }
      }
      if (active) idle.active();
    }
    stop_all();
  }

 private:
  struct hosted {
    std::uint32_t id = 0;  // rank 0's name for it
    Process proc;
    RawValue<std::uint64_t> started;
    unique_fd sock;
    frame_in in;
    frame_out out;
    std::vector<std::byte> parts;  // a frame arriving in pieces
  };

  void handle(const mpi_message& m) {
    auto body = m.body();
    switch (m.kind) {
      case mpi_msg::start: {
        const auto maxtasks = mpi_take<std::int64_t>(body);
        try {
          auto w = std::make_unique<hosted>();
          w->id = m.worker;
          auto [mine, theirs] = socket_pair("MPI pool worker channel");
          w->proc = Process(&pool_worker_main, pool_socket{theirs.get(), mine.get()}, maxtasks,
                            w->started, false);
          w->proc.name("MPIPoolWorker-" + std::to_string(rank_) + "-" + std::to_string(m.worker));
          w->proc.daemon(true);
          w->proc.start();
          w->sock = std::move(mine);
          const auto pid = static_cast<std::int32_t>(w->proc.pid().value_or(0));
          workers_[m.worker] = std::move(w);
          out_.send_value(comm_, 0, mpi_msg::started, m.worker, pid);
        } catch (const std::exception& e) {
          const std::string why = e.what();
          out_.send(comm_, 0, mpi_msg::start_failed, m.worker, std::as_bytes(std::span(why)));
        }
        break;
      }
      case mpi_msg::part:
      case mpi_msg::frame: {
        const auto it = workers_.find(m.worker);
        if (it == workers_.end()) break;  // it ended meanwhile: rank 0 hears of that
        hosted& w = *it->second;
        w.parts.insert(w.parts.end(), body.begin(), body.end());
        if (m.kind == mpi_msg::part) break;
        w.out.push(std::move(w.parts));
        w.parts = {};
        w.out.flush(w.sock.get());
        break;
      }
      case mpi_msg::signal: {
        const auto signo = mpi_take<std::int32_t>(body);
        if (const auto it = workers_.find(m.worker); it != workers_.end()) {
          try {
            if (signo == SIGKILL) {
              it->second->proc.kill();
            } else {
              it->second->proc.terminate();
            }
          } catch (const std::exception&) {  // it has ended: its pidfd says so
          }
        }
        break;
      }
      default:
        throw SerializationError("MPI pool: rank " + std::to_string(rank_) + " got message kind " +
                                 std::to_string(static_cast<int>(m.kind)));
    }
  }

  /// Sends rank 0 every complete frame the worker wrote.
  void forward(hosted& w) {
    w.in.read(w.sock.get(), false);
    frame_in::frame fr;
    while (w.in.next(fr)) {
      out_.send(comm_, 0, mpi_msg::frame, w.id, fr.payload);  // pass_descriptors=false: none ride
      fr = {};
      w.in.pop();
    }
  }

  void ended(std::uint32_t id) {
    hosted& w = *workers_.at(id);
    try {
      forward(w);  // its last words
    } catch (const std::exception&) {  // a torn last frame: rank 0 fails its chunk
    }
    std::optional<int> code;
    try {
      w.proc.join(std::chrono::seconds(10));
      code = w.proc.exitcode();
    } catch (const std::exception&) {
    }
    struct {
      std::int32_t has_code;
      std::int32_t code;
      std::uint64_t begun;
    } report{code ? 1 : 0, code.value_or(0),
             std::atomic_ref<std::uint64_t>(w.started.value()).load(std::memory_order_acquire)};
    out_.send_value(comm_, 0, mpi_msg::ended, id, report);
    workers_.erase(id);
  }

  /// Ends every worker (SIGTERM, SIGKILL after a short grace) and lets the last sends go.
  void stop_all() noexcept {
    for (auto& [id, w] : workers_) {
      try {
        w->proc.terminate();
      } catch (...) {
      }
    }
    for (auto& [id, w] : workers_) {
      try {
        if (!w->proc.join(std::chrono::milliseconds(500))) w->proc.kill();
        (void)w->proc.join(std::chrono::seconds(5));
      } catch (...) {
      }
    }
    workers_.clear();
    try {
      const deadline until(std::chrono::seconds(5));
      while (!out_.empty() && !until.expired()) {
        (void)out_.progress();
        std::this_thread::yield();
      }
    } catch (...) {
    }
    out_.abandon();
  }

  MPI_Comm comm_;
  int rank_;
  std::map<std::uint32_t, std::unique_ptr<hosted>> workers_;
  mpi_outbox out_;
};

// --- rank 0 -------------------------------------------------------------------------------------

/// What a pool's link and the relay thread share about one remote worker.
struct mpi_worker_state {
  enum class phase { starting, running, failed, ended };
  std::uint32_t id = 0;
  std::mutex mu;
  std::condition_variable cv;
  phase at = phase::starting;
  std::string error;  // why it could not start, or how it was lost
  std::string where;  // "MPI rank 2"
  pid_t pid = 0;
  std::optional<int> code;
  std::uint64_t begun = 0;
  bool lost = false;  // ended without a report (its rank stopped answering, or MPI failed)
  unique_fd ended = make_eventfd("MPI pool");  // readable once it has ended
};

/// Rank 0's side: one thread doing every MPI call, relaying frames for every remote worker of
/// every pool of the program.
class mpi_relay {
 public:
  /// `world`: a duplicate of MPI_COMM_WORLD this relay owns; `program`/`args`: what to start
  /// with MPI_Comm_spawn when the program runs alone.
  mpi_relay(MPI_Comm world, std::string program, std::vector<std::string> args)
      : world_(world), program_(std::move(program)), args_(std::move(args)) {
    int size = 1;
    check_mpi(MPI_Comm_size(world_, &size), "Comm_size");
    for (int r = 1; r < size; ++r) hosts_.push_back({world_, r, 0, false});
    spmd_ = size > 1;
    thread_ = std::thread([this] { run(); });
  }
  mpi_relay(const mpi_relay&) = delete;
  mpi_relay& operator=(const mpi_relay&) = delete;

  /// Tells every serving rank to exit and ends the thread. Remote workers still running end as
  /// lost ("the MPI world was closed").
  ~mpi_relay() { close(); }

  void close() noexcept {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    signal_eventfd(wake_.get());
    thread_.join();
  }

  /// True when the program was started by mpirun with other ranks to serve.
  [[nodiscard]] bool spmd() const noexcept { return spmd_; }
  /// Ranks that serve tasks now (spawned ones included).
  [[nodiscard]] int hosts() {
    return call([this] { return static_cast<int>(hosts_.size()); });
  }

  /// Spawns serving processes (MPI_Comm_spawn of this program) until there are `n`.
  /// @throws OSError when MPI cannot spawn them.
  void ensure_hosts(int n) {
    call([this, n] {
      const int missing = n - static_cast<int>(hosts_.size());
      if (missing > 0) spawn(missing);
      return 0;
    });
  }

  /// Starts a worker on the serving rank with the fewest, waiting up to `limit` for it.
  /// @throws ProcessError when none can start.
  std::shared_ptr<mpi_worker_state> start_worker(std::int64_t maxtasks, unique_fd relay_side,
                                                 std::chrono::seconds limit) {
    auto st = std::make_shared<mpi_worker_state>();
    post([this, st, maxtasks, sock = std::make_shared<unique_fd>(std::move(relay_side))]() mutable {
      begin_start(st, maxtasks, std::move(*sock));
    });
    std::unique_lock lock(st->mu);
    if (!st->cv.wait_for(lock, limit, [&] { return st->at != mpi_worker_state::phase::starting; })) {
      lock.unlock();
      signal(st->id, SIGKILL);
      throw ProcessError("MPI pool: " + st->where + " did not start a worker within " +
                         std::to_string(limit.count()) + " s");
    }
    if (st->at == mpi_worker_state::phase::failed) throw ProcessError("MPI pool: " + st->error);
    return st;
  }

  /// Sends a signal to the worker's process (on its rank).
  void signal(std::uint32_t id, int signo) noexcept {
    try {
      post([this, id, signo] {
        if (const auto it = workers_.find(id); it != workers_.end()) {
          const host& h = hosts_[it->second.host];
          out_.send_value(h.comm, h.rank, mpi_msg::signal, id, static_cast<std::int32_t>(signo));
        }
      });
    } catch (...) {
    }
  }

 private:
  struct host {
    MPI_Comm comm;
    int rank;
    int workers;
    bool spawned;
    bool gone = false;  // stopped answering: no more workers start there
    std::chrono::steady_clock::time_point heard = std::chrono::steady_clock::now();
  };
  struct relayed {
    std::shared_ptr<mpi_worker_state> state;
    std::size_t host = 0;
    unique_fd sock;  // the relay's end of the pool's channel
    frame_in in;
    frame_out out;
    std::vector<std::byte> parts;
    bool pool_gone = false;    // the pool closed its end
    bool end_pending = false;  // ended arrived; waiting for `out` to drain
  };

  /// Runs `fn` in the relay thread and returns its result (rethrowing its exception).
  template <class Fn>
  auto call(Fn fn) -> decltype(fn()) {
    using R = decltype(fn());
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::optional<R> result;
    std::exception_ptr error;
    post([&] {
      try {
        result.emplace(fn());
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard lock(m);
        done = true;
      }
      cv.notify_all();
    });
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done; });
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

  void post(std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (finished_) throw ProcessError("MPI pool: the MPI world was closed");
      requests_.push_back(std::move(fn));
    }
    signal_eventfd(wake_.get());
  }

  void run() noexcept {
    try {
      loop();
    } catch (const std::exception& e) {
      lose_everything(std::string("an MPI error: ") + e.what());
    }
    // Requests that came too late (or after an MPI error) still get their answer.
    std::deque<std::function<void()>> todo;
    {
      std::lock_guard lock(mu_);
      finished_ = true;
      todo.swap(requests_);
    }
    for (auto& fn : todo) fn();
    lose_everything(broken_.empty() ? "the MPI world was closed" : broken_);
  }

  void loop() {
    mpi_idle idle;
    std::vector<pollfd> fds;
    std::vector<std::uint32_t> ids;
    for (;;) {
      bool active = false;
      std::deque<std::function<void()>> todo;
      bool stop = false;
      {
        std::lock_guard lock(mu_);
        todo.swap(requests_);
        stop = stopping_;
      }
      for (auto& fn : todo) fn();
      active |= !todo.empty();
      if (stop) {
        say_exit();
        return;
      }
      active |= receive_all();
      active |= out_.progress();
      give_up_silent_hosts();

      fds.clear();
      ids.clear();
      fds.push_back({wake_.get(), POLLIN, 0});
      for (auto& [id, r] : workers_) {
        if (r.pool_gone && r.out.empty()) continue;
        const short events = static_cast<short>((r.pool_gone ? 0 : POLLIN) | (r.out.empty() ? 0 : POLLOUT));
        fds.push_back({r.sock.get(), events, 0});
        ids.push_back(id);
      }
      // With no remote worker nothing can arrive from the ranks: sleep until asked to do something.
      const bool idle_world = workers_.empty() && out_.empty() && !active;
      std::optional<timespec> timeout;
      if (!idle_world) timeout = active ? timespec{0, 0} : idle.next();
      if (mpi_wait(fds, timeout) > 0) {
        active = true;
        if (fds[0].revents != 0) drain_eventfd(wake_.get());
        for (std::size_t i = 0; i < ids.size(); ++i) {
          const short ev = fds[i + 1].revents;
          if (ev == 0) continue;
          relayed& r = workers_.at(ids[i]);
          if ((ev & POLLOUT) != 0 && !r.out.flush(r.sock.get())) r.pool_gone = true;
          if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0) from_pool(ids[i], r);
          if (r.end_pending && (r.out.empty() || r.pool_gone)) finish(ids[i]);
        }
      }
      if (active) idle.active();
    }
  }

  /// Frames the pool wrote for worker `id`: on to its rank.
  void from_pool(std::uint32_t id, relayed& r) {
    if (!r.in.read(r.sock.get(), false)) {
      // The pool let go of this worker (it was destroyed without stopping it): end it.
      r.pool_gone = true;
      const host& h = hosts_[r.host];
      if (!r.end_pending) out_.send_value(h.comm, h.rank, mpi_msg::signal, id, std::int32_t{SIGKILL});
    }
    frame_in::frame fr;
    const host& h = hosts_[r.host];
    while (r.in.next(fr)) {
      out_.send(h.comm, h.rank, mpi_msg::frame, id, fr.payload);
      fr = {};
      r.in.pop();
    }
  }

  /// Takes every message that has arrived from any serving rank. @returns true when any had.
  bool receive_all() {
    bool any = false;
    std::vector<MPI_Comm> comms;
    if (spmd_) comms.push_back(world_);
    for (MPI_Comm c : spawned_) comms.push_back(c);
    for (MPI_Comm c : comms) {
      while (auto m = mpi_receive(c, MPI_ANY_SOURCE)) {
        any = true;
        from_host(*m, host_index(c, m->source));
      }
    }
    return any;
  }

  [[nodiscard]] std::size_t host_index(MPI_Comm comm, int rank) const {
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i].comm == comm && hosts_[i].rank == rank) return i;
    }
    throw SerializationError("MPI pool: a message from rank " + std::to_string(rank) + ", which serves nothing");
  }

  /// A rank with workers that has said nothing for mpi_lost_after is given up: its workers end
  /// as lost (the chunks they were sent fail, the others run elsewhere) and none starts there.
  void give_up_silent_hosts() {
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t h = 0; h < hosts_.size(); ++h) {
      host& x = hosts_[h];
      if (x.gone || x.workers == 0 || now - x.heard < mpi_lost_after) continue;
      x.gone = true;
      const std::string why = (x.spawned ? "spawned MPI process " + std::to_string(h)
                                          : "MPI rank " + std::to_string(x.rank)) +
                              " stopped answering (nothing for " + std::to_string(mpi_lost_after.count()) +
                              " s: it died, or MPI lost it)";
      for (auto it = workers_.begin(); it != workers_.end();) {
        if (it->second.host != h) {
          ++it;
          continue;
        }
        lose(it->second, why);
        it = workers_.erase(it);
      }
      x.workers = 0;
    }
  }

  /// Worker `r` ends as lost (`why`), or fails to start.
  static void lose(relayed& r, const std::string& why) noexcept {
    {
      std::lock_guard lock(r.state->mu);
      r.state->at = r.state->at == mpi_worker_state::phase::starting ? mpi_worker_state::phase::failed
                                                                       : mpi_worker_state::phase::ended;
      r.state->error = why;
      r.state->lost = true;
    }
    r.state->cv.notify_all();
    signal_eventfd(r.state->ended.get());
  }

  void from_host(const mpi_message& m, std::size_t from) {
    hosts_[from].heard = std::chrono::steady_clock::now();
    if (m.kind == mpi_msg::alive) return;
    const auto it = workers_.find(m.worker);
    if (it == workers_.end()) return;  // a worker this relay gave up on
    relayed& r = it->second;
    auto body = m.body();
    auto& st = *r.state;
    switch (m.kind) {
      case mpi_msg::started: {
        const auto pid = mpi_take<std::int32_t>(body);
        {
          std::lock_guard lock(st.mu);
          st.pid = pid;
          st.at = mpi_worker_state::phase::running;
        }
        st.cv.notify_all();
        break;
      }
      case mpi_msg::start_failed: {
        {
          std::lock_guard lock(st.mu);
          st.error = st.where + " could not start a worker: " +
                     std::string(reinterpret_cast<const char*>(body.data()), body.size());
          st.at = mpi_worker_state::phase::failed;
        }
        st.cv.notify_all();
        --hosts_[r.host].workers;
        workers_.erase(it);
        break;
      }
      case mpi_msg::part:
      case mpi_msg::frame:
        r.parts.insert(r.parts.end(), body.begin(), body.end());
        if (m.kind == mpi_msg::part || r.pool_gone) break;
        r.out.push(std::move(r.parts));
        r.parts = {};
        if (!r.out.flush(r.sock.get())) r.pool_gone = true;
        break;
      case mpi_msg::ended: {
        const auto has_code = mpi_take<std::int32_t>(body);
        const auto code = mpi_take<std::int32_t>(body);
        const auto begun = mpi_take<std::uint64_t>(body);
        {
          std::lock_guard lock(st.mu);
          if (has_code != 0) st.code = code;
          st.begun = begun;
        }
        r.end_pending = true;
        if (r.out.empty() || r.pool_gone) finish(m.worker);
        break;
      }
      default:
        throw SerializationError("MPI pool: rank 0 got message kind " + std::to_string(static_cast<int>(m.kind)));
    }
  }

  /// Worker `id` has ended and the pool has all it said: tell the pool.
  void finish(std::uint32_t id) {
    const auto it = workers_.find(id);
    relayed& r = it->second;
    {
      std::lock_guard lock(r.state->mu);
      r.state->at = mpi_worker_state::phase::ended;
    }
    r.state->cv.notify_all();
    signal_eventfd(r.state->ended.get());
    --hosts_[r.host].workers;
    workers_.erase(it);
  }

  void begin_start(const std::shared_ptr<mpi_worker_state>& st, std::int64_t maxtasks, unique_fd sock) {
    st->id = ++last_id_;
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      if (!hosts_[i].gone && (!best || hosts_[i].workers < hosts_[*best].workers)) best = i;
    }
    if (!broken_.empty() || !best) {
      {
        std::lock_guard lock(st->mu);
        st->error = !broken_.empty()   ? broken_
                    : hosts_.empty()   ? "no MPI rank serves tasks: start the program with mpirun -n N "
                                         "(N >= 2), or run it alone so that workers are spawned"
                                       : "every MPI rank that served tasks stopped answering";
        st->at = mpi_worker_state::phase::failed;
      }
      st->cv.notify_all();
      return;
    }
    host& h = hosts_[*best];
    if (h.workers == 0) h.heard = std::chrono::steady_clock::now();  // silent until now by design
    st->where = h.spawned ? "spawned MPI process " + std::to_string(*best) : "MPI rank " + std::to_string(h.rank);
    ++h.workers;
    relayed& r = workers_[st->id];
    r.state = st;
    r.host = *best;
    r.sock = std::move(sock);
    out_.send_value(h.comm, h.rank, mpi_msg::start, st->id, maxtasks);
  }

  /// Starts `n` serving processes (one MPI_Comm_spawn of this program).
  void spawn(int n) {
    std::vector<std::string> args = args_;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string command = program_;
    MPI_Comm inter = MPI_COMM_NULL;
    std::vector<int> codes(static_cast<std::size_t>(n), MPI_SUCCESS);
    // MPI_COMM_SELF's default handler aborts the program: a failed spawn must be an exception.
    check_mpi(MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN), "Comm_set_errhandler");
    check_mpi(MPI_Comm_spawn(command.data(), argv.data(), n, MPI_INFO_NULL, 0, MPI_COMM_SELF, &inter,
                             codes.data()),
              "Comm_spawn");
    for (int c : codes) check_mpi(c, "Comm_spawn (a child)");
    check_mpi(MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN), "Comm_set_errhandler");
    spawned_.push_back(inter);
    for (int r = 0; r < n; ++r) hosts_.push_back({inter, r, 0, true});
  }

  /// Tells every serving rank to exit, lets the messages go, disconnects the spawned ones.
  void say_exit() {
    for (const host& h : hosts_) {
      if (!h.gone) out_.send(h.comm, h.rank, mpi_msg::exit, 0, {});
    }
    const deadline until(std::chrono::seconds(10));
    while (!out_.empty() && !until.expired()) {
      (void)out_.progress();
      std::this_thread::yield();
    }
    out_.abandon();
    // Disconnecting is collective: with a member gone it would wait forever, so that group is
    // only freed.
    for (MPI_Comm& c : spawned_) {
      const bool whole = std::none_of(hosts_.begin(), hosts_.end(), [&](const host& h) { return h.comm == c && h.gone; });
      if (whole) {
        MPI_Comm_disconnect(&c);
      } else {
        MPI_Comm_free(&c);
      }
    }
    spawned_.clear();
    hosts_.clear();
  }

  /// Every remote worker ends as lost (`why`), and no more can start.
  void lose_everything(const std::string& why) noexcept {
    if (broken_.empty()) broken_ = why;
    for (auto& [id, r] : workers_) lose(r, why);
    workers_.clear();
    out_.abandon();
  }

  MPI_Comm world_;
  std::string program_;
  std::vector<std::string> args_;
  bool spmd_ = false;

  std::mutex mu_;  // guards requests_, stopping_, finished_
  std::deque<std::function<void()>> requests_;
  bool stopping_ = false;
  bool finished_ = false;
  unique_fd wake_ = make_eventfd("MPI pool");

  // The relay thread's own.
  std::vector<host> hosts_;
  std::vector<MPI_Comm> spawned_;
  std::map<std::uint32_t, relayed> workers_;
  std::uint32_t last_id_ = 0;
  mpi_outbox out_;
  std::string broken_;

  std::thread thread_;  // last: starts once everything above exists
};

/// A pool's view of one remote worker.
class mpi_link final : public worker_link {
 public:
  mpi_link(std::shared_ptr<mpi_relay> relay, std::shared_ptr<mpi_worker_state> state, unique_fd channel)
      : relay_(std::move(relay)), state_(std::move(state)), channel_(std::move(channel)) {}

  [[nodiscard]] int channel() const noexcept override { return channel_.get(); }
  [[nodiscard]] int ended_fd() const noexcept override { return state_->ended.get(); }
  [[nodiscard]] std::string describe() const override {
    std::lock_guard lock(state_->mu);
    if (state_->lost) return "pid " + std::to_string(state_->pid) + ": " + state_->error;
    return "pid " + std::to_string(state_->pid) + " on " + state_->where;
  }
  [[nodiscard]] pid_t pid() const noexcept override { return state_->pid; }
  [[nodiscard]] std::uint64_t begun() const noexcept override {
    std::lock_guard lock(state_->mu);
    return state_->begun;
  }
  [[nodiscard]] bool lost() const noexcept override {
    std::lock_guard lock(state_->mu);
    return state_->lost;
  }
  void terminate() noexcept override { relay_->signal(state_->id, SIGTERM); }
  void kill() noexcept override { relay_->signal(state_->id, SIGKILL); }
  std::optional<int> reap(std::chrono::milliseconds limit) noexcept override {
    try {
      (void)poll_fd(state_->ended.get(), POLLIN, deadline(limit), "MPI pool worker");
    } catch (...) {
    }
    std::lock_guard lock(state_->mu);
    return state_->code;
  }

 private:
  std::shared_ptr<mpi_relay> relay_;
  std::shared_ptr<mpi_worker_state> state_;
  unique_fd channel_;
};

/// Starts a pool's workers on the serving ranks.
class mpi_launcher final : public worker_launcher {
 public:
  explicit mpi_launcher(std::shared_ptr<mpi_relay> relay) : relay_(std::move(relay)) {}
  std::unique_ptr<worker_link> launch(std::int64_t maxtasks) override {
    auto [mine, theirs] = socket_pair("MPI pool channel");
    auto state = relay_->start_worker(maxtasks, std::move(theirs), std::chrono::seconds(60));
    return std::make_unique<mpi_link>(relay_, std::move(state), std::move(mine));
  }
  [[nodiscard]] bool passes_descriptors() const noexcept override { return false; }
  [[nodiscard]] std::string where() const override { return "a worker on another MPI rank"; }

 private:
  std::shared_ptr<mpi_relay> relay_;
};

}  // namespace multiprocessing::detail

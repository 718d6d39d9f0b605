// SPDX-License-Identifier: MIT
// multiprocessing/mpi.hpp
//
// The Pool and executor API on MPI, for jobs that outgrow one machine (Python: mpi4py.futures).
// Every rank runs the same binary; rank 0 runs the program, the others serve its tasks:
//
//   int main(int argc, char** argv) {
//     mp::freeze_support();
//     auto world = mp::mpi::serve_unless_root(argc, argv);  // ranks > 0 serve here, then exit
//     mp::mpi::MPIPoolExecutor ex;                           // one worker per serving rank
//     for (int r : ex.map(work, inputs)) ...
//   }
//
//   mpirun -n 5 ./prog            # SPMD: rank 0 plus 4 serving ranks (mpi4py: -m mpi4py.futures)
//   ./prog                        # alone: the executor spawns its workers with MPI_Comm_spawn
//
// MPIPoolExecutor has the futures executor API (submit, map, shutdown, Future<R>, as_completed,
// wait) and mpi::Pool the Pool API (apply_async, map, imap, imap_unordered, starmap), over the
// same machinery as the local ones (detail/mpi_relay.hpp): tasks follow the spawn rules, their
// exceptions come back as in the local pool, and each task runs in a worker *process* on its rank,
// so a task that crashes fails only its future (BrokenProcessPool naming the signal and the rank)
// and the worker is replaced. Arguments and results cannot hold descriptors (Queue, Lock, Value,
// Connection, shared memory): they cannot reach another machine; submitting one is ValueError.
//
// MPI's fault model: Open MPI (Debian's build has no ULFM) ends the whole job when a rank itself
// dies, rank 0 included, so nothing hangs but nothing survives it either. A spawned serving
// process that dies takes the others spawned with it, but not the program, and MPI says nothing:
// rank 0 gives up a serving process silent for detail::mpi_lost_after (they say they are alive
// every second while they have workers), failing the calls it was sent with BrokenProcessPool.
// An MPI error that MPI does report (errors return on the library's communicators) fails every
// pending future with BrokenProcessPool and breaks the executor; it never hangs.
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <stdlib.h>

#include "errors.hpp"
#include "futures.hpp"
#include "pool.hpp"
#include "detail/mpi_relay.hpp"

namespace multiprocessing::mpi {

class World;

namespace detail {

using namespace multiprocessing::detail;  // NOLINT(google-build-using-namespace): our own internals

/// The relay of this process's MPI world, while a World is open. MPI is initialized once per
/// process, so this is the one process-wide slot of the module.
struct world_slot {
  std::mutex mu;
  std::weak_ptr<mpi_relay> relay;
};
inline world_slot& current_world() {
  static world_slot slot;
  return slot;
}

/// @throws ProcessError when no World is open.
inline std::shared_ptr<mpi_relay> relay_or_throw() {
  auto& slot = current_world();
  std::lock_guard lock(slot.mu);
  if (auto r = slot.relay.lock()) return r;
  throw ProcessError(
      "mp::mpi: no MPI world is open in this process: begin main() with "
      "`auto world = mp::mpi::serve_unless_root(argc, argv);` and keep `world` alive while executors run");
}

/// A serving rank's whole life: the host loop, then MPI_Finalize and exit.
[[noreturn]] inline void serve_and_exit(MPI_Comm comm, bool disconnect, bool finalize) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int code = 0;
  try {
    mpi_host(comm, rank).serve();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mp::mpi: rank %d stops serving: %s\n", rank, e.what());
    code = 1;
  }
  if (disconnect) {
    MPI_Comm_disconnect(&comm);
  } else {
    MPI_Comm_free(&comm);
  }
  if (finalize) MPI_Finalize();
  std::fflush(nullptr);
  std::exit(code);
}

}  // namespace detail

/// This program's MPI world, as rank 0 sees it (see serve_unless_root()). Closing it (or its
/// destructor) tells the serving ranks to exit and finalizes MPI when serve_unless_root()
/// initialized it. Executors and pools must be gone by then; one still open breaks
/// (BrokenProcessPool) rather than hang. Movable, not copyable.
class World {
 public:
  World(World&&) noexcept = default;
  World& operator=(World&&) = delete;
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World() { close(); }

  /// Always 0: only rank 0 gets a World.
  [[nodiscard]] int rank() const noexcept { return 0; }
  /// The ranks of MPI_COMM_WORLD (1 when the program runs alone).
  [[nodiscard]] int size() const noexcept { return state_ ? state_->size : 0; }
  /// True when started by mpirun with ranks to serve; false when workers will be spawned.
  [[nodiscard]] bool spmd() const noexcept { return state_ && state_->size > 1; }

  /// Ends the serving ranks and MPI (idempotent).
  void close() noexcept {
    if (!state_) return;
    {
      auto& slot = detail::current_world();
      std::lock_guard lock(slot.mu);
      slot.relay.reset();
    }
    state_->relay->close();
    state_->relay.reset();
    MPI_Comm_free(&state_->comm);
    if (state_->finalize) MPI_Finalize();
    state_.reset();
  }

 private:
  friend World serve_unless_root(int& argc, char**& argv);
  struct state {
    std::shared_ptr<multiprocessing::detail::mpi_relay> relay;
    MPI_Comm comm = MPI_COMM_NULL;  // the relay's duplicate of MPI_COMM_WORLD
    int size = 1;
    bool finalize = false;
  };
  explicit World(std::unique_ptr<state> s) : state_(std::move(s)) {}
  std::unique_ptr<state> state_;
};

/// The one line at the top of main() (after mp::freeze_support()) that makes a program an MPI
/// program: initializes MPI (MPI_THREAD_SERIALIZED) unless the program already did; on a rank
/// other than 0, and in a process spawned by an MPIPoolExecutor, serves tasks until rank 0's World
/// closes and then exits the process (std::exit(0)); on rank 0 returns the World.
/// @throws OSError when MPI cannot be initialized or gives less than MPI_THREAD_SERIALIZED;
///   ProcessError when a World is already open.
[[nodiscard]] inline World serve_unless_root(int& argc, char**& argv) {
  using multiprocessing::detail::check_mpi;
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "Initialized");
  int provided = MPI_THREAD_SINGLE;
  const bool ours = initialized == 0;
  if (ours) {
    check_mpi(MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided), "Init_thread");
  } else {
    check_mpi(MPI_Query_thread(&provided), "Query_thread");
  }
  if (provided < MPI_THREAD_SERIALIZED) {
    throw OSError("mp::mpi needs MPI_THREAD_SERIALIZED (its relay thread makes the MPI calls); this "
                  "MPI library provides level " + std::to_string(provided));
  }
  MPI_Comm parent = MPI_COMM_NULL;
  check_mpi(MPI_Comm_get_parent(&parent), "Comm_get_parent");
  if (parent != MPI_COMM_NULL) {
    check_mpi(MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN), "Comm_set_errhandler");
    detail::serve_and_exit(parent, true, ours);
  }
  MPI_Comm world = MPI_COMM_NULL;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &world), "Comm_dup");
  check_mpi(MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN), "Comm_set_errhandler");
  int rank = 0;
  int size = 1;
  check_mpi(MPI_Comm_rank(world, &rank), "Comm_rank");
  check_mpi(MPI_Comm_size(world, &size), "Comm_size");
  if (rank != 0) detail::serve_and_exit(world, false, ours);

  auto& slot = detail::current_world();
  std::lock_guard lock(slot.mu);
  if (!slot.relay.expired()) {
    MPI_Comm_free(&world);
    throw ProcessError("mp::mpi::serve_unless_root(): an MPI world is already open in this process");
  }
  // What MPI_Comm_spawn starts when the program runs alone: this very binary, same arguments.
  std::string program = "/proc/self/exe";
  if (char* real = ::realpath("/proc/self/exe", nullptr)) {
    program = real;
    std::free(real);  // NOLINT(cppcoreguidelines-no-malloc): realpath's buffer
  }
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  auto s = std::make_unique<World::state>();
  s->comm = world;
  s->size = size;
  s->finalize = ours;
  s->relay = std::make_shared<multiprocessing::detail::mpi_relay>(world, std::move(program), std::move(args));
  slot.relay = s->relay;
  return World(std::move(s));
}

/// The options of an MPIPoolExecutor (mpi4py: MPIPoolExecutor's keyword arguments).
struct MPIPoolExecutorOptions {
  /// Workers; default: one per serving rank under mpirun, or the MPI universe size - 1 (at least
  /// cpu_count() when MPI does not say) spawned when the program runs alone.
  std::optional<int> max_workers = std::nullopt;
  /// Called once in each worker before its first task (as PoolOptions::initializer).
  PoolInitializer initializer = {};
  PoolInitArgs initargs = {};
  /// Calls a worker runs before it is replaced by a fresh one; default: unlimited.
  std::optional<int> max_tasks_per_child = std::nullopt;
};

}  // namespace multiprocessing::mpi

namespace multiprocessing::detail {

/// How the front ends (basic_pool, basic_executor) reach workers on MPI ranks: the process
/// backend's chunks and core, with workers started by an mpi_launcher.
struct mpi_pool_backend {
  using core_type = pool_core;
  using options_type = PoolOptions;
  /// Quick calls queue at most this deep on a rank (a call's trip through the relay costs more
  /// than a local one, and the queue hides it).
  static constexpr std::size_t max_prefetch = 16;
  static std::shared_ptr<pool_core> make_core(PoolOptions options,
                                              std::size_t prefetch = max_prefetch) {
    auto relay = mpi::detail::relay_or_throw();
    int default_count = relay->hosts();
    if (!relay->spmd()) {
      default_count = universe_workers();
      relay->ensure_hosts(options.processes.value_or(default_count));
    }
    pool_config config;
    std::tie(config.processes, config.maxtasks) = checked_pool_size(options, default_count);
    config.max_prefetch = std::max<std::size_t>(1, prefetch);
    return make_process_pool_core(std::move(config), options.initializer, options.initargs,
                                  std::make_unique<mpi_launcher>(std::move(relay)));
  }
  template <class F, class... Args>
  using maker = process_chunk_maker<F, Args...>;
  template <class F, class... Args>
  static constexpr bool check_task() {
    return check_pool_task<F, Args...>();
  }

 private:
  /// MPI_UNIVERSE_SIZE - 1 when MPI knows it (and it is > 1), else cpu_count().
  static int universe_workers() {
    int* universe = nullptr;
    int flag = 0;
    if (MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &universe, &flag) == MPI_SUCCESS &&
        flag != 0 && universe != nullptr && *universe > 2) {
      return *universe - 1;
    }
    return cpu_count();
  }
};

}  // namespace multiprocessing::detail

namespace multiprocessing::futures::detail {

template <>
struct executor_core<multiprocessing::detail::mpi_pool_backend> {
  using options_type = mpi::MPIPoolExecutorOptions;
  static std::shared_ptr<pool_core> make(mpi::MPIPoolExecutorOptions options) {
    PoolOptions pool = executor_pool_options(options);
    // As ProcessPoolExecutor, two calls per worker while calls are slow, so the rest stay
    // cancellable; but calls that prove quick may queue deeper on a rank (up to 16, as in a Pool),
    // since each trip through MPI and back costs far more than a local one.
    return multiprocessing::detail::mpi_pool_backend::make_core(std::move(pool));
  }
};

}  // namespace multiprocessing::futures::detail

namespace multiprocessing::mpi {

/// mpi4py.futures.MPIPoolExecutor: the futures executor API (see futures::basic_executor) with
/// workers on the serving MPI ranks. Use it from rank 0 while its World is open.
using MPIPoolExecutor = futures::basic_executor<multiprocessing::detail::mpi_pool_backend>;

/// The Pool API (see basic_pool) with workers on the serving MPI ranks:
///   mp::mpi::Pool pool({.processes = 4});  // PoolOptions; default: one per serving rank
using Pool = basic_pool<multiprocessing::detail::mpi_pool_backend>;

}  // namespace multiprocessing::mpi

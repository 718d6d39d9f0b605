// SPDX-License-Identifier: MIT
// multiprocessing/queues.hpp
//
// Defines Queue<T>, JoinableQueue<T> and SimpleQueue<T>: FIFO queues that move values between
// processes (Python: multiprocessing.Queue, JoinableQueue, SimpleQueue). T must satisfy
// serializable<T>. The thread twins in multiprocessing::dummy are the same templates over
// thread_backend (a std::deque of T under a mutex: no serialization, any movable T).
//
// The objects are handles: copying one shares the queue (a Python reference). They are inherited
// under fork and serializable, so they can be passed to Process targets and Pool tasks under every
// start method; no Manager is needed. Any number of processes may put and get concurrently.
//
// How it works (detail/queue_ring.hpp): messages are serialized straight into a 4 MiB ring in an
// anonymous shared segment, so put() returns once the item is in shared memory - there is no
// feeder thread, and nothing put before a process exits can be lost. A put costs no system call
// while the consumers keep up. Messages larger than 2 MiB, and messages carrying descriptors
// (handles), travel in a segment of their own, passed over a socket; size is bounded only by
// memory (a 64 MiB message round-trips).
//
// Differences from Python, all deliberate:
//   * a message that cannot be serialized throws in put() (CPython's feeder thread prints it and
//     drops the item);
//   * maxsize <= 0 is unbounded in items, but the ring holds at most 4 MiB of small messages (and
//     about a hundred large ones in flight): beyond that put() waits for consumers, as a pipe
//     does, where CPython buffers without limit in the producer's memory. A process that must not
//     block should put with a timeout;
//   * qsize() is exact, on every platform (CPython's cannot count on macOS);
//   * join_thread() and cancel_join_thread() do nothing (there is no feeder thread to join);
//   * a producer or consumer killed by SIGKILL in the middle of put()/get() costs at most that
//     one item and never blocks the others (CPython's queue locks stay held forever).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/futex.hpp"
#include "detail/queue_ring.hpp"
#include "detail/sync_core.hpp"
#include "errors.hpp"
#include "serialize.hpp"
#include "timeout.hpp"

namespace multiprocessing {

namespace detail {

/// Where a queue's items live: specialized per backend.
template <class T, class Backend>
class queue_channel;

/// Processes: the shared ring of detail/queue_ring.hpp, carrying T's encoding.
template <class T>
class queue_channel<T, process_backend> {
 public:
  queue_channel(std::int64_t maxsize, const std::string& what)
      : ring_(ring_channel::create(serialize::type_fingerprint<T>(), maxsize, what)) {}

  bool put(const T& item, bool block, const mono_deadline& until) {
    if constexpr (serialize::detail::is_bitwise<T>) {
      return ring_.put(std::as_bytes(std::span<const T, 1>(&item, 1)), {}, block, until);
    } else {
      serialize::Writer writer;
      writer.save(item);
      return ring_.put(writer.bytes(), writer.fds(), block, until);
    }
  }

  std::optional<T> get(bool block, const mono_deadline& until) {
    std::optional<T> out;
    const bool got = ring_.get(
        [&](std::span<const std::byte> bytes, std::span<const int> fds) {
          serialize::Reader reader(bytes, fds);
          out.emplace(reader.template load<T>());
          if (reader.remaining() != 0) {
            throw SerializationError("cannot load " + serialize::detail::type_name<T>() +
                                     " from a queue: " + std::to_string(reader.remaining()) +
                                     " bytes are left over after the value");
          }
        },
        block, until);
    if (!got) return std::nullopt;
    return out;
  }

  [[nodiscard]] std::uint64_t qsize() const noexcept { return ring_.qsize(); }
  [[nodiscard]] std::int64_t maxsize() const noexcept { return ring_.maxsize(); }
  [[nodiscard]] std::uint64_t lost() const noexcept { return ring_.lost(); }
  bool task_done() noexcept { return ring_.task_done(); }
  bool join(const mono_deadline& until) { return ring_.join(until); }

  void save(serialize::Writer& out) const { ring_.save(out); }
  static queue_channel load(serialize::Reader& in, const std::string& what) {
    return queue_channel(ring_channel::load(in, serialize::type_fingerprint<T>(), what));
  }

 private:
  explicit queue_channel(ring_channel ring) : ring_(std::move(ring)) {}
  ring_channel ring_;
};

/// Threads: a deque of T under a mutex (Python: queue.Queue).
template <class T>
class queue_channel<T, thread_backend> {
 public:
  queue_channel(std::int64_t maxsize, const std::string& /*what*/)
      : state_(std::make_shared<state>()) {
    state_->maxsize = maxsize;
  }

  template <class U>
  bool put(U&& item, bool block, const mono_deadline& until) {
    state& s = *state_;
    std::unique_lock lock(s.mu);
    auto room = [&] {
      return s.maxsize <= 0 || s.items.size() < static_cast<std::uint64_t>(s.maxsize);
    };
    if (!room() && (!block || !wait(s.room, lock, until, room))) return false;
    s.items.push_back(std::forward<U>(item));
    ++s.put_total;
    lock.unlock();
    s.nonempty.notify_one();
    return true;
  }

  std::optional<T> get(bool block, const mono_deadline& until) {
    state& s = *state_;
    std::unique_lock lock(s.mu);
    auto any = [&] { return !s.items.empty(); };
    if (!any() && (!block || !wait(s.nonempty, lock, until, any))) return std::nullopt;
    std::optional<T> out(std::move(s.items.front()));
    s.items.pop_front();
    lock.unlock();
    s.room.notify_one();
    return out;
  }

  [[nodiscard]] std::uint64_t qsize() const {
    std::lock_guard lock(state_->mu);
    return state_->items.size();
  }
  [[nodiscard]] std::int64_t maxsize() const noexcept { return state_->maxsize; }
  [[nodiscard]] std::uint64_t lost() const noexcept { return 0; }

  bool task_done() {
    state& s = *state_;
    std::unique_lock lock(s.mu);
    if (s.done_total >= s.put_total) return false;
    if (++s.done_total == s.put_total) {
      lock.unlock();
      s.all_done.notify_all();
    }
    return true;
  }

  bool join(const mono_deadline& until) {
    state& s = *state_;
    std::unique_lock lock(s.mu);
    return wait(s.all_done, lock, until, [&] { return s.done_total >= s.put_total; });
  }

 private:
  struct state {
    std::mutex mu;
    std::condition_variable nonempty, room, all_done;
    std::deque<T> items;
    std::int64_t maxsize = 0;
    std::uint64_t put_total = 0;
    std::uint64_t done_total = 0;
  };

  template <class Pred>
  static bool wait(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                   const mono_deadline& until, Pred pred) {
    if (const auto at = until.at()) return cv.wait_until(lock, *at, pred);
    cv.wait(lock, pred);
    return true;
  }

  std::shared_ptr<state> state_;
};

/// Queue and JoinableQueue: a channel plus this process's "closed" flag (Python's is per process
/// too). `Name` is the class name used in messages.
template <class T, class Backend>
class basic_queue {
  static_assert(!Backend::shared || serializable<T>,
                "multiprocessing::Queue<T>: T must be serializable (see serialize.hpp)");

 public:
  /// A new empty queue holding at most `maxsize` items (<= 0: no item limit).
  /// Python: multiprocessing.Queue(maxsize=0).
  explicit basic_queue(std::int64_t maxsize = 0) : basic_queue(maxsize, "Queue") {}

  /// Appends `item`, waiting up to `timeout` for room when `block`.
  /// Python: Queue.put(obj, block=True, timeout=None); the item is in shared memory on return
  /// (no feeder thread), and a serialization failure throws here.
  /// @throws Full if there was no room in time (at once when !block); ValueError if this handle
  /// was closed; SerializationError if `item` cannot be encoded.
  /// Memory ordering: what the producer did before put(x) is visible after the get() returning x.
  /// Peer death: a consumer killed in get() never blocks put() (its lock is taken over).
  void put(const T& item, bool block = true, Timeout timeout = {}) { put_impl(item, block, timeout); }
  void put(T&& item, bool block = true, Timeout timeout = {}) { put_impl(std::move(item), block, timeout); }
  /// put(item, true, timeout).
  void put(const T& item, Timeout timeout) { put_impl(item, true, timeout); }
  void put(T&& item, Timeout timeout) { put_impl(std::move(item), true, timeout); }
  /// put(item, false). Python: Queue.put_nowait(obj).
  void put_nowait(const T& item) { put_impl(item, false, Timeout{}); }
  void put_nowait(T&& item) { put_impl(std::move(item), false, Timeout{}); }

  /// Removes and returns the oldest item, waiting up to `timeout` for one when `block`.
  /// Python: Queue.get(block=True, timeout=None). Items of one producer arrive in put() order.
  /// @throws Empty if none came in time (at once when !block); ValueError if this handle was
  /// closed; TypeError/SerializationError if the bytes do not decode as T (the item is dropped).
  /// Memory ordering: acquire, see put().
  /// Peer death: a producer killed in put() loses that item only; a consumer killed in get()
  /// leaves its item to the next get(), except a large or descriptor-carrying one, which is lost.
  [[nodiscard]] T get(bool block = true, Timeout timeout = {}) { return get_impl(block, timeout); }
  /// get(true, timeout).
  [[nodiscard]] T get(Timeout timeout) { return get_impl(true, timeout); }
  /// get(false). Python: Queue.get_nowait().
  [[nodiscard]] T get_nowait() { return get_impl(false, Timeout{}); }

  /// Items in the queue now (Python: Queue.qsize(); exact here).
  [[nodiscard]] std::size_t qsize() const { return static_cast<std::size_t>(local_->channel.qsize()); }
  /// Python: Queue.empty().
  [[nodiscard]] bool empty() const { return qsize() == 0; }
  /// True when maxsize items are queued. Python: Queue.full().
  [[nodiscard]] bool full() const {
    const std::int64_t max = local_->channel.maxsize();
    return max > 0 && qsize() >= static_cast<std::size_t>(max);
  }
  /// The item limit given at construction (<= 0: none).
  [[nodiscard]] std::int64_t maxsize() const noexcept { return local_->channel.maxsize(); }

  /// Indicates that this process will use this queue no more: put() and get() through it (and
  /// its copies in this process) throw ValueError afterwards. Other processes are not affected.
  /// Python: Queue.close().
  void close() noexcept { local_->closed.store(true, std::memory_order_relaxed); }
  /// Python: Queue.join_thread(). Nothing to join: every put() is complete when it returns.
  void join_thread() noexcept {}
  /// Python: Queue.cancel_join_thread(). Nothing to cancel, and no data can be lost at exit.
  void cancel_join_thread() noexcept {}

  /// Items lost because a consumer was killed while taking them (large or descriptor-carrying
  /// items only; small ones are delivered to the next consumer instead). Not in Python.
  [[nodiscard]] std::uint64_t lost() const noexcept { return local_->channel.lost(); }

  void save(serialize::Writer& out) const
    requires Backend::shared
  {
    local_->channel.save(out);
  }
  static basic_queue load(serialize::Reader& in)
    requires Backend::shared
  {
    return basic_queue(queue_channel<T, Backend>::load(in, "Queue"), "Queue");
  }

 protected:
  basic_queue(std::int64_t maxsize, const char* name)
      : local_(std::make_shared<local>(queue_channel<T, Backend>(maxsize, name), name)) {}
  basic_queue(queue_channel<T, Backend> channel, const char* name)
      : local_(std::make_shared<local>(std::move(channel), name)) {}

  struct local {
    local(queue_channel<T, Backend> c, const char* n) : channel(std::move(c)), name(n) {}
    queue_channel<T, Backend> channel;
    std::atomic<bool> closed{false};
    const char* name;
  };

  void check_open(const char* op) const {
    if (local_->closed.load(std::memory_order_relaxed)) {
      throw ValueError(std::string(local_->name) + "." + op + "(): the queue is closed");
    }
  }

  template <class U>
  void put_impl(U&& item, bool block, Timeout timeout) {
    check_open("put");
    if (!local_->channel.put(std::forward<U>(item), block, mono_deadline(timeout))) {
      throw Full(std::string(local_->name) + ".put(): " +
                 (block ? "no room before the timeout" : "the queue is full"));
    }
  }

  T get_impl(bool block, Timeout timeout) {
    check_open("get");
    std::optional<T> item = local_->channel.get(block, mono_deadline(timeout));
    if (!item) {
      throw Empty(std::string(local_->name) + ".get(): " +
                  (block ? "nothing arrived before the timeout" : "the queue is empty"));
    }
    return std::move(*item);
  }

  std::shared_ptr<local> local_;
};

/// A Queue whose consumers acknowledge each item, so that a producer can wait for all of them to
/// be processed. Python: multiprocessing.JoinableQueue.
template <class T, class Backend>
class basic_joinable_queue : public basic_queue<T, Backend> {
  using base = basic_queue<T, Backend>;

 public:
  /// Python: JoinableQueue(maxsize=0).
  explicit basic_joinable_queue(std::int64_t maxsize = 0) : base(maxsize, "JoinableQueue") {}

  /// Marks one item taken with get() as processed. Python: JoinableQueue.task_done().
  /// @throws ValueError when called more times than items were put.
  /// Memory ordering: release; join() returning true sees what preceded every task_done().
  void task_done() {
    if (!this->local_->channel.task_done()) {
      throw ValueError("JoinableQueue.task_done(): called too many times (every item put is "
                       "already marked done)");
    }
  }

  /// Waits until every item put has been marked done with task_done(), or `timeout` passes.
  /// Python: JoinableQueue.join() (which has no timeout).
  /// @returns false when the timeout passed first.
  /// Peer death: an item lost with a killed consumer (see lost()) counts as done.
  bool join(Timeout timeout = {}) { return this->local_->channel.join(mono_deadline(timeout)); }

  static basic_joinable_queue load(serialize::Reader& in)
    requires Backend::shared
  {
    return basic_joinable_queue(queue_channel<T, Backend>::load(in, "JoinableQueue"));
  }

 private:
  explicit basic_joinable_queue(queue_channel<T, Backend> channel)
      : base(std::move(channel), "JoinableQueue") {}
};

/// The simplest queue: unbounded put/get, empty() and close(). Python: multiprocessing.SimpleQueue.
template <class T, class Backend>
class basic_simple_queue {
 public:
  basic_simple_queue() = default;

  /// Python: SimpleQueue.put(obj). Waits only while the ring is full (see the top of this file).
  /// @throws ValueError if this handle was closed.
  void put(const T& item) { queue_.put(item); }
  void put(T&& item) { queue_.put(std::move(item)); }
  /// Python: SimpleQueue.get().
  /// @throws Empty when `timeout` passes first (Python's has no timeout); ValueError if closed.
  [[nodiscard]] T get(Timeout timeout = {}) { return queue_.get(true, timeout); }
  /// Python: SimpleQueue.empty().
  [[nodiscard]] bool empty() const { return queue_.empty(); }
  /// Python: SimpleQueue.close(): put() and get() through this process's handles throw ValueError.
  void close() noexcept { queue_.close(); }

  void save(serialize::Writer& out) const
    requires Backend::shared
  {
    queue_.save(out);
  }
  static basic_simple_queue load(serialize::Reader& in)
    requires Backend::shared
  {
    basic_simple_queue q(base::load(in));
    return q;
  }

 private:
  using base = basic_queue<T, Backend>;
  explicit basic_simple_queue(base q) : queue_(std::move(q)) {}
  base queue_;
};

template <class Q>
struct is_process_queue : std::false_type {};
template <class T>
struct is_process_queue<basic_queue<T, process_backend>> : std::true_type {};
template <class T>
struct is_process_queue<basic_joinable_queue<T, process_backend>> : std::true_type {};
template <class T>
struct is_process_queue<basic_simple_queue<T, process_backend>> : std::true_type {};

}  // namespace detail

/// Queue handles cross exec: the ring's memfd and the side channel's sockets travel beside the
/// bytes.
template <class Q>
struct serializer<Q, std::enable_if_t<detail::is_process_queue<Q>::value>> {
  static void save(serialize::Writer& out, const Q& handle) { handle.save(out); }
  static Q load(serialize::Reader& in) { return Q::load(in); }
};

template <class T>
using Queue = detail::basic_queue<T, detail::process_backend>;
template <class T>
using JoinableQueue = detail::basic_joinable_queue<T, detail::process_backend>;
template <class T>
using SimpleQueue = detail::basic_simple_queue<T, detail::process_backend>;

}  // namespace multiprocessing

// SPDX-License-Identifier: MIT
// multiprocessing/detail/queue_ring.hpp
//
// The process channel behind Queue, JoinableQueue and SimpleQueue: framed byte messages in a ring
// inside one memfd segment, shared by any number of producer and consumer processes.
//
// Layout. A header (the ring_state below, one cache line per party so that producers and consumers
// do not bounce each other's lines), then `ring_capacity` bytes of ring. Positions (`tail`, where
// producers write; `head`, where consumers read) count bytes since creation and never wrap; the
// byte at position p is at p % capacity. A record is an 8-byte header {u32 size, u32 kind} and its
// payload padded to 8 bytes, always contiguous: a producer that would cross the end writes a `wrap`
// record there and starts again at offset 0.
//
// Producers serialize on `put_lock`, consumers on `get_lock` (lock_word: a futex mutex that records
// its holder, so a holder killed by SIGKILL is detected and its lock taken over). Between one
// producer and one consumer the ring is a single-producer single-consumer ring: the producer
// publishes with a release store of `tail`, the consumer with a release store of `head`, and each
// only reads the other's position. Locks are held for the copy only, never while waiting: a party
// that finds the ring full (or empty) releases its lock and sleeps on a wake word (`space_seq`,
// `data_seq`) after a short spin. The wake words carry a "sleeper" bit: the other side enters the
// kernel only when that bit is set (so a put costs no syscall while the consumer keeps up), and a
// sleeper killed while asleep costs at most one needless wake instead of leaking a waiter count.
//
// Commit and death. Each side commits with a redo log: it writes the new {position, total} into
// its log, marks the log valid, applies both, and clears the log. Whoever takes the lock over from
// a dead holder re-applies a valid log, so a party killed between the two stores never leaves
// `qsize()` (put_total - get_total) off by one; a producer killed before marking its log loses its
// item only (its bytes past `tail` are never seen). A consumer commits only after it has decoded
// the item: one killed while reading leaves the item to the next consumer (delivered once more
// rather than lost).
//
// Messages larger than half the ring and messages carrying descriptors (handles such as Lock or Connection) do not go
// through the ring: the producer writes the payload into a memfd of its own and sends that, with the
// message's descriptors, as one datagram on an AF_UNIX SOCK_SEQPACKET socketpair every handle holds;
// the ring carries a `side` record with the datagram's id. Both steps happen under put_lock, so the
// datagrams are in ring order. Ids make the pairing robust: a consumer drops datagrams older than
// its record (left by a producer killed between sending and committing), and a record whose
// datagram is gone (taken by a consumer killed before committing) is skipped and counted in
// `lost`, and as done for join(). The socket keeps undelivered messages alive when their producer
// exits; nothing is ever named in /dev/shm.
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../serialize/core.hpp"
#include "futex.hpp"
#include "posix.hpp"
#include "shm.hpp"
#include "sync_core.hpp"

namespace multiprocessing::detail {

/// Bytes of ring per queue (pages are only touched as the ring fills).
inline constexpr std::size_t ring_capacity = std::size_t{4} << 20;
/// Larger payloads go through a memfd of their own (see above). Half the ring: a message up to
/// 2 MiB is copied twice in memory that stays mapped, and two are in flight at once.
inline constexpr std::size_t ring_inline_limit = ring_capacity / 2;
/// How long a party spins on the ring before sleeping.
inline constexpr std::chrono::microseconds ring_spin{20};
/// How long a non-blocking put/get may wait for the other producers/consumers' lock (held only
/// for a copy) before giving up with Full/Empty.
inline constexpr std::chrono::seconds ring_nowait_lock{1};

inline constexpr std::uint64_t ring_magic = 0x31676e69722d706dULL;  // "mp-ring1"

enum class ring_kind : std::uint32_t { item = 1, side = 2, wrap = 3 };

struct ring_record {
  std::uint32_t size;
  ring_kind kind;
};
static_assert(sizeof(ring_record) == 8);

/// What a `side` record holds: which datagram carries the payload, and its size.
struct ring_side_ref {
  std::uint64_t id;
  std::uint64_t size;
};

/// A side's redo log (see the top of this file).
struct ring_log {
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::uint64_t> total{0};
  std::atomic<std::uint32_t> valid{0};
};

/// One side of the ring: its lock, its position, its item count and its log.
struct alignas(64) ring_side {
  lock_word lock;
  std::atomic<std::uint64_t> position{0};
  std::atomic<std::uint64_t> total{0};
  ring_log log;
  // The other side's position and total as last read by this side's lock holder: re-read only when
  // they do not suffice, so that the two sides do not pull each other's cache line on every item.
  // Read and written under `lock` only (the lock's acquire/release carry what they guarantee).
  std::atomic<std::uint64_t> peer_position{0};
  std::atomic<std::uint64_t> peer_total{0};
};

/// A futex word others sleep on; bit 31 says that someone may be asleep.
struct alignas(64) ring_wake {
  static constexpr std::uint32_t sleeper_bit = 1u << 31;
  std::atomic<std::uint32_t> seq{0};
};

struct ring_state {
  std::uint64_t magic = ring_magic;
  std::uint64_t fingerprint;
  std::uint64_t capacity = ring_capacity;
  std::int64_t maxsize;
  std::atomic<std::uint64_t> next_side_id{0};
  std::atomic<std::uint64_t> lost{0};

  ring_side put;  // producers: tail, put_total
  ring_side get;  // consumers: head, get_total
  ring_wake data;   // consumers sleep here for items
  ring_wake space;  // producers sleep here for room
  ring_wake done;   // join() sleeps here for task_done()
  alignas(64) std::atomic<std::uint64_t> done_total{0};

  ring_state(std::uint64_t fp, std::int64_t max) noexcept : fingerprint(fp), maxsize(max) {}
};
static_assert(sizeof(ring_state) % 64 == 0, "the ring starts on a cache line");

/// The untyped channel: one handle's view of a ring (shared with other handles by copy).
class ring_channel {
 public:
  ring_channel() = default;

  /// A new empty ring for messages of fingerprint `fp`; `maxsize` <= 0: no item limit.
  [[nodiscard]] static ring_channel create(std::uint64_t fp, std::int64_t maxsize, const std::string& what);

  /// Appends one message (`payload`, with `fds` to send beside it). Waits for room when `block`,
  /// until `until`. Returns false when there was no room in time (Full).
  bool put(std::span<const std::byte> payload, std::span<const int> fds, bool block,
           const mono_deadline& until);

  /// Removes the next message and passes it to `consume(bytes, fds)` (the bytes are only valid
  /// during the call). Waits for one when `block`, until `until`. Returns false when none came in
  /// time (Empty). An exception from `consume` propagates; the message is consumed all the same.
  template <class Consume>
  bool get(Consume&& consume, bool block, const mono_deadline& until);

  [[nodiscard]] std::uint64_t qsize() const noexcept {
    const std::uint64_t got = state_->get.total.load(std::memory_order_acquire);
    const std::uint64_t put = state_->put.total.load(std::memory_order_acquire);
    return put > got ? put - got : 0;
  }
  [[nodiscard]] std::int64_t maxsize() const noexcept { return state_->maxsize; }
  /// Items lost with a consumer killed while taking them (side messages only).
  [[nodiscard]] std::uint64_t lost() const noexcept {
    return state_->lost.load(std::memory_order_relaxed);
  }

  /// Marks one item processed (JoinableQueue). False when every item put is already done.
  bool task_done() noexcept;
  /// Waits until every item put has been marked done. False when `until` passed first.
  bool join(const mono_deadline& until);

  void save(serialize::Writer& out) const;
  /// @throws TypeError when the ring carries messages of another fingerprint.
  [[nodiscard]] static ring_channel load(serialize::Reader& in, std::uint64_t fp, const std::string& what);

 private:
  struct sockets {
    unique_fd send;  // producers' end of the side channel
    unique_fd recv;  // consumers' end
  };

  [[nodiscard]] std::byte* ring() const noexcept { return state_.tail(); }
  [[nodiscard]] std::uint64_t mask() const noexcept { return state_->capacity - 1; }

  static void commit(ring_side& side, std::uint64_t position, std::uint64_t total) noexcept;
  static void repair(ring_side& side) noexcept;
  /// Takes `side`'s lock (repairing after a dead holder). False when `until` passed first.
  static bool lock(ring_side& side, bool block, const mono_deadline& until);
  /// If `side`'s lock is held by a dead process, takes it over, repairs and releases it.
  static void rescue(ring_side& side);
  static void notify(ring_wake& wake) noexcept;

  /// Holds a side's lock taken by lock(); released by release() or at scope exit.
  class side_guard {
   public:
    explicit side_guard(ring_side& side) noexcept : side_(&side) {}
    side_guard(const side_guard&) = delete;
    side_guard& operator=(const side_guard&) = delete;
    ~side_guard() { release(); }
    void release() noexcept {
      if (side_ != nullptr) (void)side_->lock.release<process_backend>();
      side_ = nullptr;
    }

   private:
    ring_side* side_;
  };

  /// The loop of put() and get(): takes `mine`'s lock and calls `attempt(guard)`, which returns
  /// true when it has done its work (releasing the guard before it wakes anyone). Otherwise, when
  /// `block`, waits on `wake` until `ready()`, rescuing `peer`'s lock from a dead holder on each
  /// quiet slice, and tries again. False when there was nothing to do in time.
  template <class Attempt, class Ready>
  bool until_done(ring_side& mine, ring_side& peer, ring_wake& wake, bool block,
                  const mono_deadline& until, Ready ready, Attempt attempt);
  /// Spins briefly, then sleeps on `wake` until `ready()`; on each slice without progress calls
  /// `on_slice()`. False when `until` passed first.
  template <class Ready, class OnSlice>
  static bool await(ring_wake& wake, const mono_deadline& until, Ready ready, OnSlice on_slice);

  /// Whether a record of `record` bytes fits at `tail`, with the consumers at `head` having taken
  /// `got` items.
  bool room_for(std::uint64_t tail, std::uint64_t record, std::uint64_t head,
                std::uint64_t got) const noexcept;
  /// Receives side datagram `id` into `fds` (fds[0] is the payload's memfd). False when it is gone.
  bool take_datagram(std::uint64_t id, std::vector<unique_fd>& fds) const;

  shared_object<ring_state> state_;
  std::shared_ptr<sockets> sockets_;
  std::string what_;
};

// --- implementation ------------------------------------------------------------------------------

inline ring_channel ring_channel::create(std::uint64_t fp, std::int64_t maxsize, const std::string& what) {
  static_assert((ring_capacity & (ring_capacity - 1)) == 0, "the ring capacity is a power of two");
  ring_channel c;
  c.what_ = what;
  c.state_ = shared_object<ring_state>::create(what, ring_capacity, fp, maxsize);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
    throw_errno("socketpair " + what);
  }
  c.sockets_ = std::make_shared<sockets>(sockets{unique_fd(sv[0]), unique_fd(sv[1])});
  return c;
}

inline void ring_channel::save(serialize::Writer& out) const {
  state_.save(out);
  out.save(out.attach_fd(sockets_->send.get()));
  out.save(out.attach_fd(sockets_->recv.get()));
}

inline ring_channel ring_channel::load(serialize::Reader& in, std::uint64_t fp, const std::string& what) {
  ring_channel c;
  c.what_ = what;
  c.state_ = shared_object<ring_state>::load(in, what);
  const ring_state& s = *c.state_;
  if (s.magic != ring_magic || s.capacity != ring_capacity ||
      c.state_.tail_size() < ring_capacity) {
    throw SerializationError("the descriptor passed for " + what + " is not a queue");
  }
  if (s.fingerprint != fp) {
    throw TypeError("cannot load " + what + ": the queue carries messages of another type");
  }
  auto dup = [&](const char* end) {
    unique_fd fd(::fcntl(in.fd(in.load<std::uint32_t>()), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw_errno(std::string("dup ") + end + " of " + what);
    return fd;
  };
  unique_fd send = dup("the side channel's sending end");
  unique_fd recv = dup("the side channel's receiving end");
  c.sockets_ = std::make_shared<sockets>(sockets{std::move(send), std::move(recv)});
  return c;
}

inline void ring_channel::commit(ring_side& side, std::uint64_t position, std::uint64_t total) noexcept {
  side.log.position.store(position, std::memory_order_relaxed);
  side.log.total.store(total, std::memory_order_relaxed);
  side.log.valid.store(1, std::memory_order_release);
  // The count first: qsize() may briefly count an item not yet visible, never a consumed one twice.
  side.total.store(total, std::memory_order_release);
  side.position.store(position, std::memory_order_release);
  side.log.valid.store(0, std::memory_order_release);
}

inline void ring_channel::repair(ring_side& side) noexcept {
  if (side.log.valid.load(std::memory_order_acquire) == 0) return;
  side.total.store(side.log.total.load(std::memory_order_relaxed), std::memory_order_release);
  side.position.store(side.log.position.load(std::memory_order_relaxed), std::memory_order_release);
  side.log.valid.store(0, std::memory_order_release);
}

inline bool ring_channel::lock(ring_side& side, bool block, const mono_deadline& until) {
  const mono_deadline bound =
      block ? until : mono_deadline(mono_deadline::clock::now() + ring_nowait_lock);
  if (!side.lock.acquire<process_backend>(true, bound)) return false;
  if (side.lock.recovered.load(std::memory_order_relaxed) != 0) repair(side);
  return true;
}

inline void ring_channel::rescue(ring_side& side) {
  const std::uint32_t word = side.lock.word.load(std::memory_order_relaxed);
  if (word == 0) return;
  const auto status = check_holder(word & lock_word::pid_mask,
                                   side.lock.stamp.load(std::memory_order_relaxed));
  if (status == holder_status::alive) return;
  // acquire() confirms the death itself (within a recovery slice) before taking the lock over.
  if (lock(side, true, mono_deadline(mono_deadline::clock::now() + 3 * recovery_slice))) {
    (void)side.lock.release<process_backend>();
  }
}

inline void ring_channel::notify(ring_wake& wake) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the sleeper's bit-setting RMW
  std::uint32_t v = wake.seq.load(std::memory_order_relaxed);
  if ((v & ring_wake::sleeper_bit) == 0) return;
  while (!wake.seq.compare_exchange_weak(v, (v + 1) & ~ring_wake::sleeper_bit,
                                         std::memory_order_release, std::memory_order_relaxed)) {
    if ((v & ring_wake::sleeper_bit) == 0) return;  // someone else woke them
  }
  (void)futex_wake(wake.seq, INT_MAX, true);
}

template <class Ready, class OnSlice>
bool ring_channel::await(ring_wake& wake, const mono_deadline& until, Ready ready, OnSlice on_slice) {
  const auto spin_end = mono_deadline::clock::now() + ring_spin;
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if ((i & 63u) == 0 && mono_deadline::clock::now() >= spin_end) break;
    cpu_relax();
  }
  for (;;) {
    std::uint32_t v = wake.seq.load(std::memory_order_relaxed);
    if ((v & ring_wake::sleeper_bit) == 0) {
      if (!wake.seq.compare_exchange_weak(v, v | ring_wake::sleeper_bit, std::memory_order_seq_cst,
                                          std::memory_order_relaxed)) {
        continue;
      }
      v |= ring_wake::sleeper_bit;
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready()) return true;
    const auto r = futex_wait(wake.seq, v, until.capped(recovery_slice), true);
    if (ready()) return true;
    if (until.expired()) return false;
    if (r == futex_result::timed_out) on_slice();
  }
}

inline bool ring_channel::room_for(std::uint64_t tail, std::uint64_t record, std::uint64_t head,
                                   std::uint64_t got) const noexcept {
  const ring_state& s = *state_;
  const std::uint64_t offset = tail & mask();
  const std::uint64_t to_end = s.capacity - offset;
  const std::uint64_t need = record <= to_end ? record : to_end + record;
  if ((tail - head) + need > s.capacity) return false;
  if (s.maxsize > 0) {
    const std::uint64_t items = s.put.total.load(std::memory_order_relaxed) - got;
    if (items >= static_cast<std::uint64_t>(s.maxsize)) return false;
  }
  return true;
}

inline bool ring_channel::put(std::span<const std::byte> payload, std::span<const int> fds,
                              bool block, const mono_deadline& until) {
  ring_state& s = *state_;
  const bool side = payload.size() > ring_inline_limit || !fds.empty();
  if (fds.size() + 1 > max_passed_fds) {
    throw ValueError("cannot put into " + what_ + ": the message carries " +
                     std::to_string(fds.size()) + " descriptors, more than " +
                     std::to_string(max_passed_fds - 1));
  }
  // A side message's payload is written to its memfd before any lock is taken.
  unique_fd memfd;
  if (side) {
    memfd = unique_fd(::memfd_create("mp-queue-message", MFD_CLOEXEC));
    if (!memfd) throw_errno("memfd_create for a message to " + what_);
    write_all(memfd.get(), payload.data(), payload.size(), "queue message");
  }
  const std::uint64_t body = side ? sizeof(ring_side_ref) : payload.size();
  const std::uint64_t record = sizeof(ring_record) + ((body + 7) & ~std::uint64_t{7});

  auto ready = [&] {
    return room_for(s.put.position.load(std::memory_order_relaxed), record,
                    s.get.position.load(std::memory_order_acquire),
                    s.get.total.load(std::memory_order_acquire));
  };
  // Room appears when a consumer commits; a consumer that died holding its lock with a valid log
  // is repaired while waiting, so that room it freed is not lost.
  return until_done(s.put, s.get, s.space, block, until, ready, [&](side_guard& guard) {
    std::uint64_t tail = s.put.position.load(std::memory_order_relaxed);
    if (!room_for(tail, record, s.put.peer_position.load(std::memory_order_relaxed),
                  s.put.peer_total.load(std::memory_order_relaxed))) {
      const std::uint64_t got = s.get.total.load(std::memory_order_acquire);
      const std::uint64_t head = s.get.position.load(std::memory_order_acquire);
      s.put.peer_position.store(head, std::memory_order_relaxed);
      s.put.peer_total.store(got, std::memory_order_relaxed);
      if (!room_for(tail, record, head, got)) return false;
    }
    // Where the record goes: contiguous, after a wrap record when it would cross the end.
    auto place = [&](ring_record head) {
      std::byte* data = ring();
      std::uint64_t offset = tail & mask();
      if (record > s.capacity - offset) {
        const ring_record wrap{0, ring_kind::wrap};
        std::memcpy(data + offset, &wrap, sizeof wrap);
        tail += s.capacity - offset;
        offset = 0;
      }
      std::memcpy(data + offset, &head, sizeof head);
      return data + offset + sizeof head;
    };
    if (side) {
      // The datagram goes first, then the record that names it (see the top of this file).
      const std::uint64_t id = s.next_side_id.fetch_add(1, std::memory_order_relaxed) + 1;
      std::vector<int> all{memfd.get()};
      all.insert(all.end(), fds.begin(), fds.end());
      if (sendmsg_with_fds(sockets_->send.get(), std::as_bytes(std::span(&id, 1)), all,
                           MSG_DONTWAIT) == -1) {
        // A full socket, or too many descriptors in flight for this user: wait like a full ring.
        if (errno != EAGAIN && errno != ETOOMANYREFS) throw_errno("sendmsg a message to " + what_);
        return false;
      }
      const ring_side_ref ref{id, payload.size()};
      std::memcpy(place({static_cast<std::uint32_t>(sizeof ref), ring_kind::side}), &ref, sizeof ref);
    } else {
      std::byte* body_at = place({static_cast<std::uint32_t>(payload.size()), ring_kind::item});
      if (!payload.empty()) std::memcpy(body_at, payload.data(), payload.size());
    }
    commit(s.put, tail + record, s.put.total.load(std::memory_order_relaxed) + 1);
    guard.release();
    notify(s.data);
    return true;
  });
}

inline bool ring_channel::take_datagram(std::uint64_t id, std::vector<unique_fd>& fds) const {
  const int sock = sockets_->recv.get();
  for (;;) {
    std::uint64_t seen = 0;
    const ssize_t peeked = retry_eintr(
        [&] { return ::recv(sock, &seen, sizeof seen, MSG_PEEK | MSG_DONTWAIT); });
    if (peeked == -1) {
      if (errno == EAGAIN) return false;
      throw_errno("recv a message of " + what_);
    }
    if (peeked == sizeof seen && seen > id) return false;
    std::uint64_t got = 0;
    std::vector<unique_fd> received;
    const ssize_t n = retry_eintr([&] {
      return recvmsg_with_fds(sock, std::as_writable_bytes(std::span(&got, 1)), received,
                              MSG_DONTWAIT, "a queue message");
    });
    if (n == -1) throw_errno("recvmsg a message of " + what_);
    if (n == sizeof got && got == id && !received.empty()) {
      fds = std::move(received);
      return true;
    }
    // Older than ours: left by a producer killed before it committed; dropped (fds closed).
  }
}

template <class Consume>
bool ring_channel::get(Consume&& consume, bool block, const mono_deadline& until) {
  ring_state& s = *state_;
  auto ready = [&] {
    return s.put.position.load(std::memory_order_acquire) != s.get.position.load(std::memory_order_relaxed);
  };
  // A producer that died holding its lock with a valid log is repaired while waiting, so that its
  // committed item is delivered.
  return until_done(s.get, s.put, s.data, block, until, ready, [&](side_guard& guard) {
    std::uint64_t head = s.get.position.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t tail = s.get.peer_position.load(std::memory_order_relaxed);
      if (head >= tail) {
        tail = s.put.position.load(std::memory_order_acquire);
        s.get.peer_position.store(tail, std::memory_order_relaxed);
        if (head >= tail) return false;
      }
      std::byte* data = ring();
      const std::uint64_t offset = head & mask();
      ring_record rec{};
      std::memcpy(&rec, data + offset, sizeof rec);
      if (rec.kind == ring_kind::wrap) {
        head += s.capacity - offset;
        continue;
      }
      const std::uint64_t record = sizeof(ring_record) + ((std::uint64_t{rec.size} + 7) & ~std::uint64_t{7});
      const bool valid = (rec.kind == ring_kind::item || rec.kind == ring_kind::side) &&
                         record <= s.capacity - offset && head + record <= tail &&
                         (rec.kind != ring_kind::side || rec.size == sizeof(ring_side_ref));
      if (!valid) {
        // Only a stray write into the segment can do this: drop everything queued.
        commit(s.get, s.put.position.load(std::memory_order_acquire),
               s.put.total.load(std::memory_order_acquire));
        guard.release();
        notify(s.space);
        throw SerializationError(what_ + " is corrupt (a record at position " +
                                 std::to_string(head) + " is invalid); its items were dropped");
      }
      const std::uint64_t next_total = s.get.total.load(std::memory_order_relaxed) + 1;
      const std::byte* body = data + offset + sizeof rec;
      ring_side_ref ref{};
      std::vector<unique_fd> fds;
      if (rec.kind == ring_kind::side) {
        std::memcpy(&ref, body, sizeof ref);
        if (!take_datagram(ref.id, fds)) {
          // Taken by a consumer killed before it committed: lost, and done as far as join() goes.
          s.lost.fetch_add(1, std::memory_order_relaxed);
          commit(s.get, head + record, next_total);
          head += record;
          s.done_total.fetch_add(1, std::memory_order_acq_rel);
          notify(s.done);
          notify(s.space);
          continue;
        }
      }
      // The item is consumed even when decoding it throws.
      auto finish = [&] {
        commit(s.get, head + record, next_total);
        guard.release();
        notify(s.space);
      };
      struct mapping {
        void* at = MAP_FAILED;
        std::size_t size = 0;
        ~mapping() {
          if (at != MAP_FAILED) ::munmap(at, size);
        }
      } map;
      try {
        std::span<const std::byte> bytes(body, rec.size);
        std::vector<int> raw;
        if (rec.kind == ring_kind::side) {
          for (std::size_t i = 1; i < fds.size(); ++i) raw.push_back(fds[i].get());
          bytes = {};
          if (ref.size != 0) {
            map.at = ::mmap(nullptr, ref.size, PROT_READ, MAP_SHARED | MAP_POPULATE, fds[0].get(), 0);
            if (map.at == MAP_FAILED) throw_errno("mmap a message of " + what_);
            map.size = ref.size;
            bytes = std::span<const std::byte>(static_cast<const std::byte*>(map.at), ref.size);
          }
        }
        consume(bytes, std::span<const int>(raw));
      } catch (...) {
        finish();
        throw;
      }
      finish();
      return true;
    }
  });
}

template <class Attempt, class Ready>
bool ring_channel::until_done(ring_side& mine, ring_side& peer, ring_wake& wake, bool block,
                              const mono_deadline& until, Ready ready, Attempt attempt) {
  for (;;) {
    if (!lock(mine, block, until)) return false;
    {
      side_guard guard(mine);
      if (attempt(guard)) return true;
    }
    if (!block) return false;
    if (!await(wake, until, ready, [&] { rescue(peer); })) return false;
  }
}

inline bool ring_channel::task_done() noexcept {
  ring_state& s = *state_;
  std::uint64_t done = s.done_total.load(std::memory_order_relaxed);
  for (;;) {
    if (done >= s.put.total.load(std::memory_order_acquire)) return false;
    if (s.done_total.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      break;
    }
  }
  notify(s.done);
  return true;
}

inline bool ring_channel::join(const mono_deadline& until) {
  ring_state& s = *state_;
  auto ready = [&] {
    return s.done_total.load(std::memory_order_acquire) >= s.put.total.load(std::memory_order_acquire);
  };
  return await(s.done, until, ready, [&] { rescue(s.put); });
}

}  // namespace multiprocessing::detail

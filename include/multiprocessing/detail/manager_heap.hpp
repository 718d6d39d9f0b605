// SPDX-License-Identifier: MIT
// multiprocessing/detail/manager_heap.hpp
//
// The store behind a Manager: one memfd segment that every process holding a proxy maps, with a
// heap of blocks inside it, one robust lock (lock_word) that every operation holds, and a redo log
// that makes every operation crash-atomic. Python's Manager runs a server process and sends each
// operation over a socket (about 40 us a round trip); here a client applies the operation itself
// under the lock, in well under a microsecond.
//
// Crash atomicity. Any process may be SIGKILLed in the middle of an operation, holding the lock.
// The next acquirer takes the lock over (lock_word's holder-death recovery) and must find the
// store consistent. So an operation (a `txn`) never changes a word that is reachable from the
// committed state in place:
//   * words in blocks allocated by this txn, and words beyond a container's used length, are not
//     reachable yet: they are written directly;
//   * every other word (a container's length, a table pointer, a free-list head, the heap top) is
//     staged in the redo log, in the segment;
//   * commit sets log_committed, applies the log, clears log_committed. A txn that dies before the
//     commit flag left nothing reachable changed; one that dies after it is finished by the next
//     acquirer, who replays the log (its stores are absolute, so replaying twice is harmless).
// Blocks freed by a txn are pushed on their free lists only at commit (after every allocation of
// that txn), so a txn never reuses memory that the committed state still reaches. A free block's
// "next" word is not used while the block is live, so chaining freed blocks is a direct write.
//
// Blocks: [class word][next-free word][payload...]. Size classes grow by quarter powers of two
// from 32 bytes (32, 40, 48, 56, 64, 80, ...), so at most 25% is lost to rounding. The segment is
// sized to the heap's capacity up front (sparse: untouched pages cost nothing) and its pages are
// reserved with fallocate as the heap grows, so running out of memory is an exception (OSError),
// not a SIGBUS.
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>  // NOLINT(modernize-deprecated-headers): clock_gettime is POSIX

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "../errors.hpp"
#include "../serialize/core.hpp"
#include "shm.hpp"
#include "sync_core.hpp"

namespace multiprocessing::detail::mgr {

/// A word offset inside the segment; 0 is "none" (the header lives there, no block does).
using offset = std::uint64_t;

inline constexpr std::uint64_t heap_magic = 0x6761'6e61'6d2d'706dULL;  // "mp-manag"
inline constexpr std::size_t log_capacity = 256;
inline constexpr std::size_t size_class_count = 160;  // up to 32 B * 2^40
inline constexpr std::uint64_t block_header = 16;     // class word + next-free word
inline constexpr std::uint64_t min_block = 32;
inline constexpr std::uint64_t grow_step = std::uint64_t{1} << 20;  // fallocate at least 1 MiB

/// The bytes a block of class `c` spans, header included.
[[nodiscard]] constexpr std::uint64_t class_bytes(std::size_t c) noexcept {
  const std::uint64_t base = min_block << (c / 4);
  return base + (base / 4) * (c % 4);
}

/// The smallest class whose blocks span at least `bytes`.
[[nodiscard]] constexpr std::size_t class_for(std::uint64_t bytes) noexcept {
  if (bytes <= min_block) return 0;
  // base < bytes <= 2 * base with base = 32 * 2^e
  const auto e = static_cast<std::size_t>(std::bit_width((bytes - 1) / min_block) - 1);
  const std::uint64_t base = min_block << e;
  const std::uint64_t quarter = base / 4;
  const std::uint64_t m = (bytes - base + quarter - 1) / quarter;  // 1..4
  return m == 4 ? (e + 1) * 4 : e * 4 + static_cast<std::size_t>(m);
}

struct redo_entry {
  offset at;
  std::uint64_t value;
};

/// Words kept in the header, reached by offset like every other transactional word.
enum meta_word : std::size_t {
  meta_top,         // first byte never handed out
  meta_registry,    // the registry dict of named objects (0 until the first name)
  meta_recoveries,  // operations finished or rolled back after their process died
  meta_free_heads,  // size_class_count free-list heads follow
  meta_words = meta_free_heads + size_class_count,
};

/// The start of the segment.
struct heap_header {
  std::uint64_t magic = heap_magic;
  std::uint64_t capacity = 0;  // bytes in the segment
  std::uint32_t owner_pid = 0;
  std::uint64_t owner_stamp = 0;  // self_stamp() of the Manager's process
  std::atomic<std::uint32_t> shut_down{0};
  std::atomic<std::uint64_t> reserved{0};  // bytes fallocated from the start
  lock_word lock;
  std::atomic<std::uint32_t> log_committed{0};
  std::uint32_t log_size = 0;
  std::array<redo_entry, log_capacity> log{};
  alignas(64) std::array<std::uint64_t, meta_words> meta{};
};

static_assert(std::is_trivially_destructible_v<heap_header>);

inline constexpr offset meta_offset = offsetof(heap_header, meta);
[[nodiscard]] constexpr offset meta_at(std::size_t word) noexcept { return meta_offset + 8 * word; }
inline constexpr offset heap_start = (sizeof(heap_header) + 63) / 64 * 64;

class heap;

/// The stores this process maps (the ones it created too), by (device, inode) of their memfd, so
/// that one store has one heap object per process; expired entries are dropped as new ones come. A
/// fork child inherits the mappings and so the table (its lock is reset).
class mapped_stores {
 public:
  using key_type = std::pair<std::uint64_t, std::uint64_t>;

  static mapped_stores& instance() {
    static mapped_stores table;
    return table;
  }

  std::shared_ptr<heap> find(const key_type& key) {
    guard g(busy_);
    const auto it = stores_.find(key);
    return it == stores_.end() ? nullptr : it->second.lock();
  }

  /// Records `h` unless another thread recorded the same store first; returns the one to use.
  std::shared_ptr<heap> add(const key_type& key, std::shared_ptr<heap> h) {
    guard g(busy_);
    std::erase_if(stores_, [](const auto& kv) { return kv.second.expired(); });
    auto& slot = stores_[key];
    if (auto existing = slot.lock()) return existing;
    slot = h;
    return h;
  }

 private:
  mapped_stores() {
    (void)::pthread_atfork(nullptr, nullptr, [] { instance().busy_.store(false); });
  }

  /// A spin lock held for a map lookup; after fork the child's copy is free again.
  struct guard {
    explicit guard(std::atomic<bool>& b) : busy(b) {
      while (busy.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { busy.store(false, std::memory_order_release); }
    std::atomic<bool>& busy;
  };

  std::atomic<bool> busy_{false};
  std::map<key_type, std::weak_ptr<heap>> stores_;
};

/// A process's view of a heap: the mapping and where it starts. Shared by the proxies of that
/// process (copying a proxy shares it).
class heap {
 public:
  /// A new heap of `capacity` bytes owned by the calling process.
  [[nodiscard]] static std::shared_ptr<heap> create(std::uint64_t capacity) {
    if (capacity < heap_start + grow_step) {
      throw ValueError("Manager capacity " + std::to_string(capacity) + " is too small: at least " +
                       std::to_string(heap_start + grow_step) + " bytes");
    }
    auto segment = shm_segment::create(capacity, "manager");
    auto h = std::shared_ptr<heap>(new heap(std::move(segment)));
    auto* hdr = ::new (h->base_) heap_header{};
    hdr->capacity = capacity;
    hdr->owner_pid = self_pid();
    hdr->owner_stamp = self_stamp();
    hdr->meta[meta_top] = heap_start;
    h->reserve(heap_start + grow_step);
    return mapped_stores::instance().add(store_key(h->segment_->fd()), h);
  }

  /// Maps the heap behind `fd` (another process's; the caller keeps its fd).
  /// @throws SerializationError when `fd` is not a Manager's segment.
  /// A store this process has mapped already is shared, not mapped again: a process that loads
  /// thousands of proxies (a vector of them, a Pool task each) maps each store once.
  [[nodiscard]] static std::shared_ptr<heap> attach(int fd) {
    const auto key = store_key(fd);
    mapped_stores& known = mapped_stores::instance();
    if (auto h = known.find(key)) return h;
    auto segment = shm_segment::attach(fd, heap_start, "Manager");
    auto h = std::shared_ptr<heap>(new heap(std::move(segment)));
    if (h->header().magic != heap_magic || h->header().capacity != h->segment_->size()) {
      throw SerializationError("descriptor " + std::to_string(fd) + " is not a Manager's store");
    }
    return known.add(key, h);
  }

  heap(const heap&) = delete;
  heap& operator=(const heap&) = delete;
  ~heap() = default;

  [[nodiscard]] heap_header& header() const noexcept {
    return *std::launder(reinterpret_cast<heap_header*>(base_));
  }
  [[nodiscard]] const shm_segment& segment() const noexcept { return *segment_; }
  [[nodiscard]] std::byte* at(offset o) const noexcept { return base_ + o; }
  [[nodiscard]] std::uint64_t capacity() const noexcept { return segment_->size(); }

  [[nodiscard]] std::uint64_t load(offset o) const noexcept {
    std::uint64_t v = 0;
    std::memcpy(&v, base_ + o, sizeof v);
    return v;
  }
  void store(offset o, std::uint64_t v) const noexcept { std::memcpy(base_ + o, &v, sizeof v); }

  /// Throws when the Manager has shut down or its process died (checked at most every 100 ms).
  void check_open(const char* what) const {
    const heap_header& hdr = header();
    if (hdr.shut_down.load(std::memory_order_acquire) != 0) {
      throw ProcessError(std::string(what) + ": the Manager has shut down");
    }
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    const std::int64_t ms = std::int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1'000'000;
    if (ms - last_owner_check_ms_.load(std::memory_order_relaxed) < 100) return;
    last_owner_check_ms_.store(ms, std::memory_order_relaxed);
    if (hdr.owner_pid != self_pid() &&
        check_holder(hdr.owner_pid, hdr.owner_stamp) != holder_status::alive) {
      throw ProcessError(std::string(what) + ": the Manager's process " +
                         std::to_string(hdr.owner_pid) + " has died");
    }
  }

  /// Makes sure the pages up to `end` are reserved (fallocate), so that touching them cannot
  /// SIGBUS. Called under the lock.
  void reserve(std::uint64_t end) const {
    heap_header& hdr = header();
    const std::uint64_t have = hdr.reserved.load(std::memory_order_relaxed);
    if (end <= have) return;
    if (end > capacity()) {
      throw OSError("Manager store is full: " + std::to_string(end) + " bytes needed, capacity " +
                        std::to_string(capacity()) + " (raise ManagerOptions::capacity)",
                    ENOSPC);
    }
    // Grow by a quarter (at least grow_step) so that fallocate is rare; settle for `end` when
    // that much is not available.
    const auto grow = [this, have](std::uint64_t to) {
      return ::fallocate(segment_->fd(), 0, static_cast<off_t>(have),
                         static_cast<off_t>(to - have)) == 0;
    };
    std::uint64_t target =
        std::min(capacity(), std::max(end, have + std::max(grow_step, have / 4)));
    if (!grow(target)) {
      target = end;
      if (!grow(target)) {
        const int err = errno;
        throw OSError(
            "Manager store cannot grow to " + std::to_string(end) + " bytes: " + std::strerror(err),
            err);
      }
    }
    std::uint64_t cur = have;
    while (cur < target &&
           !hdr.reserved.compare_exchange_weak(cur, target, std::memory_order_relaxed)) {
    }
  }

  /// Writes a reference for another process: the memfd travels beside the bytes.
  void save(serialize::Writer& out) const { out.save(out.attach_fd(segment_->fd())); }
  [[nodiscard]] static std::shared_ptr<heap> load_from(serialize::Reader& in) {
    return attach(in.fd(in.load<std::uint32_t>()));
  }

 private:
  explicit heap(std::shared_ptr<shm_segment> segment)
      : segment_(std::move(segment)), base_(static_cast<std::byte*>(segment_->data())) {}

  /// Which store `fd` is: its memfd's device and inode.
  [[nodiscard]] static mapped_stores::key_type store_key(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) == -1) throw_errno("fstat Manager store");
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
  }

  std::shared_ptr<shm_segment> segment_;
  std::byte* base_;
  mutable std::atomic<std::int64_t> last_owner_check_ms_{0};
};

/// One operation on a heap: holds its lock from construction to destruction; commit() makes the
/// staged writes take effect atomically. Destroyed without commit, nothing reachable changed.
class txn {
 public:
  explicit txn(const heap& h) : h_(h), hdr_(h.header()) {
    hdr_.lock.acquire<process_backend>(true, mono_deadline{});
    if (hdr_.lock.recovered.load(std::memory_order_relaxed) != 0 ||
        hdr_.log_committed.load(std::memory_order_acquire) != 0 || hdr_.log_size != 0) {
      recover();
    }
  }
  txn(const txn&) = delete;
  txn& operator=(const txn&) = delete;
  ~txn() {
    if (!committed_) hdr_.log_size = 0;  // forget what was staged
    hdr_.lock.release<process_backend>();
  }

  [[nodiscard]] const heap& store() const noexcept { return h_; }

  /// A word as this txn sees it: staged value if any, else memory.
  [[nodiscard]] std::uint64_t read(offset o) const noexcept {
    for (std::uint32_t i = hdr_.log_size; i-- > 0;) {
      if (hdr_.log[i].at == o) return hdr_.log[i].value;
    }
    return h_.load(o);
  }

  /// Stages a write of a reachable word.
  void write(offset o, std::uint64_t v) {
    for (std::uint32_t i = hdr_.log_size; i-- > 0;) {
      if (hdr_.log[i].at == o) {
        hdr_.log[i].value = v;
        return;
      }
    }
    if (hdr_.log_size == log_capacity) {
      throw std::logic_error("multiprocessing: a Manager operation staged more than " +
                             std::to_string(log_capacity) + " words");
    }
    hdr_.log[hdr_.log_size] = {o, v};
    ++hdr_.log_size;
  }

  /// Writes a word that the committed state does not reach (a fresh block, beyond a length).
  void write_fresh(offset o, std::uint64_t v) const noexcept { h_.store(o, v); }

  /// A block with room for `payload` bytes; returns the payload's offset. Its contents are
  /// unspecified and unreachable until the txn links it somewhere.
  [[nodiscard]] offset alloc(std::uint64_t payload) {
    if (payload > h_.capacity()) {
      throw OSError("Manager store is full: a value of " + std::to_string(payload) +
                        " bytes is larger than its capacity of " + std::to_string(h_.capacity()),
                    ENOSPC);
    }
    const std::size_t c = class_for(payload + block_header);
    const offset head_at = meta_at(meta_free_heads + c);
    if (const offset b = read(head_at); b != 0) {
      write(head_at, h_.load(b + 8));
      return b + block_header;
    }
    const offset b = read(meta_at(meta_top));
    const std::uint64_t end = b + class_bytes(c);
    h_.reserve(end);
    write(meta_at(meta_top), end);
    h_.store(b, c);
    return b + block_header;
  }

  /// A block holding `bytes` behind a length word; returns its payload offset.
  [[nodiscard]] offset alloc_bytes(std::span<const std::byte> bytes) {
    const offset p = alloc(8 + bytes.size());
    h_.store(p, bytes.size());
    if (!bytes.empty()) std::memcpy(h_.at(p + 8), bytes.data(), bytes.size());
    return p;
  }

  /// Frees the block whose payload is at `p`, at commit. 0 is ignored.
  void free(offset p) {
    if (p == 0) return;
    if (frees_n_ < frees_.size()) {
      frees_[frees_n_++] = p;
    } else {
      more_frees_.push_back(p);
    }
  }

  void commit() {
    const auto push = [this](offset p) {
      const offset b = p - block_header;
      const offset head_at = meta_at(meta_free_heads + h_.load(b));
      h_.store(b + 8, read(head_at));  // not read while the block is live
      write(head_at, b);
    };
    for (std::size_t i = 0; i < frees_n_; ++i) push(frees_[i]);
    for (offset p : more_frees_) push(p);
    hdr_.log_committed.store(1, std::memory_order_release);
    apply();
    committed_ = true;
  }

 private:
  void apply() noexcept {
    for (std::uint32_t i = 0; i < hdr_.log_size; ++i) h_.store(hdr_.log[i].at, hdr_.log[i].value);
    hdr_.log_size = 0;
    hdr_.log_committed.store(0, std::memory_order_release);
  }

  /// The previous holder died: finish its committed operation, or forget its staged one.
  void recover() noexcept {
    if (hdr_.log_committed.load(std::memory_order_acquire) != 0) {
      apply();
    } else {
      hdr_.log_size = 0;
    }
    h_.store(meta_at(meta_recoveries), h_.load(meta_at(meta_recoveries)) + 1);
  }

  const heap& h_;
  heap_header& hdr_;
  bool committed_ = false;
  std::array<offset, 16> frees_{};
  std::size_t frees_n_ = 0;
  std::vector<offset> more_frees_;
};

/// The bytes of a block made by alloc_bytes.
[[nodiscard]] inline std::span<const std::byte> bytes_at(const heap& h, offset p) noexcept {
  return {h.at(p + 8), static_cast<std::size_t>(h.load(p))};
}

/// A fast 64-bit hash of a key's encoding (8 bytes at a time, then a final mix).
[[nodiscard]] inline std::uint64_t hash_bytes(std::span<const std::byte> bytes) noexcept {
  constexpr std::uint64_t k = 0x9e37'79b9'7f4a'7c15ULL;
  std::uint64_t h = 0x243f'6a88'85a3'08d3ULL ^ (bytes.size() * k);
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, bytes.data() + i, bytes.size() - i);
  h = (h ^ tail) * k;
  h ^= h >> 32;
  h *= 0xd6e8'feb8'6659'fd93ULL;
  h ^= h >> 32;
  return h;
}

}  // namespace multiprocessing::detail::mgr

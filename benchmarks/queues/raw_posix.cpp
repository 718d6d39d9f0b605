// SPDX-License-Identifier: MIT
// The floor: a single-producer single-consumer byte ring in a MAP_SHARED|MAP_ANONYMOUS mapping
// made before fork(). Each message is a u32 length and its bytes. A side that finds the ring
// full (empty) spins briefly, then announces that it sleeps and sleeps on the peer's position word
// (a futex); the peer issues FUTEX_WAKE only when it sees that announcement, so a busy stream
// makes no system call at all.
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "queues.hpp"

namespace {

constexpr std::uint32_t kCapacity = std::uint32_t{1} << 23;  // 8 MiB of ring
constexpr std::uint32_t kMask = kCapacity - 1;
constexpr int kSpins = 2000;

/// Positions count bytes modulo 2^32; each lives on its own cache line with the flag its owner's
/// peer reads, so that a steady stream bounces no line it does not have to.
struct Ring {
  alignas(64) std::atomic<std::uint32_t> head{0};  // bytes consumed: written by the consumer
  alignas(64) std::atomic<std::uint32_t> tail{0};  // bytes produced: written by the producer
  alignas(64) std::atomic<std::uint32_t> consumer_sleeps{0};
  alignas(64) std::atomic<std::uint32_t> producer_sleeps{0};
  alignas(64) std::byte data[kCapacity];
};

void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, value, nullptr, nullptr,
            0);
}

void futex_wake(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

/// Publishes `position` in `word` and wakes the peer if (and only if) it announced it sleeps.
/// The seq_cst fence pairs with the one in wait_moved (Dekker): either the peer sees the new
/// position before sleeping, or this side sees its announcement. The waker takes the announcement
/// down itself, so a peer slow to wake up costs one FUTEX_WAKE, not one per message meanwhile.
void publish(std::atomic<std::uint32_t>& word, std::uint32_t position,
             std::atomic<std::uint32_t>& peer_sleeps) {
  word.store(position, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (peer_sleeps.load(std::memory_order_relaxed) != 0 && peer_sleeps.exchange(0) != 0) {
    futex_wake(word);
  }
}

/// Waits until `word` (the peer's position) differs from `seen`; returns its new value.
std::uint32_t wait_moved(std::atomic<std::uint32_t>& word, std::uint32_t seen,
                         std::atomic<std::uint32_t>& my_sleeps) {
  for (int i = 0; i < kSpins; ++i) {
    const std::uint32_t now = word.load(std::memory_order_acquire);
    if (now != seen) return now;
    __builtin_ia32_pause();
  }
  for (;;) {
    my_sleeps.store(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint32_t now = word.load(std::memory_order_acquire);
    if (now != seen) {
      my_sleeps.store(0, std::memory_order_relaxed);
      return now;
    }
    futex_wait(word, seen);  // the waker cleared my_sleeps; a spurious return announces again
  }
}

class Producer {
 public:
  explicit Producer(Ring& r) : r_(r) {}
  void send(const void* bytes, std::uint32_t n) {
    write(&n, sizeof n);
    write(bytes, n);
    publish(r_.tail, tail_, r_.consumer_sleeps);
  }

 private:
  void write(const void* bytes, std::size_t n) {
    const auto* p = static_cast<const std::byte*>(bytes);
    while (n > 0) {
      if (tail_ - head_ == kCapacity) {
        publish(r_.tail, tail_, r_.consumer_sleeps);  // a message longer than the free room
        head_ = r_.head.load(std::memory_order_acquire);
        if (tail_ - head_ == kCapacity) head_ = wait_moved(r_.head, head_, r_.producer_sleeps);
      }
      const std::size_t room =
          std::min<std::size_t>(kCapacity - (tail_ - head_), kCapacity - (tail_ & kMask));
      const std::size_t k = std::min(n, room);
      std::memcpy(r_.data + (tail_ & kMask), p, k);
      tail_ += static_cast<std::uint32_t>(k);
      p += k;
      n -= k;
    }
  }

  Ring& r_;
  std::uint32_t tail_ = 0;
  std::uint32_t head_ = 0;  // the consumer's position as last read: reread only when full
};

class Consumer {
 public:
  explicit Consumer(Ring& r) : r_(r) {}
  /// Receives the next message into `out` (resized to it).
  void receive(std::vector<std::byte>& out) {
    std::uint32_t n = 0;
    read(&n, sizeof n);
    out.resize(n);
    read(out.data(), n);
    publish(r_.head, head_, r_.producer_sleeps);
  }

 private:
  void read(void* bytes, std::size_t n) {
    auto* p = static_cast<std::byte*>(bytes);
    while (n > 0) {
      if (tail_ == head_) {
        publish(r_.head, head_, r_.producer_sleeps);  // a message longer than the ring
        tail_ = r_.tail.load(std::memory_order_acquire);
        if (tail_ == head_) tail_ = wait_moved(r_.tail, head_, r_.consumer_sleeps);
      }
      const std::size_t avail = std::min<std::size_t>(tail_ - head_, kCapacity - (head_ & kMask));
      const std::size_t k = std::min(n, avail);
      std::memcpy(p, r_.data + (head_ & kMask), k);
      head_ += static_cast<std::uint32_t>(k);
      p += k;
      n -= k;
    }
  }

  Ring& r_;
  std::uint32_t head_ = 0;
  std::uint32_t tail_ = 0;  // the producer's position as last read: reread only when empty
};

pid_t fork_child() {
  const pid_t pid = ::fork();
  if (pid == -1) throw std::system_error(errno, std::generic_category(), "fork");
  return pid;
}

bool exited_ok(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

double bench::measure_raw(const Workload& w) {
  if (w.producers != 1 || w.consumers != 1) {
    throw std::invalid_argument("the raw ring has one producer and one consumer");
  }
  Stage* stage = map_stage();
  void* mapping =
      ::mmap(nullptr, sizeof(Ring), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap ring");
  auto* ring = new (mapping) Ring;

  const pid_t consumer = fork_child();
  if (consumer == 0) {
    Consumer c(*ring);
    std::vector<std::byte> message;
    std::int64_t got = 0, bad = 0;
    consumer_ready(*stage);
    for (;;) {
      c.receive(message);
      if (w.size == 0) {
        if (message.size() != sizeof(int)) {
          ++bad;
          continue;
        }
        int value = 0;
        std::memcpy(&value, message.data(), sizeof value);
        if (value < 0) break;
      } else {
        if (message.empty()) break;
        if (message.size() != w.size) ++bad;
      }
      ++got;
    }
    consumer_done(*stage, got, bad);
    ::_exit(0);
  }
  const pid_t producer = fork_child();
  if (producer == 0) {
    Producer p(*ring);
    const std::vector<std::byte> message(w.size, std::byte{0x5a});
    await_go(*stage);
    for (std::int64_t i = 0; i < w.count; ++i) {
      if (w.size == 0) {
        const int value = static_cast<int>(i);
        p.send(&value, sizeof value);
      } else {
        p.send(message.data(), static_cast<std::uint32_t>(message.size()));
      }
    }
    const int end = -1;
    if (w.size == 0) {
      p.send(&end, sizeof end);
    } else {
      p.send(nullptr, 0);
    }
    ::_exit(0);
  }
  if (!release(*stage, w)) {
    ::kill(producer, SIGKILL);
    ::kill(consumer, SIGKILL);
  }
  const bool producer_ok = exited_ok(producer);
  const bool consumer_ok = exited_ok(consumer);
  ::munmap(mapping, sizeof(Ring));
  const Tally result = tally(*stage);
  unmap_stage(stage);
  return finish(result, w, producer_ok && consumer_ok, "raw ring");
}

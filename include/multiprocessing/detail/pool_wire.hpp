// SPDX-License-Identifier: MIT
// multiprocessing/detail/pool_wire.hpp
//
// What a Pool's parent and its workers say to each other, and the worker's whole life.
//
// Each worker has its own AF_UNIX stream socketpair with the parent. Frames on it:
//   u64 payload length | u32 count of passed descriptors | payload
// The descriptors ride as SCM_RIGHTS on the frame's first bytes and queue in arrival order, as in
// connection.hpp. The payload starts with a pool_msg byte:
//   parent -> worker  define  u32 n, then n x (u32 id, code_ref): names code the worker resolves
//                             once (runners, task functions), so a task carries u32 ids only
//                     init    u8 has_initializer [u32 runner id, callable, initargs]
//                     chunk   u32 runner id, u32 count, callable, count x arguments
//                     stop    (finish and exit 0)
//   worker -> parent  ready   (the initializer succeeded)
//                     init_failed  exception_record
//                     result  u32 count, count x item
// An item is u8 status (0 value, 1 exception) | u32 descriptor count | u64 length | bytes (the
// value, or an exception_record). Items carry their own descriptors so one bad result never
// corrupts its neighbours. A worker runs its chunks in the order they arrive and answers each
// before reading the next, so the parent knows exactly which chunk a dead worker was running.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cxxabi.h>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../connection.hpp"
#include "../errors.hpp"
#include "../serialize.hpp"
#include "../sharedctypes.hpp"
#include "child.hpp"
#include "code_ref.hpp"
#include "posix.hpp"
#include "remote_exception.hpp"
#include "target.hpp"

namespace multiprocessing::detail {

enum class pool_msg : std::uint8_t {
  define = 1,
  init = 2,
  chunk = 3,
  stop = 4,
  ready = 5,
  init_failed = 6,
  result = 7,
};

inline constexpr std::size_t pool_header_size = 12;

inline void put_pool_header(std::byte* at, std::uint64_t length, std::uint32_t nfds) noexcept {
  for (std::size_t i = 0; i < 8; ++i) at[i] = static_cast<std::byte>(length >> (8 * i));
  for (std::size_t i = 0; i < 4; ++i) at[8 + i] = static_cast<std::byte>(nfds >> (8 * i));
}

/// A duplicate of `fd` owned by the caller (close-on-exec).
[[nodiscard]] inline unique_fd dup_fd(int fd, const char* what) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy == -1) throw_errno(std::string("dup ") + what);
  return unique_fd(copy);
}

// ---------------------------------------------------------------------------------------------
// Frames in: bytes and descriptors read from a socket, handed out one complete frame at a time.

class frame_in {
 public:
  /// One complete frame: its payload (valid until pop()) and its descriptors (owned).
  struct frame {
    std::span<const std::byte> payload;
    std::vector<unique_fd> fds;
  };

  /// Reads what the socket has without blocking (when `block`, waits for at least one byte).
  /// @returns false once the peer has closed (or died); bytes read before stay available.
  bool read(int fd, bool block) {
    for (;;) {
      std::size_t want = std::size_t{1} << 16;
      if (const auto need = bytes_needed(); need > want) want = need;
      std::byte* out = in_.prepare(want);
      iovec iov{out, want};
      alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(int) * max_passed_fds)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
      if (n > 0) {
        take_passed_fds(msg, fds_, "pool channel");
        in_.commit(static_cast<std::size_t>(n));
        if (block) return true;
        continue;  // drain what is there
      }
      if (n == 0) return false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == ECONNRESET) return false;
      throw_errno("recvmsg pool channel");
    }
  }

  /// The next complete frame, if one is buffered. Call pop() when done with it.
  [[nodiscard]] bool next(frame& out) {
    if (in_.size() < pool_header_size) return false;
    std::uint64_t length = 0;
    std::uint32_t nfds = 0;
    const std::byte* h = in_.data();
    for (std::size_t i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(h[i]) << (8 * i);
    for (std::size_t i = 0; i < 4; ++i) nfds |= static_cast<std::uint32_t>(h[8 + i]) << (8 * i);
    if (length > max_frame_length) throw SerializationError("pool channel: corrupt frame length");
    if (in_.size() - pool_header_size < length) return false;
    if (nfds > fds_.size()) throw SerializationError("pool channel: descriptors missing from a frame");
    out.payload = std::span<const std::byte>(h + pool_header_size, static_cast<std::size_t>(length));
    out.fds.clear();
    for (std::uint32_t i = 0; i < nfds; ++i) {
      out.fds.push_back(std::move(fds_.front()));
      fds_.pop_front();
    }
    current_ = pool_header_size + static_cast<std::size_t>(length);
    return true;
  }

  /// True when a complete frame is buffered (next() would return it without reading).
  [[nodiscard]] bool has_frame() const noexcept {
    if (in_.size() < pool_header_size) return false;
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(in_.data()[i]) << (8 * i);
    return length <= max_frame_length && in_.size() - pool_header_size >= length;
  }

  /// Releases the frame returned by next().
  void pop() noexcept {
    in_.consume(current_);
    current_ = 0;
  }

 private:
  /// Bytes still missing from the frame at the front (0 when unknown).
  [[nodiscard]] std::size_t bytes_needed() const noexcept {
    if (in_.size() < pool_header_size) return 0;
    std::uint64_t length = 0;
    for (std::size_t i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(in_.data()[i]) << (8 * i);
    if (length > max_frame_length) return 0;
    const std::uint64_t total = pool_header_size + length;
    return total > in_.size() ? static_cast<std::size_t>(total - in_.size()) : 0;
  }

  byte_fifo in_;
  std::deque<unique_fd> fds_;
  std::size_t current_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Frames out, parent side: queued, written without ever blocking (the handler thread polls for
// POLLOUT), so one slow or busy worker never holds up the others.

class frame_out {
 public:
  /// Queues a frame whose payload this queue owns.
  void push(std::vector<std::byte> payload, bool* sent_flag = nullptr) {
    segment& s = queue_.emplace_back();
    s.own = std::move(payload);
    s.payload = s.own;
    s.sent_flag = sent_flag;
    put_pool_header(s.header.data(), s.payload.size(), 0);
  }
  /// Queues a frame whose payload and descriptors stay alive elsewhere until it is sent.
  void push_borrowed(std::span<const std::byte> payload, std::vector<int> fds, bool* sent_flag) {
    segment& s = queue_.emplace_back();
    s.payload = payload;
    s.fds = std::move(fds);
    s.sent_flag = sent_flag;
    put_pool_header(s.header.data(), s.payload.size(), static_cast<std::uint32_t>(s.fds.size()));
  }

  [[nodiscard]] bool empty() const noexcept { return queue_.empty(); }

  /// Writes as much as the socket takes now. @returns false when the peer is gone (EPIPE).
  bool flush(int fd) {
    while (!queue_.empty()) {
      std::array<iovec, 64> iov{};
      std::size_t count = 0;
      const std::vector<int>* fds = nullptr;
      for (std::size_t i = 0; i < queue_.size() && count + 2 <= iov.size(); ++i) {
        segment& s = queue_[i];
        if (s.sent == 0 && !s.fds.empty()) {
          if (i > 0) break;  // descriptors must ride on their own frame's first byte
          fds = &s.fds;
        }
        const std::size_t total = pool_header_size + s.payload.size();
        std::size_t at = s.sent;
        if (at < pool_header_size) {
          iov[count++] = {s.header.data() + at, pool_header_size - at};
          at = pool_header_size;
        }
        if (at < total) {
          iov[count++] = {const_cast<std::byte*>(s.payload.data() + (at - pool_header_size)),  // NOLINT
                          total - at};
        }
      }
      alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(int) * max_passed_fds)];
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = count;
      if (fds != nullptr) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds->size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds->size());
        std::memcpy(CMSG_DATA(c), fds->data(), sizeof(int) * fds->size());
      }
      const ssize_t n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n == -1) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EPIPE || errno == ECONNRESET) return false;
        throw_errno("sendmsg pool channel");
      }
      auto left = static_cast<std::size_t>(n);
      while (left > 0 && !queue_.empty()) {
        segment& s = queue_.front();
        const std::size_t total = pool_header_size + s.payload.size();
        const std::size_t take = std::min(left, total - s.sent);
        s.sent += take;
        if (take > 0) s.fds.clear();  // they went with the first byte
        left -= take;
        if (s.sent == total) {
          if (s.sent_flag != nullptr) *s.sent_flag = true;
          queue_.pop_front();
        }
      }
    }
    return true;
  }

 private:
  struct segment {
    std::array<std::byte, pool_header_size> header{};
    std::vector<std::byte> own;
    std::span<const std::byte> payload;
    std::vector<int> fds;  // borrowed
    std::size_t sent = 0;
    bool* sent_flag = nullptr;
  };
  std::deque<segment> queue_;
};

/// Worker side: sends one frame, blocking (the parent always reads). `frame` starts with
/// pool_header_size bytes of room for the header.
inline void send_pool_frame(int fd, std::vector<std::byte>& frame, const std::vector<unique_fd>& fds) {
  put_pool_header(frame.data(), frame.size() - pool_header_size, static_cast<std::uint32_t>(fds.size()));
  if (fds.empty()) {
    write_all(fd, frame.data(), frame.size(), "pool channel");
    return;
  }
  std::vector<int> raw;
  raw.reserve(fds.size());
  for (const auto& f : fds) raw.push_back(f.get());
  send_with_fds(fd, frame, raw, "pool channel");
}

// ---------------------------------------------------------------------------------------------
// The worker's view of code: ids the parent defined, resolved once.

struct worker_code {
  std::vector<std::uintptr_t> address;
  std::vector<std::string> error;  // why an id could not be resolved

  [[nodiscard]] std::uintptr_t at(std::uint32_t id) const {
    if (id >= address.size()) throw ProcessError("pool worker: unknown code id " + std::to_string(id));
    if (address[id] == 0) throw ProcessError("pool worker: " + error[id]);
    return address[id];
  }
};

/// Loads the callable of a task or initializer of type F (see detail/target.hpp for the rules).
template <class F>
F load_callable(const worker_code& code, serialize::Reader& in) {
  if constexpr (is_function_pointer_v<F>) {
    const std::uintptr_t addr = code.at(in.load<std::uint32_t>());
    F fn = nullptr;
    std::memcpy(&fn, &addr, sizeof fn);
    return fn;
  } else if constexpr (std::is_empty_v<F> && std::default_initializable<F>) {
    return F{};
  } else {
    return in.load<F>();
  }
}

/// Builds a result frame item by item.
class result_builder {
 public:
  result_builder() : frame_(pool_header_size) {}

  void begin(std::uint32_t count) {
    // Room for small results without regrowing (each item: a 13-byte header and its value).
    frame_.reserve(frame_.size() + 1 + sizeof count + std::min<std::size_t>(count, 1U << 16) * 24);
    frame_.push_back(static_cast<std::byte>(pool_msg::result));
    append(&count, sizeof count);
  }

  /// Runs `call` and records its value, or the exception it threw.
  template <class Call>
  void call(Call&& call) {
    using R = std::invoke_result_t<Call&>;
    try {
      if constexpr (std::is_void_v<R>) {
        call();
        item(0, {}, {});
      } else if constexpr (serialize::detail::is_bitwise<std::remove_cvref_t<R>>) {
        // Its encoding is its bytes, and it holds no descriptor: straight into the frame.
        const std::remove_cvref_t<R> value = call();
        item(0, std::as_bytes(std::span(&value, 1)), {});
      } else {
        scratch_.clear();
        R value = call();
        scratch_.save(value);
        if (!pass_descriptors_ && !scratch_.fds().empty()) {
          throw TypeError("the task's result holds a descriptor (a Queue, Lock, Value, Connection "
                          "or shared memory), which cannot travel to another machine");
        }
        // Descriptors must outlive `value` (a handle closes its own): keep duplicates.
        std::vector<unique_fd> fds;
        for (const int fd : scratch_.fds()) fds.push_back(dup_fd(fd, "pool result descriptor"));
        item(0, scratch_.bytes(), std::move(fds));
      }
    } catch (...) {
      error(record_current_exception());
    }
  }

  void error(const exception_record& rec) {
    scratch_.clear();
    scratch_.save(rec);
    item(1, scratch_.bytes(), {});
  }

  void pass_descriptors(bool yes) noexcept { pass_descriptors_ = yes; }
  std::vector<std::byte>& frame() noexcept { return frame_; }
  const std::vector<unique_fd>& fds() const noexcept { return fds_; }

 private:
  void append(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    frame_.insert(frame_.end(), b, b + n);
  }
  void item(std::uint8_t status, std::span<const std::byte> bytes, std::vector<unique_fd> fds) {
    const auto nfds = static_cast<std::uint32_t>(fds.size());
    const std::uint64_t length = bytes.size();
    // One resize and plain copies: this runs once per item of every chunk.
    const std::size_t at = frame_.size();
    if (frame_.capacity() - at < item_header + bytes.size()) {
      frame_.reserve(std::max(at + item_header + bytes.size(), 2 * frame_.capacity()));
    }
    frame_.resize(at + item_header + bytes.size());
    std::byte* out = frame_.data() + at;
    out[0] = static_cast<std::byte>(status);
    std::memcpy(out + 1, &nfds, sizeof nfds);
    std::memcpy(out + 1 + sizeof nfds, &length, sizeof length);
    if (!bytes.empty()) std::memcpy(out + item_header, bytes.data(), bytes.size());
    for (auto& f : fds) fds_.push_back(std::move(f));
  }
  static constexpr std::size_t item_header = 1 + sizeof(std::uint32_t) + sizeof(std::uint64_t);

  std::vector<std::byte> frame_;
  std::vector<unique_fd> fds_;
  serialize::Writer scratch_;  // one item's value, reused
  bool pass_descriptors_ = true;
};

/// Runs one chunk: `count` calls of F with arguments Args... read from `in`.
using chunk_runner = void (*)(const worker_code&, serialize::Reader&, std::uint32_t, result_builder&);
/// Runs an initializer: F applied to a tuple Args... read from `in`.
using init_runner = void (*)(const worker_code&, serialize::Reader&);

template <class F, class... Args>
void run_chunk(const worker_code& code, serialize::Reader& in, std::uint32_t count,
               result_builder& out) {
  std::uint32_t done = 0;
  try {
    F f = load_callable<F>(code, in);
    for (; done < count; ++done) {
      // Braced initialisation loads the arguments left to right.
      std::tuple<Args...> args{in.load<Args>()...};
      out.call([&]() -> decltype(auto) { return std::apply(f, std::move(args)); });
    }
  } catch (...) {  // the callable or an argument could not be loaded: the rest cannot either
    const exception_record rec = record_current_exception();
    for (; done < count; ++done) out.error(rec);
  }
}

template <class F, class... Args>
void run_initializer(const worker_code& code, serialize::Reader& in) {
  F f = load_callable<F>(code, in);
  std::tuple<Args...> args{in.load<Args>()...};
  std::apply(f, std::move(args));
}

/// A worker's end of its channel: a descriptor that crosses exec (Writer::attach_fd). Under fork
/// the child also inherited the parent's end, `other`, and closes it.
struct pool_socket {
  int fd = -1;
  int other = -1;
};

/// Results of quick chunks that a worker holds back while more chunks wait in its buffer, so that
/// a run of tiny tasks costs one send per batch instead of one per chunk. A result waits at most
/// `max_delay`, and never while the worker waits for input.
struct result_batch {
  static constexpr std::chrono::microseconds max_delay{200};
  static constexpr std::size_t max_bytes = std::size_t{1} << 18;

  std::vector<std::byte> bytes;  // complete frames, headers written (no descriptors)
  std::chrono::steady_clock::time_point since;

  void flush(int fd) {
    if (bytes.empty()) return;
    write_all(fd, bytes.data(), bytes.size(), "pool channel");
    bytes.clear();
  }
};

/// The worker's whole life (the target of each worker Process). `started` counts the chunks it
/// has begun, in shared memory: when the worker dies, the parent reads there which chunk was
/// running (results of earlier ones may still have been in its batch).
/// `pass_descriptors`: false when the parent is on another machine (an MPI rank's relay): a result
/// holding a descriptor then fails with TypeError instead of travelling.
inline void pool_worker_main(pool_socket sock, std::int64_t maxtasks, RawValue<std::uint64_t> started,
                             bool pass_descriptors) {
  // terminate() must end a worker promptly even when the program installed a SIGTERM handler
  // that a forked worker inherited.
  ::signal(SIGTERM, SIG_DFL);
  if (sock.other >= 0) ::close(sock.other);
  const unique_fd fd(sock.fd);
  worker_code code;
  frame_in in;
  std::int64_t done = 0;
  std::uint64_t begun = 0;
  result_batch batch;
  auto send_simple = [&](pool_msg m) {
    std::vector<std::byte> frame(pool_header_size);
    frame.push_back(static_cast<std::byte>(m));
    send_pool_frame(fd.get(), frame, {});
  };
  for (;;) {
    frame_in::frame fr;
    if (!in.next(fr)) {
      batch.flush(fd.get());  // nothing is held back while the worker waits
      // The next task usually follows within microseconds: look for it briefly before sleeping.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
      do {
        if (!in.read(fd.get(), false)) return;  // the parent is gone
        if (in.has_frame()) break;
        std::this_thread::yield();  // on a busy machine, the parent's threads get the CPU meanwhile
      } while (std::chrono::steady_clock::now() < spin_until);
      (void)in.next(fr);
      while (fr.payload.empty() && !in.next(fr)) {
        if (!in.read(fd.get(), true)) return;
      }
    }
    std::vector<int> raw;
    raw.reserve(fr.fds.size());
    for (const auto& f : fr.fds) raw.push_back(f.get());
    serialize::Reader r(fr.payload, raw);
    const auto msg = static_cast<pool_msg>(r.load<std::uint8_t>());
    switch (msg) {
      case pool_msg::define: {
        const auto n = r.load<std::uint32_t>();
        for (std::uint32_t i = 0; i < n; ++i) {
          const auto id = r.load<std::uint32_t>();
          const auto ref = r.load<code_ref>();
          if (id >= code.address.size()) {
            code.address.resize(id + 1, 0);
            code.error.resize(id + 1);
          }
          try {
            code.address[id] = resolve_code_ref(ref);
          } catch (const std::exception& e) {
            code.error[id] = e.what();
          }
        }
        break;
      }
      case pool_msg::init: {
        if (r.load<std::uint8_t>() != 0) {
          try {
            const std::uintptr_t addr = code.at(r.load<std::uint32_t>());
            init_runner run = nullptr;
            std::memcpy(&run, &addr, sizeof run);
            run(code, r);
          } catch (...) {
            // Printed first (as Python prints the initializer's traceback): once the parent
            // hears of it, it may end this process at any moment.
            report_uncaught(runtime::get().self->name);
            std::vector<std::byte> frame(pool_header_size);
            frame.push_back(static_cast<std::byte>(pool_msg::init_failed));
            serialize::Writer w;
            w.save(record_current_exception());
            frame.insert(frame.end(), w.bytes().begin(), w.bytes().end());
            send_pool_frame(fd.get(), frame, {});
            flush_std_streams();
            ::_exit(1);
          }
        }
        send_simple(pool_msg::ready);
        break;
      }
      case pool_msg::chunk: {
        const auto id = r.load<std::uint32_t>();
        const auto count = r.load<std::uint32_t>();
        std::atomic_ref<std::uint64_t>(started.value()).store(++begun, std::memory_order_release);
        const auto began = std::chrono::steady_clock::now();
        result_builder out;
        out.pass_descriptors(pass_descriptors);
        out.begin(count);
        try {
          const std::uintptr_t addr = code.at(id);
          chunk_runner run = nullptr;
          std::memcpy(&run, &addr, sizeof run);
          run(code, r, count, out);
        } catch (...) {
          const exception_record rec = record_current_exception();
          for (std::uint32_t i = 0; i < count; ++i) out.error(rec);
        }
        fr = {};
        in.pop();
        const auto now = std::chrono::steady_clock::now();
        if (out.fds().empty() && now - began < result_batch::max_delay) {
          std::vector<std::byte>& frame = out.frame();
          put_pool_header(frame.data(), frame.size() - pool_header_size, 0);
          if (batch.bytes.empty()) batch.since = began;
          batch.bytes.insert(batch.bytes.end(), frame.begin(), frame.end());
        } else {
          batch.flush(fd.get());
          send_pool_frame(fd.get(), out.frame(), out.fds());
        }
        const bool last = maxtasks > 0 && ++done >= maxtasks;
        if (last || !in.has_frame() || batch.bytes.size() >= result_batch::max_bytes ||
            now - batch.since >= result_batch::max_delay) {
          batch.flush(fd.get());
        }
        if (last) return;
        continue;
      }
      case pool_msg::stop:
        batch.flush(fd.get());
        return;
      default:
        throw ProcessError("pool worker: unexpected message " +
                           std::to_string(static_cast<int>(msg)));
    }
    fr = {};
    in.pop();
  }
}

}  // namespace multiprocessing::detail

/// The worker's socket crosses exec as a passed descriptor; the child keeps a duplicate.
template <>
struct multiprocessing::serializer<multiprocessing::detail::pool_socket> {
  static void save(multiprocessing::Writer& w, const multiprocessing::detail::pool_socket& s) {
    w.save(w.attach_fd(s.fd));
  }
  static multiprocessing::detail::pool_socket load(multiprocessing::Reader& r) {
    return {multiprocessing::detail::dup_fd(r.fd(r.load<std::uint32_t>()), "pool socket").release(),
            -1};
  }
};

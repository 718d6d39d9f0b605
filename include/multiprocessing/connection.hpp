// SPDX-License-Identifier: MIT
// multiprocessing/connection.hpp
//
// Defines Pipe() and Connection, the two ends of a message channel between processes, and
// connection::wait() over connections, process sentinels and raw descriptors (Python:
// multiprocessing.Pipe, multiprocessing.connection.Connection, multiprocessing.connection.wait).
//
//   auto [parent_end, child_end] = mp::Pipe();
//   mp::Process p(worker, child_end);  // Connection is a handle: it crosses every start method
//   p.start();
//   child_end.close();                 // as in Python: close the end this process does not use
//   parent_end.send(std::vector<int>{1, 2, 3});
//   auto reply = parent_end.recv<std::string>();
//
// Wire format (both directions, sockets and pipes): every message is one frame,
//   u64 little-endian payload length | u32 little-endian count of passed descriptors | payload
// The descriptors (Writer::attach_fd) ride as SCM_RIGHTS ancillary data on the frame's first bytes
// and are queued in arrival order, so frame k takes the next `count` of them. Only duplex
// (socketpair) connections can carry descriptors; a pipe refuses such a message. send(x) frames
// serialize::save_message's bytes (type fingerprint then value); send_bytes frames the raw bytes.
//
// Large messages in both directions at once: a duplex send never blocks in write(2). It writes
// with MSG_DONTWAIT and, while the socket is full, polls for POLLOUT *and* POLLIN; whatever the
// peer sends meanwhile is read into this connection's receive buffer, so two processes that send
// 64 MiB to each other simultaneously both complete, then receive from their buffers. A simplex
// pipe carries one direction only, so a plain blocking write cannot deadlock there.
//
// Listener and Client (Python: multiprocessing.connection.Listener/Client) belong in this header,
// in namespace multiprocessing::connection, after wait().
#pragma once

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <multiprocessing/detail/posix.hpp>
#include <multiprocessing/errors.hpp>
#include <multiprocessing/process.hpp>
#include <multiprocessing/serialize/core.hpp>
#include <multiprocessing/serialize/message.hpp>
#include <multiprocessing/timeout.hpp>

namespace multiprocessing {

namespace detail {

/// A growable FIFO of bytes without zero-filling (received bytes are written over it at once).
class byte_fifo {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] const std::byte* data() const noexcept { return data_.get() + begin_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  /// Room for `n` more bytes at the end; commit() what was actually written there.
  std::byte* prepare(std::size_t n) {
    if (cap_ - end_ >= n) return data_.get() + end_;
    const std::size_t live = size();
    if (cap_ - live >= n && begin_ > 0) {
      std::memmove(data_.get(), data(), live);
    } else {
      const std::size_t capacity = std::max(cap_ * 2, live + n);
      auto fresh = std::make_unique_for_overwrite<std::byte[]>(capacity);
      if (live > 0) std::memcpy(fresh.get(), data(), live);
      data_ = std::move(fresh);
      cap_ = capacity;
    }
    begin_ = 0;
    end_ = live;
    return data_.get() + end_;
  }
  void commit(std::size_t n) noexcept { end_ += n; }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
};

/// Blocks SIGPIPE in this thread while writing to a pipe whose reader may be gone, so the write
/// fails with EPIPE instead of killing the process; discard() drops the SIGPIPE the write raised.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;
  sigpipe_guard(sigpipe_guard&&) = delete;
  sigpipe_guard& operator=(sigpipe_guard&&) = delete;
  ~sigpipe_guard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  void discard() const noexcept {
    if (was_pending_) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) == -1 && errno == EINTR) {
    }
  }

 private:
  sigset_t old_{};
  bool was_pending_ = false;
};

inline constexpr std::size_t frame_header_size = 12;
/// Frames longer than this are treated as corrupt (a garbage length must not allocate exabytes).
inline constexpr std::uint64_t max_frame_length = std::uint64_t{1} << 40;

/// The state all copies of one Connection handle share in a process.
struct connection_state {
  unique_fd fd;
  bool readable = false;
  bool writable = false;
  bool socket = false;
  bool eof = false;              // the peer closed: nothing arrives beyond what `in` holds
  byte_fifo in;                  // received, not yet returned bytes
  std::deque<unique_fd> in_fds;  // received descriptors, in arrival order
};

}  // namespace detail

class Connection;

/// Python: multiprocessing.Pipe(duplex=True). Returns two connected Connections.
/// Duplex (the default): an AF_UNIX stream socketpair; both ends send and receive, and can pass
/// handles that hold descriptors. Simplex (`duplex == false`): a pipe; `first` only receives and
/// `second` only sends, as Python's (reader, writer). Both descriptors are close-on-exec; handles
/// reach spawned children through the serializer below, forked ones by inheritance.
/// @throws std::system_error when socketpair(2)/pipe2(2) fails (EMFILE...).
[[nodiscard]] std::pair<Connection, Connection> Pipe(bool duplex = true);

/// One end of a Pipe (Python: multiprocessing.connection.Connection).
///
/// A Connection is a handle: copies share one descriptor and one receive buffer, as Python
/// references do; close() closes it for every copy in this process. Other processes hold their
/// own descriptors (inherited under fork, duplicated under spawn/forkserver), so a peer sees EOF
/// only when every process has closed or lost its copy: close the end you do not use after
/// Process::start(), as Python programs do.
///
/// Under fork, a child inherits the descriptor and a copy of anything this process had buffered
/// but not yet received (bytes read while a duplex send waited): receive before forking, or give
/// the child a connection this process does not read from, as Python programs do.
///
/// Thread-safety: none, as in Python. One thread at a time may use a connection (all copies of
/// it); guard it with a Lock otherwise. Distinct connections are independent.
///
/// Memory ordering: what a process did before send(x) is visible (in the sense of its effects on
/// shared memory) to the process whose recv() returned x: the kernel's socket/pipe buffer orders
/// them, as for any write(2)/read(2) pair.
class Connection {
 public:
  /// A closed connection (every operation throws OSError "handle is closed").
  Connection() = default;

  /// Sends `value` as one message (type fingerprint then value). Python: Connection.send(obj).
  /// Blocks while the peer's buffer is full; a duplex send keeps reading what the peer sends
  /// meanwhile into this connection's buffer (see the file comment), so it cannot deadlock
  /// against a peer that is itself sending.
  /// @param value any serializable T; a T that holds descriptors (a Connection, other handles)
  ///   passes them with SCM_RIGHTS (duplex only).
  /// @throws SerializationError (or what T's serializer throws) before anything is sent;
  ///   ValueError when T carries descriptors over a pipe or more than 253 of them; OSError when
  ///   closed or read-only ("connection is read-only"), or EPIPE/ECONNRESET when the peer is gone.
  /// Peer death: a dead peer is OSError(EPIPE) here, never SIGPIPE.
  /// Memory ordering: see the class comment (send happens-before the matching receive).
  template <class T>
  void send(const T& value);

  /// Receives the next message as a T. Python: Connection.recv(). Blocks until a whole message
  /// is there (bound the wait with poll(timeout) first).
  /// @returns the value sent by send(T) on the other end.
  /// @throws TypeError when the message holds another type, or was sent with send_bytes (the
  ///   message is consumed); SerializationError when corrupt; EOFError when the peer has closed
  ///   and everything sent was received; OSError when closed or write-only.
  /// Peer death: once the dead peer's data is drained, EOFError (a half-sent message: EOFError).
  /// Memory ordering: see the class comment (send happens-before the matching receive).
  template <class T>
  [[nodiscard]] T recv();

  /// Sends `buf[offset, offset + size)` (to the end when `size` is nullopt) as one message.
  /// Python: Connection.send_bytes(buf, offset=0, size=None). A zero-length message is a message.
  /// @throws ValueError "buffer length < offset" / "buffer length < offset + size"; OSError as
  ///   send(). Blocking and peer death as send().
  void send_bytes(std::span<const std::byte> buf, std::size_t offset = 0,
                  std::optional<std::size_t> size = std::nullopt);
  /// send_bytes of the characters of `text` (no terminator).
  void send_bytes(std::string_view text, std::size_t offset = 0,
                  std::optional<std::size_t> size = std::nullopt);
  /// send_bytes of the characters of `text` (no terminator).
  void send_bytes(const std::string& text, std::size_t offset = 0,
                  std::optional<std::size_t> size = std::nullopt) {
    send_bytes(std::string_view(text), offset, size);
  }
  /// send_bytes of a C string's characters (no terminator).
  void send_bytes(const char* text, std::size_t offset = 0,
                  std::optional<std::size_t> size = std::nullopt) {
    send_bytes(std::string_view(text), offset, size);
  }

  /// Receives the next message's bytes. Python: Connection.recv_bytes(maxlength=None); bytes
  /// become std::vector<std::byte>. Blocks like recv().
  /// @throws OSError "bad message length" when the message is longer than `maxlength`; the
  ///   connection is then closed (as in Python: the stream is out of step). EOFError, OSError as
  ///   recv(). Memory ordering and peer death as recv().
  [[nodiscard]] std::vector<std::byte> recv_bytes(
      std::optional<std::size_t> maxlength = std::nullopt);

  /// recv_bytes() as a std::string (the same message, characters instead of bytes).
  [[nodiscard]] std::string recv_bytes_string(std::optional<std::size_t> maxlength = std::nullopt);

  /// Receives the next message into `buffer` at `offset`. Python: recv_bytes_into(buf, offset).
  /// Blocks like recv().
  /// @returns the message's length.
  /// @throws ValueError when offset > buffer.size(); BufferTooShort when the message does not fit
  ///   (the message is consumed and BufferTooShort::message() holds all of it); EOFError, OSError
  ///   as recv(). Memory ordering and peer death as recv().
  std::size_t recv_bytes_into(std::span<std::byte> buffer, std::size_t offset = 0);

  /// True when a message (or EOF) can be received without blocking; never consumes anything.
  /// Python: Connection.poll() — no argument means do not wait.
  /// @throws OSError when closed or write-only.
  [[nodiscard]] bool poll() const { return poll(std::chrono::nanoseconds::zero()); }

  /// Waits up to `timeout` (Timeout{} = forever, Python's poll(None)) for data or EOF; never
  /// consumes anything. Python: Connection.poll(timeout).
  /// @returns false when nothing arrived in time.
  /// @throws OSError when closed or write-only.
  /// Memory ordering: none by itself; the recv() that follows a true poll() orders as recv().
  /// Peer death: returns true (the following recv throws EOFError once data is drained).
  [[nodiscard]] bool poll(Timeout timeout) const;

  /// Closes this process's descriptor for every copy of the handle. Python: Connection.close().
  /// Idempotent. Buffered unreceived data is dropped.
  void close() noexcept;

  /// Python: Connection.closed.
  [[nodiscard]] bool closed() const noexcept { return !state_ || !state_->fd; }
  /// Python: Connection.readable (false for a pipe's sending end).
  [[nodiscard]] bool readable() const;
  /// Python: Connection.writable (false for a pipe's receiving end).
  [[nodiscard]] bool writable() const;
  /// Python: Connection.fileno(). @throws OSError "handle is closed".
  [[nodiscard]] int fileno() const;

  /// True when both handles are copies of one connection.
  friend bool operator==(const Connection& a, const Connection& b) noexcept {
    return a.state_ == b.state_;
  }

  /// Wraps an owned descriptor (what Pipe() and the serializer do).
  Connection(detail::unique_fd fd, bool readable, bool writable);

  /// True when a byte (or EOF) is buffered in this process, so poll() and wait() report ready
  /// without asking the kernel.
  [[nodiscard]] bool has_buffered_input() const noexcept {
    return state_ && state_->fd && (state_->in.size() > 0 || state_->eof);
  }

 private:
  detail::connection_state& checked(const char* operation, bool need_read, bool need_write) const;
  void send_frame(std::span<const std::byte> payload, std::span<const int> fds);
  /// Reads until `in` holds `count` bytes; false on EOF first.
  static bool fill(detail::connection_state& st, std::size_t count);
  /// One read of at most `max_bytes` into `in`; false when it would block (nothing read).
  static bool read_some(detail::connection_state& st, std::size_t max_bytes);
  /// The next frame's payload length (header consumed) and its descriptors.
  std::uint64_t next_frame(detail::connection_state& st, std::vector<detail::unique_fd>& fds,
                           std::optional<std::size_t> maxlength, const char* operation);
  [[nodiscard]] std::string name() const;

  std::shared_ptr<detail::connection_state> state_;
};

namespace connection {

/// Something connection::wait() watches: a Connection (ready when it has a message or EOF), a
/// Process (its sentinel: ready when it has ended) or a raw descriptor (ready when readable).
/// Implicitly constructible from each, so `wait({&a, &b, &p}, 1s)` and `wait({a, p.sentinel()})`
/// work; the ready objects come back as the same wait_object values.
class wait_object {
 public:
  wait_object(Connection& c) noexcept : conn_(&c) {}     // NOLINT(google-explicit-constructor)
  wait_object(Connection* c) noexcept : conn_(c) {}      // NOLINT(google-explicit-constructor)
  wait_object(int fd) noexcept : fd_(fd) {}              // NOLINT(google-explicit-constructor)
  wait_object(const Process& p) : fd_(p.sentinel()) {}   // NOLINT(google-explicit-constructor)
  wait_object(const Process* p) : fd_(p->sentinel()) {}  // NOLINT(google-explicit-constructor)

  /// The connection given, or nullptr for a descriptor or a process.
  [[nodiscard]] Connection* connection() const noexcept { return conn_; }
  /// The descriptor watched (a connection's fileno()).
  [[nodiscard]] int fd() const { return conn_ != nullptr ? conn_->fileno() : fd_; }
  friend bool operator==(const wait_object& a, const wait_object& b) noexcept {
    return a.conn_ == b.conn_ && a.fd_ == b.fd_;
  }

 private:
  Connection* conn_ = nullptr;
  int fd_ = -1;
};

/// Waits until at least one of `objects` is ready or `timeout` passes (Timeout{} = forever).
/// Python: multiprocessing.connection.wait(object_list, timeout=None).
/// @returns the ready objects, in the order given; empty on timeout.
/// @throws OSError when a connection is closed; std::system_error when poll(2) fails.
/// Memory ordering: none by itself (it consumes nothing); receive from a ready connection.
/// Peer death: a connection whose peer died is ready (recv throws EOFError once drained); a
/// process sentinel is ready when the process ended, however it ended.
[[nodiscard]] std::vector<wait_object> wait(std::span<const wait_object> objects,
                                            Timeout timeout = {});
/// wait() over a braced list: `wait({&a, &b, &p}, 1s)`.
[[nodiscard]] inline std::vector<wait_object> wait(std::initializer_list<wait_object> objects,
                                                   Timeout timeout = {}) {
  return wait(std::span<const wait_object>(objects.begin(), objects.size()), timeout);
}

// Listener / Client: see the file comment.

}  // namespace connection

// ---------------------------------------------------------------------------------------------
// Definitions

inline std::pair<Connection, Connection> Pipe(bool duplex) {
  if (duplex) {
    auto [a, b] = detail::socket_pair("Pipe(duplex=true)");
    return {Connection(std::move(a), true, true), Connection(std::move(b), true, true)};
  }
  auto [r, w] = detail::make_pipe("Pipe(duplex=false)");
  return {Connection(std::move(r), true, false), Connection(std::move(w), false, true)};
}

inline Connection::Connection(detail::unique_fd fd, bool readable, bool writable)
    : state_(std::make_shared<detail::connection_state>()) {
  int type = 0;
  socklen_t len = sizeof type;
  state_->socket = ::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  state_->fd = std::move(fd);
  state_->readable = readable;
  state_->writable = writable;
}

inline std::string Connection::name() const {
  return "connection fd " + std::to_string(state_ && state_->fd ? state_->fd.get() : -1);
}

inline detail::connection_state& Connection::checked(const char* operation, bool need_read,
                                                     bool need_write) const {
  if (closed()) throw OSError(std::string(operation) + " on a connection: handle is closed", EBADF);
  if (need_read && !state_->readable) {
    throw OSError(std::string(operation) + " on " + name() + ": connection is write-only", EBADF);
  }
  if (need_write && !state_->writable) {
    throw OSError(std::string(operation) + " on " + name() + ": connection is read-only", EBADF);
  }
  return *state_;
}

inline bool Connection::readable() const { return checked("readable", false, false).readable; }
inline bool Connection::writable() const { return checked("writable", false, false).writable; }
inline int Connection::fileno() const { return checked("fileno", false, false).fd.get(); }

inline void Connection::close() noexcept {
  if (!state_) return;
  state_->fd.reset();
  state_->in = detail::byte_fifo{};
  state_->in_fds.clear();
}

inline bool Connection::read_some(detail::connection_state& st, std::size_t max_bytes) {
  std::byte* out = st.in.prepare(max_bytes);
  ssize_t n = -1;
  if (st.socket) {
    iovec iov{out, max_bytes};
    alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(int) * detail::max_passed_fds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    n = ::recvmsg(st.fd.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0) {
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          st.in_fds.emplace_back(fd);
        }
      }
    }
  } else {
    n = ::read(st.fd.get(), out, max_bytes);
  }
  if (n > 0) {
    st.in.commit(static_cast<std::size_t>(n));
  } else if (n == 0 || errno == ECONNRESET) {
    st.eof = true;  // closed, or died with our data unread: nothing more will come
  } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
    return false;
  } else if (errno != EINTR) {
    detail::throw_errno("read connection fd " + std::to_string(st.fd.get()));
  }
  return true;
}

inline bool Connection::fill(detail::connection_state& st, std::size_t count) {
  while (st.in.size() < count) {
    if (st.eof) return false;
    // Read exactly what is missing: bytes beyond this message stay in the kernel, where a
    // process that later receives this descriptor finds them. Read first, poll only when the
    // socket is empty: a message usually arrives whole, so recv is two reads.
    if (!read_some(st, count - st.in.size())) {
      detail::poll_fd(st.fd.get(), POLLIN, detail::deadline{}, "connection");
    }
  }
  return true;
}

inline std::uint64_t Connection::next_frame(detail::connection_state& st,
                                            std::vector<detail::unique_fd>& fds,
                                            std::optional<std::size_t> maxlength,
                                            const char* operation) {
  const auto eof = [&] {
    return EOFError(std::string(operation) + " on " + name() + ": the peer closed the connection");
  };
  if (!fill(st, detail::frame_header_size)) throw eof();
  std::uint64_t length = 0;
  std::uint32_t nfds = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    length |= static_cast<std::uint64_t>(st.in.data()[i]) << (8 * i);
  }
  for (std::size_t i = 0; i < 4; ++i) {
    nfds |= static_cast<std::uint32_t>(st.in.data()[8 + i]) << (8 * i);
  }
  if (length > detail::max_frame_length || nfds > st.in_fds.size() ||
      (maxlength && length > *maxlength)) {
    const std::string what = std::string(operation) + " on " + name() + ": bad message length " +
                             std::to_string(length) +
                             (maxlength ? " (maxlength " + std::to_string(*maxlength) + ")" : "");
    close();  // the stream is out of step: nothing after this could be read correctly
    throw OSError(what, EMSGSIZE);
  }
  st.in.consume(detail::frame_header_size);
  for (std::uint32_t i = 0; i < nfds; ++i) {
    fds.push_back(std::move(st.in_fds.front()));
    st.in_fds.pop_front();
  }
  if (!fill(st, static_cast<std::size_t>(length))) {
    throw EOFError(std::string(operation) + " on " + name() +
                   ": the peer closed the connection in the middle of a message");
  }
  return length;
}

inline void Connection::send_frame(std::span<const std::byte> payload, std::span<const int> fds) {
  auto& st = checked("send", false, true);
  if (!fds.empty() && !st.socket) {
    throw ValueError("send on " + name() +
                     ": a pipe cannot pass file descriptors (use a duplex Pipe)");
  }
  if (fds.size() > detail::max_passed_fds) {
    throw ValueError("send on " + name() + ": at most 253 file descriptors per message");
  }
  std::byte header[detail::frame_header_size];
  const std::uint64_t length = payload.size();
  const auto nfds = static_cast<std::uint32_t>(fds.size());
  for (std::size_t i = 0; i < 8; ++i) header[i] = static_cast<std::byte>(length >> (8 * i));
  for (std::size_t i = 0; i < 4; ++i) header[8 + i] = static_cast<std::byte>(nfds >> (8 * i));

  const std::size_t total = sizeof header + payload.size();
  std::size_t done = 0;
  bool fds_sent = fds.empty();
  const auto broken = [&](int err) {
    return OSError("send on " + name() + ": " + std::generic_category().message(err), err);
  };
  std::optional<detail::sigpipe_guard> guard;  // only pipes raise SIGPIPE; sockets use MSG_NOSIGNAL
  if (!st.socket) guard.emplace();
  while (done < total) {
    iovec iov[2];
    int count = 0;
    if (done < sizeof header) {
      iov[count++] = {header + done, sizeof header - done};
      if (!payload.empty())
        iov[count++] = {const_cast<std::byte*>(payload.data()),  // NOLINT: iovec is not const
                        payload.size()};
    } else {
      const std::size_t at = done - sizeof header;
      iov[count++] = {const_cast<std::byte*>(payload.data() + at),  // NOLINT: iovec is not const
                      payload.size() - at};
    }
    ssize_t n = -1;
    if (st.socket) {
      alignas(cmsghdr) std::byte control[CMSG_SPACE(sizeof(int) * detail::max_passed_fds)];
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(count);
      if (!fds_sent) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
      }
      n = ::sendmsg(st.fd.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
      n = ::writev(st.fd.get(), iov, count);
    }
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      if (n > 0) fds_sent = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE || errno == ECONNRESET) {
      const int err = errno;
      if (guard) guard->discard();
      throw broken(err);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      detail::throw_errno("send on " + name());
    }
    // The socket is full: wait until it drains, reading what the peer sends meanwhile so that a
    // peer blocked sending to us can make progress and then read from its side.
    const bool drain = st.readable && !st.eof;
    pollfd p{st.fd.get(), static_cast<short>(POLLOUT | (drain ? POLLIN : 0)), 0};
    if (::poll(&p, 1, -1) == -1) {
      if (errno == EINTR) continue;
      detail::throw_errno("poll " + name());
    }
    if (drain && (p.revents & POLLIN) != 0) (void)read_some(st, std::size_t{1} << 20);
  }
}

template <class T>
void Connection::send(const T& value) {
  checked("send", false, true);
  Writer writer;
  serialize::save_message(writer, value);  // throws before anything is sent
  const std::vector<int> fds(writer.fds().begin(), writer.fds().end());
  const auto bytes = std::move(writer).take();
  send_frame(bytes, fds);
}

template <class T>
T Connection::recv() {
  auto& st = checked("recv", true, false);
  std::vector<detail::unique_fd> owned;
  const auto length = static_cast<std::size_t>(next_frame(st, owned, std::nullopt, "recv"));
  std::vector<std::byte> bytes(st.in.data(), st.in.data() + length);
  st.in.consume(length);
  std::vector<int> fds;
  fds.reserve(owned.size());
  for (const auto& fd : owned) fds.push_back(fd.get());
  return serialize::loads<T>(bytes, fds);  // serializers duplicate what they keep; `owned` closes
}

inline void Connection::send_bytes(std::span<const std::byte> buf, std::size_t offset,
                                   std::optional<std::size_t> size) {
  checked("send_bytes", false, true);
  if (offset > buf.size()) {
    throw ValueError("send_bytes on " + name() + ": buffer length < offset (" +
                     std::to_string(buf.size()) + " < " + std::to_string(offset) + ")");
  }
  const std::size_t n = size.value_or(buf.size() - offset);
  if (n > buf.size() - offset) {
    throw ValueError("send_bytes on " + name() + ": buffer length < offset + size (" +
                     std::to_string(buf.size()) + " < " + std::to_string(offset) + " + " +
                     std::to_string(n) + ")");
  }
  send_frame(buf.subspan(offset, n), {});
}

inline void Connection::send_bytes(std::string_view text, std::size_t offset,
                                   std::optional<std::size_t> size) {
  send_bytes(std::as_bytes(std::span<const char>(text.data(), text.size())), offset, size);
}

inline std::vector<std::byte> Connection::recv_bytes(std::optional<std::size_t> maxlength) {
  auto& st = checked("recv_bytes", true, false);
  std::vector<detail::unique_fd> fds;  // a typed message's descriptors are closed here
  const auto length = static_cast<std::size_t>(next_frame(st, fds, maxlength, "recv_bytes"));
  std::vector<std::byte> bytes(st.in.data(), st.in.data() + length);
  st.in.consume(length);
  return bytes;
}

inline std::string Connection::recv_bytes_string(std::optional<std::size_t> maxlength) {
  const auto bytes = recv_bytes(maxlength);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

inline std::size_t Connection::recv_bytes_into(std::span<std::byte> buffer, std::size_t offset) {
  auto& st = checked("recv_bytes_into", true, false);
  if (offset > buffer.size()) {
    throw ValueError("recv_bytes_into on " + name() + ": offset too large (" +
                     std::to_string(offset) + " > buffer length " + std::to_string(buffer.size()) +
                     ")");
  }
  std::vector<detail::unique_fd> fds;
  const auto length =
      static_cast<std::size_t>(next_frame(st, fds, std::nullopt, "recv_bytes_into"));
  if (length > buffer.size() - offset) {
    std::string whole(reinterpret_cast<const char*>(st.in.data()), length);
    st.in.consume(length);
    throw BufferTooShort("recv_bytes_into on " + name() + ": the message has " +
                             std::to_string(length) + " bytes, the buffer has room for " +
                             std::to_string(buffer.size() - offset),
                         std::move(whole));
  }
  if (length > 0) std::memcpy(buffer.data() + offset, st.in.data(), length);
  st.in.consume(length);
  return length;
}

inline bool Connection::poll(Timeout timeout) const {
  auto& st = checked("poll", true, false);
  if (st.in.size() > 0 || st.eof) return true;
  return detail::poll_fd(st.fd.get(), POLLIN, detail::deadline(timeout.get()), "connection");
}

namespace connection {

inline std::vector<wait_object> wait(std::span<const wait_object> objects, Timeout timeout) {
  std::vector<wait_object> ready;
  std::vector<pollfd> fds;
  fds.reserve(objects.size());
  for (const auto& object : objects) {
    if (object.connection() != nullptr && object.connection()->has_buffered_input()) {
      ready.push_back(object);
    }
    fds.push_back(pollfd{object.fd(), POLLIN, 0});
  }
  if (!ready.empty()) return ready;
  const detail::deadline until(timeout.get());
  for (;;) {
    const int rc = ::poll(fds.data(), fds.size(), until.poll_ms());
    if (rc > 0) break;
    if (rc == 0) {
      if (until.never() || !until.expired()) continue;  // early wake from ms rounding
      return ready;
    }
    if (errno != EINTR) detail::throw_errno("poll connection::wait");
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents != 0) ready.push_back(objects[i]);
  }
  return ready;
}

}  // namespace connection

}  // namespace multiprocessing

/// A Connection crosses exec as its descriptor (Writer::attach_fd) and its direction; the
/// receiving process gets its own duplicate. Under fork a Connection argument is simply inherited.
template <>
struct multiprocessing::serializer<multiprocessing::Connection> {
  static constexpr std::string_view type_name = "multiprocessing.connection.Connection";
  static void save(multiprocessing::Writer& w, const multiprocessing::Connection& c) {
    const auto flags =
        static_cast<std::uint8_t>((c.readable() ? 1U : 0U) | (c.writable() ? 2U : 0U));
    w.save(w.attach_fd(c.fileno()));
    w.save(flags);
  }
  static multiprocessing::Connection load(multiprocessing::Reader& r) {
    const int passed = r.fd(r.load<std::uint32_t>());
    const auto flags = r.load<std::uint8_t>();
    // The passed descriptor is valid while loading only: keep a duplicate.
    const int fd = ::fcntl(passed, F_DUPFD_CLOEXEC, 0);
    if (fd == -1) {
      multiprocessing::detail::throw_errno("dup connection fd " + std::to_string(passed));
    }
    return {multiprocessing::detail::unique_fd(fd), (flags & 1U) != 0, (flags & 2U) != 0};
  }
};

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
// connection::Listener and connection::Client (Python: multiprocessing.connection.Listener and
// Client) carry the same frames over an AF_UNIX path or TCP, optionally authenticated with an
// HMAC-SHA256 challenge-response both ways (Python 3.12's handshake, see Listener; OpenSSL's
// libcrypto computes it):
//
//   mp::connection::Listener l({"127.0.0.1", 0}, key);   // or a path: Listener("/tmp/d/mp.sock")
//   auto c = mp::connection::Client(l.address(), key);   // in another process; l.accept() there
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
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

/// Where a Listener listens and a Client connects (Python: an address string for AF_UNIX, a
/// (host, port) tuple for AF_INET). A path: `Address("/tmp/x/mp.sock")` or just "…"; a TCP
/// address: `Address("127.0.0.1", 0)` or `{"127.0.0.1", port}` (port 0 lets the kernel pick).
/// A path that starts with a NUL byte names a socket in Linux's abstract namespace, as in Python
/// (`Address(std::string("\0name", 5))`): nothing in the file system, nothing to unlink.
class Address {
 public:
  Address() = default;
  Address(std::string path) : path_(std::move(path)) {}  // NOLINT(google-explicit-constructor)
  Address(const char* path) : path_(path) {}             // NOLINT(google-explicit-constructor)
  Address(std::string host, std::uint16_t port) : path_(std::move(host)), port_(port), tcp_(true) {}
  Address(const std::pair<std::string, std::uint16_t>& hp)  // NOLINT(google-explicit-constructor)
      : Address(hp.first, hp.second) {}

  /// An address from text, as a command line gives it: "host:port" (no '/' in it) for TCP,
  /// anything else an AF_UNIX path. @throws ValueError for a port that is not 0..65535.
  [[nodiscard]] static Address parse(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find('/') != std::string_view::npos) {
      return Address(std::string(text));
    }
    const std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || port.empty() || value > 65535) {
      throw ValueError("Address::parse: '" + std::string(port) + "' in '" + std::string(text) +
                       "' is not a port number");
    }
    return Address(std::string(text.substr(0, colon)), static_cast<std::uint16_t>(value));
  }

  /// True for a (host, port) address, false for an AF_UNIX path.
  [[nodiscard]] bool is_tcp() const noexcept { return tcp_; }
  /// The AF_UNIX path (empty for an unnamed peer). @throws ValueError for a TCP address.
  [[nodiscard]] const std::string& path() const {
    if (tcp_) throw ValueError("Address::path on a TCP address " + to_string());
    return path_;
  }
  /// The host of a TCP address. @throws ValueError for an AF_UNIX path.
  [[nodiscard]] const std::string& host() const {
    if (!tcp_) throw ValueError("Address::host on the AF_UNIX address " + to_string());
    return path_;
  }
  /// The port of a TCP address. @throws ValueError for an AF_UNIX path.
  [[nodiscard]] std::uint16_t port() const {
    if (!tcp_) throw ValueError("Address::port on the AF_UNIX address " + to_string());
    return port_;
  }
  /// "host:port" or the path (quoted; an abstract name's leading NUL shown as '@').
  [[nodiscard]] std::string to_string() const {
    if (tcp_) return path_ + ":" + std::to_string(port_);
    if (!path_.empty() && path_[0] == '\0') return "'@" + path_.substr(1) + "'";
    return "'" + path_ + "'";
  }
  friend bool operator==(const Address&, const Address&) = default;

  /// An Address crosses process boundaries (to tell a child where to connect).
  template <class Archive>
  void serialize(Archive& ar) {
    ar(path_, port_, tcp_);
  }

 private:
  std::string path_;
  std::uint16_t port_ = 0;
  bool tcp_ = false;
};

/// The default bound on a Listener's authentication handshake (see Listener).
inline constexpr std::chrono::seconds default_handshake_timeout{20};

/// A server socket that accepts Connections (Python: multiprocessing.connection.Listener), on an
/// AF_UNIX path or a TCP (host, port).
///
/// Authentication (`authkey` engaged): accept() runs Python 3.12's handshake both ways, first as
/// the challenger, then as the answerer; Client() runs it in the opposite order. Each challenge is
/// the message "#CHALLENGE#{sha256}" + 40 random bytes (OpenSSL RAND_bytes); the answer is
/// "{sha256}" + HMAC-SHA256(authkey, "{sha256}" + random bytes); the challenger compares it in
/// constant time (CRYPTO_memcmp) and replies "#WELCOME#" or "#FAILURE#". Only sha256 is accepted
/// (not Python 3.11's legacy md5). The messages ride this library's frames (see the file comment),
/// so a C++ peer cannot talk to a Python one; the handshake's content is Python's.
/// authkey == nullopt means no authentication, as Python's authkey=None (it does not default to
/// current_process().authkey(); pass that explicitly to use it).
///
/// Robustness: handshake messages are read with maxlength 256 and the whole handshake has a
/// deadline (`handshake_timeout`, 20 s by default), so an unauthenticated peer makes the listener
/// allocate at most a few hundred bytes and holds accept() at most that long. accept() serves one
/// peer at a time, as in Python: while a peer handshakes, the next ones wait in the backlog.
///
/// Not copyable; movable. The descriptor is close-on-exec. An AF_UNIX listener unlinks its path on
/// close() and on destruction, in the process that created it only (as Python's finalizer).
/// Thread-safety: none (one thread at a time), as in Python.
class Listener {
 public:
  /// Binds and listens. Python: Listener(address, family=None, backlog=1, authkey=None).
  /// @throws OSError (EADDRINUSE when the path exists or the port is taken, ENAMETOOLONG for a
  ///   path beyond 107 bytes...); OSError when the host does not resolve.
  explicit Listener(const Address& address,
                    std::optional<std::vector<unsigned char>> authkey = std::nullopt,
                    int backlog = 1, Timeout handshake_timeout = default_handshake_timeout);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  ~Listener() { close(); }

  /// Waits for a peer, authenticates it when there is an authkey, and returns the connection.
  /// Python: Listener.accept(). Blocks until a peer connects (then at most handshake_timeout).
  /// @throws AuthenticationError when the peer's key is wrong, it answers garbage, an oversized
  ///   message, closes, or stays silent past handshake_timeout (that peer is dropped; the listener
  ///   keeps working); OSError when closed.
  /// Memory ordering: none by itself; the returned connection orders as any Connection.
  /// Peer death: a peer that dies during the handshake is AuthenticationError ("the peer closed
  ///   the connection"); one that dies before accept() is skipped or seen as EOF on the result.
  [[nodiscard]] Connection accept() { return accept(Timeout{}); }
  /// accept() waiting at most `timeout` for a peer to connect (the handshake then has its own
  /// bound). @throws TimeoutError when no peer connected in time; otherwise as accept().
  [[nodiscard]] Connection accept(Timeout timeout);

  /// The bound address (for TCP, the actual port). Python: Listener.address.
  [[nodiscard]] const Address& address() const noexcept { return address_; }
  /// The peer address of the last accepted connection (an AF_UNIX client is usually unnamed:
  /// empty path). Python: Listener.last_accepted.
  [[nodiscard]] const std::optional<Address>& last_accepted() const noexcept {
    return last_accepted_;
  }
  /// Closes the socket and unlinks an AF_UNIX path. Idempotent. Python: Listener.close().
  void close() noexcept;
  /// True after close().
  [[nodiscard]] bool closed() const noexcept { return !fd_; }
  /// The listening descriptor (for connection::wait). @throws OSError when closed.
  [[nodiscard]] int fileno() const;

 private:
  detail::unique_fd fd_;
  Address address_;
  std::optional<std::vector<unsigned char>> authkey_;
  Timeout handshake_timeout_;
  std::optional<Address> last_accepted_;
  pid_t owner_ = -1;
};

/// Connects to a Listener and, when `authkey` is engaged, runs the handshake (answer first, then
/// challenge). Python: multiprocessing.connection.Client(address, family=None, authkey=None).
/// Blocks until connected and authenticated.
/// @throws AuthenticationError on a wrong key or a protocol error; OSError when the connection is
///   refused (ECONNREFUSED, ENOENT...).
/// Memory ordering: none by itself; the returned connection orders as any Connection.
/// Peer death: a listener that dies during the handshake is AuthenticationError (EOF).
[[nodiscard]] Connection Client(const Address& address,
                                std::optional<std::vector<unsigned char>> authkey = std::nullopt);
/// Client() with connect and handshake bounded by `timeout` together.
/// @throws TimeoutError when they did not complete in time (for instance the Listener has no
///   authkey and never sends a challenge); otherwise as Client().
[[nodiscard]] Connection Client(const Address& address,
                                std::optional<std::vector<unsigned char>> authkey, Timeout timeout);

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
    if (n >= 0) detail::take_passed_fds(msg, st.in_fds, "connection");
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

namespace detail {

inline constexpr std::string_view auth_challenge = "#CHALLENGE#";
inline constexpr std::string_view auth_welcome = "#WELCOME#";
inline constexpr std::string_view auth_failure = "#FAILURE#";
inline constexpr std::string_view auth_digest_prefix = "{sha256}";
inline constexpr std::size_t auth_random_length = 40;  // Python's MESSAGE_LENGTH
inline constexpr std::size_t auth_max_message = 256;   // Python's recv_bytes(256)

/// Why a handshake step failed: the listener reports every failure as AuthenticationError, the
/// client reports a timeout as TimeoutError.
struct auth_handshake_expired {};

/// Sends one frame (no descriptors) before `until`.
inline void handshake_send(int fd, std::string_view payload, const deadline& until) {
  std::string frame(frame_header_size, '\0');
  const std::uint64_t length = payload.size();
  for (std::size_t i = 0; i < 8; ++i) frame[i] = static_cast<char>((length >> (8 * i)) & 0xffU);
  frame += payload;
  std::size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n =
        ::send(fd, frame.data() + done, frame.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!poll_fd(fd, POLLOUT, until, "authentication handshake")) throw auth_handshake_expired{};
      continue;
    }
    throw AuthenticationError(std::string("authentication handshake: send: ") +
                              std::generic_category().message(errno));
  }
}

/// Receives one frame of at most auth_max_message bytes (and no descriptors) before `until`.
inline std::string handshake_recv(int fd, const deadline& until) {
  unsigned char header[frame_header_size];
  const auto check = [](read_status s) {
    if (s == read_status::timeout) throw auth_handshake_expired{};
    if (s == read_status::eof) {
      throw AuthenticationError("authentication handshake: the peer closed the connection");
    }
  };
  check(read_exact(fd, header, sizeof header, until, "authentication handshake"));
  std::uint64_t length = 0;
  std::uint32_t nfds = 0;
  for (std::size_t i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(header[i]) << (8 * i);
  for (std::size_t i = 0; i < 4; ++i) nfds |= static_cast<std::uint32_t>(header[8 + i]) << (8 * i);
  if (length > auth_max_message || nfds != 0) {
    throw AuthenticationError(
        "authentication handshake: bad message length " + std::to_string(length) + " (maxlength " +
        std::to_string(auth_max_message) + ")" + (nfds != 0 ? " or unexpected descriptors" : ""));
  }
  std::string payload(static_cast<std::size_t>(length), '\0');
  check(read_exact(fd, payload.data(), payload.size(), until, "authentication handshake"));
  return payload;
}

/// OpenSSL's description of its latest error (its error queue, not errno).
inline std::string openssl_error() {
  char text[256] = {};
  ::ERR_error_string_n(::ERR_get_error(), text, sizeof text);
  return text;
}

inline std::string hmac_sha256(std::span<const unsigned char> key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  static const unsigned char empty = 0;
  if (::HMAC(::EVP_sha256(), key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
             &out_len) == nullptr) {
    throw OSError("authentication handshake: HMAC-SHA256: " + openssl_error());
  }
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

/// Python 3.12: deliver_challenge(connection, authkey, digest_name='sha256').
inline void deliver_challenge(int fd, std::span<const unsigned char> key, const deadline& until) {
  unsigned char random[auth_random_length];
  if (::RAND_bytes(random, static_cast<int>(sizeof random)) != 1) {
    throw OSError("authentication handshake: RAND_bytes: " + openssl_error());
  }
  std::string message(auth_digest_prefix);
  message.append(reinterpret_cast<const char*>(random), sizeof random);
  handshake_send(fd, std::string(auth_challenge) + message, until);
  const std::string response = handshake_recv(fd, until);
  const std::string expected = std::string(auth_digest_prefix) + hmac_sha256(key, message);
  if (response.size() != expected.size() ||
      ::CRYPTO_memcmp(response.data(), expected.data(), expected.size()) != 0) {
    try {
      handshake_send(fd, auth_failure, until);
    } catch (...) {  // the peer may be gone already; the key mismatch is what to report
    }
    throw AuthenticationError(
        response.starts_with(auth_digest_prefix)
            ? "authentication handshake: digest received was wrong (the peers' authkeys differ)"
            : "authentication handshake: the peer did not answer the challenge with a {sha256} "
              "digest (does it have an authkey?)");
  }
  handshake_send(fd, auth_welcome, until);
}

/// Python 3.12: answer_challenge(connection, authkey).
inline void answer_challenge(int fd, std::span<const unsigned char> key, const deadline& until) {
  std::string message = handshake_recv(fd, until);
  if (!message.starts_with(auth_challenge)) {
    throw AuthenticationError(
        "authentication handshake: protocol error, expected a challenge (does the peer have an "
        "authkey?)");
  }
  message.erase(0, auth_challenge.size());
  if (!message.starts_with(auth_digest_prefix) || message.size() < auth_digest_prefix.size() + 20) {
    throw AuthenticationError(
        "authentication handshake: unsupported challenge (only {sha256} is accepted)");
  }
  handshake_send(fd, std::string(auth_digest_prefix) + hmac_sha256(key, message), until);
  const std::string reply = handshake_recv(fd, until);
  if (reply != auth_welcome) {
    throw AuthenticationError(
        "authentication handshake: digest sent was rejected (the peers' authkeys differ)");
  }
}

/// A sockaddr for `address`: AF_UNIX from the path, AF_INET/AF_INET6 from getaddrinfo.
struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_UNSPEC;
};

inline socket_address resolve(const connection::Address& address, const char* what) {
  socket_address out;
  if (!address.is_tcp()) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const std::string& path = address.path();
    const bool abstract = !path.empty() && path[0] == '\0';  // Linux's abstract namespace
    if (path.size() < (abstract ? 2u : 1u) || path.size() >= sizeof un.sun_path) {
      throw OSError(
          std::string(what) + ": AF_UNIX path " + address.to_string() +
              (path.size() < (abstract ? 2u : 1u) ? " is empty" : " is longer than 107 bytes"),
          ENAMETOOLONG);
    }
    std::memcpy(un.sun_path, path.data(), path.size());
    std::memcpy(&out.storage, &un, sizeof un);
    // An abstract name is exactly its bytes; a path ends with its NUL.
    out.length =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    out.family = AF_UNIX;
    return out;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(address.port());
  const int rc = ::getaddrinfo(address.host().c_str(), port.c_str(), &hints, &list);
  if (rc != 0 || list == nullptr) {
    throw OSError(std::string(what) + ": cannot resolve " + address.to_string() + ": " +
                  ::gai_strerror(rc));
  }
  std::memcpy(&out.storage, list->ai_addr, list->ai_addrlen);
  out.length = list->ai_addrlen;
  out.family = list->ai_family;
  ::freeaddrinfo(list);
  return out;
}

inline connection::Address to_address(const sockaddr_storage& storage, socklen_t length) {
  if (storage.ss_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&storage);
    const auto offset = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    if (length <= offset) return connection::Address(std::string{});
    if (un->sun_path[0] == '\0') {
      return connection::Address(
          std::string(un->sun_path, static_cast<std::size_t>(length - offset)));
    }
    return connection::Address(std::string(un->sun_path, ::strnlen(un->sun_path, length - offset)));
  }
  char host[NI_MAXHOST] = {};
  char port[NI_MAXSERV] = {};
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&storage), length, host, sizeof host, port,
                    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return connection::Address(std::string("?"), 0);
  }
  return connection::Address(host, static_cast<std::uint16_t>(std::stoul(port)));
}

inline void set_nonblocking(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags == -1 ||
      ::fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK)) == -1) {
    throw_errno("fcntl O_NONBLOCK");
  }
}

}  // namespace detail

namespace connection {

inline Listener::Listener(const Address& address, std::optional<std::vector<unsigned char>> authkey,
                          int backlog, Timeout handshake_timeout)
    : authkey_(std::move(authkey)), handshake_timeout_(handshake_timeout) {
  const auto where = detail::resolve(address, "Listener");
  detail::unique_fd fd(::socket(where.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) detail::throw_errno("Listener: socket");
  const auto fail = [&](const char* call) {
    const int err = errno;
    throw OSError("Listener " + address.to_string() + ": " + call + ": " +
                      std::generic_category().message(err),
                  err);
  };
  if (address.is_tcp()) {
    const int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1) {
      fail("setsockopt");
    }
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&where.storage), where.length) == -1) {
    fail("bind");
  }
  owner_ = ::getpid();
  fd_ = std::move(fd);
  if (::listen(fd_.get(), backlog) == -1) {
    const int err = errno;
    close();
    errno = err;
    fail("listen");
  }
  if (address.is_tcp()) {
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length) == -1) {
      const int err = errno;
      close();
      errno = err;
      fail("getsockname");
    }
    address_ = detail::to_address(bound, length);
  } else {
    address_ = address;
  }
}

inline Listener::Listener(Listener&& other) noexcept
    : fd_(std::move(other.fd_)),
      address_(std::move(other.address_)),
      authkey_(std::move(other.authkey_)),
      handshake_timeout_(other.handshake_timeout_),
      last_accepted_(std::move(other.last_accepted_)),
      owner_(std::exchange(other.owner_, -1)) {}

inline Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::move(other.fd_);
    address_ = std::move(other.address_);
    authkey_ = std::move(other.authkey_);
    handshake_timeout_ = other.handshake_timeout_;
    last_accepted_ = std::move(other.last_accepted_);
    owner_ = std::exchange(other.owner_, -1);
  }
  return *this;
}

inline void Listener::close() noexcept {
  if (!fd_) return;
  fd_.reset();
  if (!address_.is_tcp() && owner_ == ::getpid() && !address_.path().empty() &&
      address_.path()[0] != '\0') {
    ::unlink(address_.path().c_str());
  }
}

inline int Listener::fileno() const {
  if (!fd_) throw OSError("Listener: handle is closed", EBADF);
  return fd_.get();
}

inline Connection Listener::accept(Timeout timeout) {
  if (!fd_) throw OSError("Listener::accept: handle is closed", EBADF);
  const detail::deadline until(timeout.get());
  sockaddr_storage peer{};
  socklen_t length = 0;
  detail::unique_fd fd;
  for (;;) {
    if (!until.never() && !detail::poll_fd(fd_.get(), POLLIN, until, "Listener::accept")) {
      throw TimeoutError("Listener::accept on " + address_.to_string() +
                         ": no peer connected within the timeout");
    }
    length = sizeof peer;
    const int rc = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&peer), &length,
                             SOCK_CLOEXEC | (until.never() ? 0 : SOCK_NONBLOCK));
    if (rc >= 0) {
      fd.reset(rc);
      break;
    }
    // A peer that connected and left before accept4 (ECONNABORTED) or a spurious wakeup: retry.
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED) {
      continue;
    }
    detail::throw_errno("Listener::accept on " + address_.to_string());
  }
  if (!until.never()) detail::set_nonblocking(fd.get(), false);
  last_accepted_ = detail::to_address(peer, length);
  if (authkey_) {
    const detail::deadline handshake(handshake_timeout_.get());
    try {
      detail::deliver_challenge(fd.get(), *authkey_, handshake);
      detail::answer_challenge(fd.get(), *authkey_, handshake);
    } catch (const detail::auth_handshake_expired&) {
      throw AuthenticationError("Listener::accept on " + address_.to_string() +
                                ": the peer did not complete the authentication handshake "
                                "within the handshake timeout (dropped)");
    } catch (const AuthenticationError& e) {
      throw AuthenticationError("Listener::accept on " + address_.to_string() + ": " + e.what());
    }
  }
  return {std::move(fd), true, true};
}

inline Connection Client(const Address& address,
                         std::optional<std::vector<unsigned char>> authkey) {
  return Client(address, std::move(authkey), Timeout{});
}

inline Connection Client(const Address& address, std::optional<std::vector<unsigned char>> authkey,
                         Timeout timeout) {
  const detail::deadline until(timeout.get());
  const std::string what = "Client(" + address.to_string() + ")";
  const auto where = detail::resolve(address, what.c_str());
  detail::unique_fd fd(::socket(where.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) detail::throw_errno(what + ": socket");
  const auto timed_out = [&] {
    return TimeoutError(what + ": connect and authentication did not complete within the timeout");
  };
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&where.storage), where.length) == 0) {
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN && where.family == AF_UNIX) {
      // The listener's backlog is full: AF_UNIX reports it instead of queueing. Retry shortly.
      if (until.expired()) throw timed_out();
      pollfd none{-1, 0, 0};
      (void)::poll(&none, 1, std::min(10, until.never() ? 10 : until.poll_ms()));
      continue;
    }
    if (errno == EINPROGRESS) {
      if (!detail::poll_fd(fd.get(), POLLOUT, until, "Client connect")) throw timed_out();
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == -1) err = errno;
      if (err == 0) break;
      errno = err;
    }
    const int err = errno;
    throw OSError(what + ": connect: " + std::generic_category().message(err), err);
  }
  detail::set_nonblocking(fd.get(), false);
  if (authkey) {
    try {
      detail::answer_challenge(fd.get(), *authkey, until);
      detail::deliver_challenge(fd.get(), *authkey, until);
    } catch (const detail::auth_handshake_expired&) {
      throw TimeoutError(what +
                         ": the authentication handshake did not complete within the "
                         "timeout (does the Listener have an authkey?)");
    } catch (const AuthenticationError& e) {
      throw AuthenticationError(what + ": " + e.what());
    }
  }
  return {std::move(fd), true, true};
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

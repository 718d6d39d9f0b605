// SPDX-License-Identifier: MIT
// multiprocessing/detail/posix.hpp
//
// Every system call the library makes goes through here once: retried on EINTR, failures thrown as
// std::system_error carrying errno and the object's name. File descriptors are owned by unique_fd.
#pragma once

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace multiprocessing::detail {

/// Throws std::system_error for the current errno, naming the call and the object.
[[noreturn]] inline void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

/// Runs `call` until it stops failing with EINTR; returns its last result.
template <class Call>
auto retry_eintr(Call&& call) {
  for (;;) {
    auto result = call();
    if (result != -1 || errno != EINTR) return result;
  }
}

/// A move-only owner of a file descriptor (-1 when empty).
class unique_fd {
 public:
  constexpr unique_fd() noexcept = default;
  constexpr explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the held descriptor (errors of close(2) are not reportable and are ignored: the fd is
  /// released by the kernel in every case on Linux).
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// A point on CLOCK_MONOTONIC, or "never" (wait forever). Computed once per blocking call and
/// re-used across retries, so spurious wakeups never extend a timeout.
class deadline {
 public:
  using clock = std::chrono::steady_clock;
  deadline() noexcept = default;  // never
  explicit deadline(std::optional<std::chrono::nanoseconds> timeout) noexcept {
    if (timeout) at_ = clock::now() + *timeout;
  }
  /// A deadline `timeout` after the first wait that consults it rather than after its
  /// construction: a call that finds its data waiting never reads the clock (in a freshly forked
  /// child each first call costs page faults). For one thread's own use.
  [[nodiscard]] static deadline from_first_wait(std::chrono::nanoseconds timeout) noexcept {
    deadline d;
    d.pending_ = timeout;
    d.lazy_ = true;
    return d;
  }
  [[nodiscard]] bool never() const noexcept { return !at_ && !lazy_; }
  [[nodiscard]] bool expired() const noexcept {
    start();
    return at_ && clock::now() >= *at_;
  }
  /// Milliseconds for poll(2), rounded up so a wait never ends early; -1 means forever.
  [[nodiscard]] int poll_ms() const noexcept {
    start();
    if (!at_) return -1;
    const auto left = *at_ - clock::now();
    if (left <= clock::duration::zero()) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
  }

 private:
  void start() const noexcept {
    if (!lazy_) return;
    at_ = clock::now() + pending_;
    lazy_ = false;
  }
  mutable std::optional<clock::time_point> at_;
  mutable bool lazy_ = false;           // from_first_wait, not yet started: at_ is now + pending_
  std::chrono::nanoseconds pending_{};
};

/// Waits until `fd` reports one of `events` or the deadline passes. Returns false on timeout.
inline bool poll_fd(int fd, short events, const deadline& until, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, until.poll_ms());
    if (rc > 0) return true;
    if (rc == 0) {
      if (until.never()) continue;
      if (until.expired()) return false;
      continue;  // poll's millisecond rounding woke us a little early
    }
    if (errno != EINTR) throw_errno(std::string("poll ") + what);
  }
}

/// Writes all of `data`, retrying on EINTR and short writes. MSG_NOSIGNAL on sockets so a dead
/// peer is an EPIPE error, never a SIGPIPE that kills the caller.
inline void write_all(int fd, const void* data, std::size_t size, const char* what) {
  const auto* p = static_cast<const std::byte*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n == -1 && errno == ENOTSOCK) n = ::write(fd, p, size);
    if (n == -1) {
      if (errno == EINTR) continue;
      throw_errno(std::string("write ") + what);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

/// Outcome of read_exact.
enum class read_status { ok, eof, timeout };

/// Reads exactly `size` bytes unless the peer closes first (eof, also for a connection reset) or the
/// deadline passes (timeout).
inline read_status read_exact(int fd, void* out, std::size_t size, const deadline& until,
                              const char* what) {
  auto* p = static_cast<std::byte*>(out);
  while (size > 0) {
    if (!until.never() && !poll_fd(fd, POLLIN, until, what)) return read_status::timeout;
    const ssize_t n = ::read(fd, p, size);
    if (n == 0) return read_status::eof;
    if (n == -1) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == ECONNRESET) return read_status::eof;  // the peer died with our data unread
      throw_errno(std::string("read ") + what);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return read_status::ok;
}

/// The most descriptors one SCM_RIGHTS message carries (the kernel's SCM_MAX_FD).
inline constexpr std::size_t max_passed_fds = 253;

/// cmsghdr-aligned room for the ancillary data of one message carrying max_passed_fds
/// descriptors, kept on the stack: no allocation per message.
using passed_fds_buffer =
    std::array<cmsghdr, (CMSG_SPACE(sizeof(int) * max_passed_fds) + sizeof(cmsghdr) - 1) / sizeof(cmsghdr)>;

/// One sendmsg(2) of `data` with `fds` as SCM_RIGHTS ancillary data and `flags` (MSG_NOSIGNAL is
/// added). Returns what sendmsg returned (-1 with errno set on failure, EINTR retried).
inline ssize_t sendmsg_with_fds(int sock, std::span<const std::byte> data, std::span<const int> fds,
                                int flags) {
  if (fds.size() > max_passed_fds) {  // as the kernel would say
    errno = EINVAL;
    return -1;
  }
  iovec iov{const_cast<std::byte*>(data.data()), data.size()};
  passed_fds_buffer control;
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (!fds.empty()) {
    const std::size_t space = CMSG_SPACE(sizeof(int) * fds.size());
    msg.msg_control = control.data();
    msg.msg_controllen = space;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  return retry_eintr([&] { return ::sendmsg(sock, &msg, flags | MSG_NOSIGNAL); });
}

/// Sends `data` (at least one byte) together with `fds` as SCM_RIGHTS ancillary data.
inline void send_with_fds(int sock, std::span<const std::byte> data, std::span<const int> fds,
                          const char* what) {
  if (fds.size() > max_passed_fds || data.empty()) {
    throw std::invalid_argument(std::string("send_with_fds ") + what + ": 1+ bytes and at most " +
                                std::to_string(max_passed_fds) + " descriptors");
  }
  const ssize_t n = sendmsg_with_fds(sock, data, fds, 0);
  if (n == -1) throw_errno(std::string("sendmsg ") + what);
  const auto sent = static_cast<std::size_t>(n);
  if (sent < data.size()) write_all(sock, data.data() + sent, data.size() - sent, what);
}

/// Takes ownership of the descriptors a recvmsg(2) received as SCM_RIGHTS, appending them to
/// `fds` (any sequence of unique_fd). @throws std::system_error (EMSGSIZE) when the kernel dropped
/// some (MSG_CTRUNC).
template <class Fds>
void take_passed_fds(msghdr& msg, Fds& fds, const char* what) {
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    errno = EMSGSIZE;
    throw_errno(std::string("recvmsg ") + what + ": descriptors were dropped");
  }
}

/// One recvmsg(2) into `data` with room for max_passed_fds descriptors, appended to `fds` (owned,
/// close-on-exec; see take_passed_fds). Returns what recvmsg returned (-1 with errno set).
inline ssize_t recvmsg_with_fds(int sock, std::span<std::byte> data, std::vector<unique_fd>& fds,
                                int flags, const char* what) {
  iovec iov{data.data(), data.size()};
  passed_fds_buffer control;
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size() * sizeof(cmsghdr);
  const ssize_t n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n >= 0) take_passed_fds(msg, fds, what);
  return n;
}

/// Receives exactly data.size() bytes; descriptors arriving with them are appended to `fds`
/// (owned, close-on-exec). Returns eof/timeout like read_exact.
inline read_status recv_with_fds(int sock, std::span<std::byte> data, std::vector<unique_fd>& fds,
                                 const deadline& until, const char* what) {
  std::size_t got = 0;
  // With a deadline, data already waiting is taken at once and poll() runs only when it is not.
  const int flags = until.never() ? 0 : MSG_DONTWAIT;
  while (got < data.size()) {
    const ssize_t n = recvmsg_with_fds(sock, data.subspan(got), fds, flags, what);
    if (n == -1) {
      if (errno == EAGAIN) {
        if (!poll_fd(sock, POLLIN, until, what)) return read_status::timeout;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return read_status::eof;
      throw_errno(std::string("recvmsg ") + what);
    }
    if (n == 0) return read_status::eof;
    got += static_cast<std::size_t>(n);
  }
  return read_status::ok;
}

/// read_exact for a socket: bytes already waiting are taken without a poll(2) first (one system
/// call instead of two when the peer has written). Descriptors sent along are closed.
inline read_status recv_exact(int sock, void* out, std::size_t size, const deadline& until,
                              const char* what) {
  std::vector<unique_fd> unexpected;
  return recv_with_fds(sock, std::span(static_cast<std::byte*>(out), size), unexpected, until, what);
}

/// A connected AF_UNIX stream socket pair, both ends close-on-exec.
inline std::pair<unique_fd, unique_fd> socket_pair(const char* what) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
    throw_errno(std::string("socketpair ") + what);
  }
  return {unique_fd(sv[0]), unique_fd(sv[1])};
}

/// A new non-blocking, close-on-exec eventfd, for waking a thread that sleeps in poll().
/// @throws OSError naming `what`.
inline unique_fd make_eventfd(const char* what) {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd == -1) throw_errno(std::string("eventfd ") + what);
  return unique_fd(fd);
}

/// Makes eventfd `fd` readable (adds 1 to its count).
inline void signal_eventfd(int fd) noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

/// Empties eventfd `fd` (reads its count), so that it is readable again only once signalled.
inline void drain_eventfd(int fd) noexcept {
  std::uint64_t value = 0;
  [[maybe_unused]] const ssize_t n = ::read(fd, &value, sizeof value);
}

/// A pipe (read end, write end), both close-on-exec.
inline std::pair<unique_fd, unique_fd> make_pipe(const char* what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) == -1) throw_errno(std::string("pipe2 ") + what);
  return {unique_fd(p[0]), unique_fd(p[1])};
}

/// Ends the process at once, as _exit(2), through syscall(), which every parent that forks has
/// called already (pidfd_open): see prebind_child_calls().
[[noreturn]] inline void exit_now(int code) noexcept {
  ::syscall(SYS_exit_group, code);
  ::_exit(code);  // not reached
}

/// pidfd_open(2): a descriptor that refers to process `pid` and becomes readable when it ends.
inline unique_fd pidfd_open(pid_t pid) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);  // pidfds are always close-on-exec
  if (fd == -1) throw_errno("pidfd_open pid " + std::to_string(pid));
  return unique_fd(static_cast<int>(fd));
}

/// True when ended children vanish without a zombie (SIGCHLD ignored or SA_NOCLDWAIT): a fast
/// child may then be gone before the parent can pidfd_open() it.
inline bool children_auto_reaped() noexcept {
  struct sigaction current {};
  if (::sigaction(SIGCHLD, nullptr, &current) == -1) return false;
  return current.sa_handler == SIG_IGN || (current.sa_flags & SA_NOCLDWAIT) != 0;
}

/// pidfd_send_signal(2). Returns false when the process has already ended (ESRCH).
inline bool pidfd_send_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0) return true;
  if (errno == ESRCH) return false;
  throw_errno("pidfd_send_signal signal " + std::to_string(sig));
}

#ifndef P_PIDFD
inline constexpr idtype_t P_PIDFD = static_cast<idtype_t>(3);
#endif

/// Python's exit code for a siginfo from waitid: the exit status, or -N for signal N.
inline int exitcode_from(const siginfo_t& info) noexcept {
  return info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
}

/// Python's exit code for a wait(2) status word.
inline int exitcode_from_status(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return 255;
}

/// Exit code reported for a child whose status the kernel discarded: the application set SIGCHLD
/// to SIG_IGN, so children are reaped automatically and their exit status is lost.
inline constexpr int lost_exit_status = 255;

/// Reaps the child behind `pidfd` if it has ended (or waits for it when `block`). Returns its
/// Python exit code, or nullopt when it is still running.
inline std::optional<int> reap_pidfd(int pidfd, bool block) {
  siginfo_t info{};
  const int flags = WEXITED | (block ? 0 : WNOHANG);
  const int rc = retry_eintr([&] {
    return ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, flags);
  });
  if (rc == -1 && errno == ECHILD) {
    // Auto-reaped (SIGCHLD ignored): the pidfd still tells whether the process has ended.
    pollfd p{pidfd, POLLIN, 0};
    if (retry_eintr([&] { return ::poll(&p, 1, block ? -1 : 0); }) == 1) return lost_exit_status;
    return std::nullopt;
  }
  if (rc == -1) throw_errno("waitid pidfd " + std::to_string(pidfd));
  if (info.si_pid == 0) return std::nullopt;
  return exitcode_from(info);
}

}  // namespace multiprocessing::detail

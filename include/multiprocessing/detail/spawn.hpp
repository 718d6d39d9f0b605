// SPDX-License-Identifier: MIT
// multiprocessing/detail/spawn.hpp
//
// Starting a child from a fresh execution of the same program (spawn), and the fork server that
// forks such children on request (forkserver).
//
// spawn: posix_spawn(/proc/self/exe, parent's argv, environ + MP_SPAWN_FD=<fd>). The child's main()
// calls mp::freeze_support(), which finds the variable, reads the request from <fd>, checks that
// it runs the same binary, rebuilds the target, acknowledges, runs it and _exit()s.
//
// forkserver: the server is a spawned child (MP_FORKSERVER_FD=<fd>) that only forks. It keeps one
// child forked ahead and offers it on the control socket: u32 pid with its pidfd, the client's
// end of a socket to the child and the read end of the pipe for its exit code (SCM_RIGHTS). The
// client takes the offer and sends the server one byte (fork the next), then sends the child a
// byte flagging which of its current stdout/stderr follow as descriptors (the child uses them
// instead of the server's) and runs the spawn handshake with it over the same socket. The child
// writes its exit code into the pipe as it ends; the server, which reaps it through its pidfd,
// writes it too (the one read when the child never got that far).
//
// Wire format of a request (both methods): u64 length (sent with the parent's pidfd as SCM_RIGHTS)
// followed by the payload: u32 magic, u32 version, code_ref of the decoder, child_identity, then the
// decoder's own bytes. Answer: u8 status (0 ok, 1 failed), u32 length, message.
// Every step has a deadline (MP_HANDSHAKE_TIMEOUT seconds, default 30): a broken spawn reports
// why instead of hanging.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include "../errors.hpp"
#include "../serialize.hpp"
#include "child.hpp"
#include "code_ref.hpp"
#include "posix.hpp"
#include "runtime.hpp"
#include "target.hpp"

extern char** environ;  // NOLINT: POSIX

namespace multiprocessing::detail {

inline constexpr const char* spawn_env = "MP_SPAWN_FD";
inline constexpr const char* forkserver_env = "MP_FORKSERVER_FD";
inline constexpr std::uint32_t spawn_magic = 0x4d505350;  // "MPSP"
inline constexpr std::uint32_t spawn_version = 1;
inline constexpr std::uint64_t max_request_size = std::uint64_t{1} << 34;  // 16 GiB

/// How long each handshake step may take: MP_HANDSHAKE_TIMEOUT (seconds) or 30 s.
[[nodiscard]] inline std::chrono::nanoseconds handshake_timeout() {
  if (const char* v = std::getenv("MP_HANDSHAKE_TIMEOUT")) {
    char* end = nullptr;
    const double s = std::strtod(v, &end);
    if (end != v && s > 0 && s < 1e6) {
      return std::chrono::ceil<std::chrono::nanoseconds>(std::chrono::duration<double>(s));
    }
  }
  return std::chrono::seconds(30);
}

/// The command line this process was started with (so a spawned child's main() sees the same).
[[nodiscard]] inline std::vector<std::string> read_own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::string current;
  for (char c : all) {
    if (c == '\0') {
      args.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) args.push_back(std::move(current));
  if (args.empty()) args.emplace_back("/proc/self/exe");
  return args;
}

/// Set in the fork server's environment when spawn_self() added LD_BIND_NOW there (the server
/// removes both once loaded, so that its children's programs never see them).
inline constexpr const char* bind_now_added_env = "MP_BIND_NOW_ADDED";

/// posix_spawn of this very binary with `env_name`=<fd> added to the environment and `fd` kept
/// open in the child (every other close-on-exec descriptor is closed by exec). `bind_now`: the
/// child's dynamic loader resolves every call at load time (LD_BIND_NOW), for the fork server:
/// otherwise each of its children resolves the calls the server itself never made, and each
/// resolution reads symbol tables of every loaded library, pages a fork does not map into the
/// child (a dozen calls, hundreds of microseconds of page faults per start on a VM).
[[nodiscard]] inline pid_t spawn_self(int fd, const char* env_name, bool bind_now = false) {
  std::vector<std::string> args;
  {
    runtime& rt = runtime::get();
    std::lock_guard lock(rt.mu);
    if (rt.argv.empty()) rt.argv = read_own_argv();
    args = rt.argv;
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string marker = std::string(env_name) + "=" + std::to_string(fd);
  std::vector<char*> envp;
  const std::string prefix = std::string(env_name) + "=";
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with(prefix)) continue;
    envp.push_back(*e);
  }
  envp.push_back(marker.data());
  std::string bind_now_marker = std::string(bind_now_added_env) + "=1";
  std::string bind_now_var = "LD_BIND_NOW=1";
  if (bind_now && std::getenv("LD_BIND_NOW") == nullptr) {
    envp.push_back(bind_now_var.data());
    envp.push_back(bind_now_marker.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  // dup2(fd, fd) in a spawn file action clears close-on-exec on that one descriptor (glibc >= 2.29).
  ::posix_spawn_file_actions_adddup2(&actions, fd, fd);
  sigset_t none;
  sigemptyset(&none);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    throw_errno("posix_spawn /proc/self/exe");
  }
  return pid;
}

/// A spawn request: its bytes, and the descriptors its handles attached (borrowed: they stay
/// open while the target they belong to lives, which covers the handshake).
struct spawn_request_t {
  std::vector<std::byte> bytes;
  std::vector<int> fds;
};

/// The spawn request for `target` started as `who`.
[[nodiscard]] inline spawn_request_t spawn_request(const target_base& target,
                                                   const child_identity& who) {
  serialize::Writer out;
  out.save(spawn_magic);
  out.save(spawn_version);
  out.save(target.spawn_entry());
  out.save(who);
  target.encode(out);
  std::vector<int> fds(out.fds().begin(), out.fds().end());
  if (fds.size() + 1 > max_passed_fds) {
    throw ProcessError("a spawned target's arguments hold " + std::to_string(fds.size()) +
                       " descriptors; at most " + std::to_string(max_passed_fds - 1) + " can be passed");
  }
  return {std::move(out).take(), std::move(fds)};
}

/// How the parent side of a handshake ended.
struct handshake_result {
  enum { ok, refused, gone, timed_out } outcome = ok;
  std::string message;  // the child's reason, when refused
};

/// Parent side of the handshake, first half: queues the length prefix, carrying as SCM_RIGHTS the
/// parent's pidfd and then the request's descriptors, and as much of the request as the socket
/// buffer takes, before the child exists, so a starting child finds its request waiting instead
/// of asking for it. Returns the bytes queued.
inline std::size_t queue_request(int sock, const spawn_request_t& request_with_fds, int parent_pidfd) {
  const std::span<const std::byte> request = request_with_fds.bytes;
  const std::uint64_t length = request.size();
  std::vector<int> fds{parent_pidfd};
  fds.insert(fds.end(), request_with_fds.fds.begin(), request_with_fds.fds.end());
  send_with_fds(sock, std::as_bytes(std::span(&length, 1)), fds, "spawn request");
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(sock, request.data() + sent, request.size() - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == -1) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;  // the buffer is full: the rest goes once the child reads
      throw_errno("send spawn request");
    }
    sent += static_cast<std::size_t>(n);
  }
  return sent;
}

/// Parent side of the handshake, second half: sends the rest of the request and waits for the
/// child's answer, each step bounded by the handshake timeout.
inline handshake_result finish_handshake(int sock, std::span<const std::byte> request, std::size_t sent) {
  const deadline until(handshake_timeout());
  while (sent < request.size()) {
    // A child that never reads (it does not call freeze_support) is caught by the deadline.
    if (!poll_fd(sock, POLLOUT, until, "spawn request")) return {handshake_result::timed_out, {}};
    const ssize_t n = ::send(sock, request.data() + sent, request.size() - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == -1) {
      if (errno == EINTR || errno == EAGAIN) continue;
      if (errno == EPIPE || errno == ECONNRESET) return {handshake_result::gone, {}};
      throw_errno("send spawn request");
    }
    sent += static_cast<std::size_t>(n);
  }
  std::array<std::byte, 5> head{};  // u8 status, u32 length
  const read_status rs = recv_exact(sock, head.data(), head.size(), until, "spawn answer");
  if (rs == read_status::timeout) return {handshake_result::timed_out, {}};
  if (rs == read_status::eof) return {handshake_result::gone, {}};
  if (head[0] == std::byte{0}) return {};
  std::uint32_t size = 0;
  std::memcpy(&size, head.data() + 1, sizeof size);
  std::string message(std::min<std::uint32_t>(size, 1u << 16), '\0');
  if (recv_exact(sock, message.data(), message.size(), until, "spawn answer") != read_status::ok) {
    message = "(message lost)";
  }
  return {handshake_result::refused, std::move(message)};
}

/// Child side of the handshake, then the child's whole life. Never returns. `exit_report`: where a
/// fork server's child reports its own exit code (see report_exit()); `limit`: each step's
/// deadline, counted from its first wait (the request is usually waiting already).
[[noreturn]] inline void spawn_child_main(unique_fd sock, unique_fd exit_report = {},
                                          std::chrono::nanoseconds limit = handshake_timeout()) noexcept {
  auto answer = [&](std::uint8_t status, const std::string& message) {
    try {
      const auto size = static_cast<std::uint32_t>(message.size());
      std::string frame(1 + sizeof size, '\0');  // one write: u8 status, u32 length, message
      frame[0] = static_cast<char>(status);
      std::memcpy(frame.data() + 1, &size, sizeof size);
      frame += message;
      write_all(sock.get(), frame.data(), frame.size(), "spawn answer");
    } catch (...) {  // the parent gave up on us: nothing left to tell
    }
  };
  std::unique_ptr<target_base> target;
  try {
    const deadline until = deadline::from_first_wait(limit);
    std::uint64_t length = 0;
    std::vector<unique_fd> fds;
    if (recv_with_fds(sock.get(), std::as_writable_bytes(std::span(&length, 1)), fds, until,
                      "spawn request") != read_status::ok) {
      ::_exit(1);  // the parent is gone or never wrote: nobody to report to
    }
    if (length > max_request_size) {
      answer(1, "spawn request of " + std::to_string(length) + " bytes exceeds the limit");
      ::_exit(1);
    }
    std::vector<std::byte> request(static_cast<std::size_t>(length));
    if (recv_exact(sock.get(), request.data(), request.size(), until, "spawn request") !=
        read_status::ok) {
      ::_exit(1);
    }
    if (fds.empty()) throw ProcessError("spawn request arrived without the parent's pidfd");
    // fds[0] is the parent's pidfd; the rest belong to the request's handles, which dup what
    // they keep (these close when the handshake ends).
    std::vector<int> passed;
    for (std::size_t i = 1; i < fds.size(); ++i) passed.push_back(fds[i].get());
    serialize::Reader in(request, passed);
    if (in.load<std::uint32_t>() != spawn_magic || in.load<std::uint32_t>() != spawn_version) {
      throw ProcessError("spawn request has an unknown format (different library version?)");
    }
    const auto entry = in.load<code_ref>();
    auto who = in.load<child_identity>();
    spawn_decoder decode = nullptr;
    const std::uintptr_t addr = resolve_code_ref(entry);
    std::memcpy(&decode, &addr, sizeof decode);
    target = decode(in);
    if (in.remaining() != 0) throw SerializationError("spawn request has trailing bytes");
    become_child(who, std::move(fds.front()));
    runtime::get().exit_report = std::move(exit_report);
  } catch (const std::exception& e) {
    answer(1, e.what());
    ::_exit(1);
  } catch (...) {
    answer(1, "unknown error while decoding the spawn request");
    ::_exit(1);
  }
  answer(0, {});
  sock.reset();
  run_child([&] { target->invoke(); });
}

/// Who the parent is, for the child's runtime.
[[nodiscard]] inline child_identity identity_for_child(process_state& child) {
  child_identity who;
  {
    std::lock_guard lock(child.mu);
    who.name = child.name;
    who.identity = child.identity;
    who.daemon = child.daemon;
  }
  runtime& rt = runtime::get();
  std::lock_guard lock(rt.mu);
  who.authkey = rt.self->authkey;
  who.parent_pid = ::getpid();
  who.parent_name = rt.self->name;
  who.method = rt.method;
  return who;
}

// ---------------------------------------------------------------------------------------------
// The fork server.

/// Signal dispositions the server changes for itself and gives its children back.
struct client_signals {
  struct sigaction sigchld {};
  struct sigaction sigpipe {};
};

/// A forked child's life before it is taken: it waits, idle, on the socket the client got with
/// the offer, for a byte flagging which of the client's stdout (bit 0) and stderr (bit 1) follow
/// as descriptors; then it becomes the client's child, running the spawn handshake over the same
/// socket. Ends quietly when the client drops the offer (it exited, or its server died).
[[noreturn]] inline void forkserver_child_main(unique_fd sock, unique_fd exit_report,
                                               const client_signals& client,
                                               std::chrono::nanoseconds limit) noexcept {
  std::uint8_t request = 0;
  std::vector<unique_fd> passed;
  try {
    if (recv_with_fds(sock.get(), std::as_writable_bytes(std::span(&request, 1)), passed, deadline(),
                      "forkserver request") != read_status::ok) {
      ::_exit(0);
    }
  } catch (...) {
    ::_exit(0);
  }
  const std::size_t expected = ((request & 1u) != 0 ? 1u : 0u) + ((request & 2u) != 0 ? 1u : 0u);
  if (passed.size() != expected) ::_exit(1);  // the client's handshake sees it end
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGINT, &default_action, nullptr);
  ::sigaction(SIGCHLD, &client.sigchld, nullptr);
  ::sigaction(SIGPIPE, &client.sigpipe, nullptr);
  // The client's stdout/stderr as they are now, not as they were when the server started.
  std::size_t next = 0;
  if ((request & 1u) != 0) ::dup2(passed[next++].get(), STDOUT_FILENO);
  if ((request & 2u) != 0) ::dup2(passed[next++].get(), STDERR_FILENO);
  passed.clear();
  spawn_child_main(std::move(sock), std::move(exit_report), limit);
}

/// The server's whole life. It keeps one child forked ahead of the client's need and offers it on
/// the control socket: its pid, a pidfd, the client's end of a socket to it and the read end of
/// the pipe that will carry its exit code. The client takes the offer, tells the server with one
/// byte (the server forks the next child meanwhile) and talks to the child directly, so a start
/// costs no fork and no round trip through the server. The server reaps every child through its
/// pidfd and writes the exit code into its pipe. Single threaded; ends when the control socket
/// closes (the client exited or was killed); the child then on offer ends with it.
[[noreturn]] inline void forkserver_main(unique_fd control) noexcept {
  ::signal(SIGINT, SIG_IGN);  // Ctrl-C goes to the client's process group, not to us
  // The server reaps its children itself, so it keeps their zombies even if the client ignores
  // SIGCHLD (an exec inherits that); an exit code it reports after the child reported it itself
  // may find the client's end closed (EPIPE, not SIGPIPE). Each child gets the client's back.
  client_signals client;
  struct sigaction keep_zombies {}, ignore {};
  keep_zombies.sa_handler = SIG_DFL;
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGCHLD, &keep_zombies, &client.sigchld);
  ::sigaction(SIGPIPE, &ignore, &client.sigpipe);
  // Looked up once here, inherited by every child: a fork does not copy the page tables of code,
  // so each first call of a function in a child faults its pages in (costly in a VM).
  (void)runtime::get().devnull_fd();
  (void)main_program();
  const std::chrono::nanoseconds limit = handshake_timeout();
  struct child_rec {
    unique_fd pidfd;
    unique_fd status;  // write end of the client's exit-code pipe
  };
  std::vector<child_rec> children;
  // Forks the next child and offers it; an offer of pid -1 when fork() failed.
  auto offer_child = [&] {
    auto [ours, theirs] = socket_pair("forkserver child");
    auto [status_r, status_w] = make_pipe("forkserver exit code");
    const pid_t pid = ::fork();
    if (pid == 0) {
      control.reset();
      children.clear();
      ours.reset();
      status_r.reset();
      forkserver_child_main(std::move(theirs), std::move(status_w), client, limit);
    }
    std::int32_t offer = pid;
    unique_fd pidfd;
    if (pid > 0) pidfd = pidfd_open(pid);
    const int fds[] = {pidfd.get(), ours.get(), status_r.get()};
    send_with_fds(control.get(), std::as_bytes(std::span(&offer, 1)),
                  pid > 0 ? std::span<const int>(fds) : std::span<const int>(), "forkserver offer");
    if (pid > 0) children.push_back({std::move(pidfd), std::move(status_w)});
  };
  try {
    const std::uint8_t ready = 1;
    write_all(control.get(), &ready, 1, "forkserver ready");
    offer_child();
    for (;;) {
      std::vector<pollfd> fds{{control.get(), POLLIN, 0}};
      for (auto& c : children) fds.push_back({c.pidfd.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) == -1) {
        if (errno == EINTR) continue;
        throw_errno("poll forkserver");
      }
      for (std::size_t i = fds.size() - 1; i >= 1; --i) {
        if (fds[i].revents == 0) continue;
        auto& c = children[i - 1];
        const std::optional<int> code = reap_pidfd(c.pidfd.get(), true);
        const std::int32_t value = code.value_or(255);
        try {
          write_all(c.status.get(), &value, sizeof value, "forkserver exit code");
        } catch (const std::system_error&) {  // the client has its code already, or is gone
        }
        children.erase(children.begin() + static_cast<std::ptrdiff_t>(i - 1));
      }
      if (fds[0].revents == 0) continue;
      std::uint8_t taken = 0;
      if (read_exact(control.get(), &taken, 1, deadline(), "forkserver request") != read_status::ok) {
        break;  // the client is gone
      }
      offer_child();
    }
  } catch (...) {
  }
  ::_exit(0);
}

/// A child the fork server forked: its pid, a pidfd (for signals and waiting), the socket its
/// handshake runs over and the pipe on which its exit code arrives.
struct forkserver_child {
  pid_t pid = 0;
  unique_fd pidfd;
  unique_fd sock;
  unique_fd status;
};

/// Starts this process's fork server if it is not running. Caller holds rt.forkserver.mu.
inline void ensure_forkserver(runtime::forkserver_link& link) {
  if (link.control) return;
  auto [mine, theirs] = socket_pair("forkserver control");
  const pid_t pid = spawn_self(theirs.get(), forkserver_env, true);
  theirs.reset();
  unique_fd pidfd = pidfd_open(pid);
  std::uint8_t ready = 0;
  const read_status rs =
      read_exact(mine.get(), &ready, 1, deadline(handshake_timeout()), "forkserver ready");
  if (rs != read_status::ok) {
    pidfd_send_signal(pidfd.get(), SIGKILL);
    const auto code = reap_pidfd(pidfd.get(), true);
    throw ProcessError(
        "the fork server did not start (" +
        std::string(rs == read_status::timeout ? "no answer in time"
                                               : "exit code " + std::to_string(code.value_or(255))) +
        "): does main() begin with mp::freeze_support()?");
  }
  link.control = std::move(mine);
  link.pidfd = std::move(pidfd);
  link.pid = pid;
}

/// Stops the fork server (closing its control socket ends it) and reaps it.
inline void stop_forkserver(runtime::forkserver_link& link) noexcept {
  if (!link.control) return;
  link.control.reset();
  try {
    if (!poll_fd(link.pidfd.get(), POLLIN, deadline(std::chrono::seconds(2)), "forkserver exit")) {
      pidfd_send_signal(link.pidfd.get(), SIGKILL);
    }
    reap_pidfd(link.pidfd.get(), true);
  } catch (...) {
  }
  link.pidfd.reset();
  link.pid = 0;
}

/// Takes the child the fork server has on offer (restarting a server that died once), hands it
/// this process's current stdout and stderr, and asks the server for the next one.
[[nodiscard]] inline forkserver_child forkserver_fork() {
  runtime::forkserver_link& link = runtime::get().forkserver;
  std::lock_guard lock(link.mu);
  int dead_offers = 0;
  for (int attempt = 0;; ++attempt) {
    ensure_forkserver(link);
    std::int32_t pid = 0;
    std::vector<unique_fd> got;
    read_status rs = read_status::eof;
    // An offer read after the server died is stale: its child's exit code could never be told.
    if (!poll_fd(link.pidfd.get(), POLLIN, deadline(std::chrono::nanoseconds::zero()), "forkserver")) {
      try {
        rs = recv_with_fds(link.control.get(), std::as_writable_bytes(std::span(&pid, 1)), got,
                           deadline(handshake_timeout()), "forkserver offer");
      } catch (const std::system_error&) {
        rs = read_status::eof;
      }
    }
    if (rs == read_status::ok && (pid <= 0 || got.size() == 3)) {
      const std::uint8_t next = 1;  // the server forks the next child while this one starts
      try {
        write_all(link.control.get(), &next, 1, "forkserver request");
      } catch (const std::system_error&) {  // the server died: the next start restarts it
      }
      if (pid <= 0) throw ProcessError("the fork server could not fork");
      forkserver_child child{pid, std::move(got[0]), std::move(got[1]), std::move(got[2])};
      // Request byte: bit 0 = our stdout follows, bit 1 = our stderr follows.
      std::uint8_t request = 0;
      std::vector<int> fds;
      for (const int stdio : {STDOUT_FILENO, STDERR_FILENO}) {
        if (::fcntl(stdio, F_GETFD) == -1) continue;
        request = static_cast<std::uint8_t>(request | (stdio == STDOUT_FILENO ? 1u : 2u));
        fds.push_back(stdio);
      }
      if (sendmsg_with_fds(child.sock.get(), std::as_bytes(std::span(&request, 1)), fds, 0) == 1) {
        return child;
      }
      if (errno != EPIPE && errno != ECONNRESET) throw_errno("sendmsg forkserver request");
      // The child died on offer (somebody killed it): take the next one, a few times at most.
      if (++dead_offers < 3) {
        --attempt;
        continue;
      }
      throw ProcessError("the fork server's children end before they start");
    }
    stop_forkserver(link);
    if (attempt == 1) throw ProcessError("the fork server is not answering");
  }
}

}  // namespace multiprocessing::detail

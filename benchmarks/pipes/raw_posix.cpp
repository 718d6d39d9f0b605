// SPDX-License-Identifier: MIT
// The floor: a socketpair(AF_UNIX, SOCK_STREAM) driven with blocking read(2)/write(2) and no
// framing (the message size is known to both sides), the child from fork().
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "pipes.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

void write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "write socketpair");
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

void read_all(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t k = ::read(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "read socketpair");
    }
    if (k == 0) throw std::runtime_error("raw: unexpected EOF");
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

/// A socketpair and a forked child that runs `child(fd)` on its end, then exits.
template <class Child>
struct Peer {
  int fd = -1;
  pid_t pid = -1;

  explicit Peer(Child child) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
      throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    pid = ::fork();
    if (pid == -1) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      ::close(sv[0]);
      try {
        child(sv[1]);
      } catch (...) {
        ::_exit(1);
      }
      ::_exit(0);
    }
    ::close(sv[1]);
    fd = sv[0];
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    ::close(fd);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  void join() {
    ::close(fd);
    fd = -1;
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("raw child failed");
  }
};

}  // namespace

double bench::raw_round_trip_us(std::int64_t trips) {
  Peer echo([trips](int fd) {
    std::int64_t v = 0;
    for (std::int64_t i = 0; i < trips; ++i) {
      read_all(fd, &v, sizeof v);
      write_all(fd, &v, sizeof v);
    }
  });
  std::int64_t v = -1;
  write_all(echo.fd, &v, sizeof v);  // untimed, as ours
  read_all(echo.fd, &v, sizeof v);
  const auto t0 = clock_type::now();
  for (std::int64_t i = 1; i < trips; ++i) {
    write_all(echo.fd, &i, sizeof i);
    read_all(echo.fd, &v, sizeof v);
    if (v != i) throw std::runtime_error("raw echo is wrong");
  }
  const double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
  echo.join();
  return us / static_cast<double>(trips - 1);
}

double bench::raw_bandwidth_mb_s(std::size_t size, std::int64_t count) {
  Peer sink([size, count](int fd) {
    std::vector<char> buffer(size);
    for (std::int64_t i = 0; i < count; ++i) read_all(fd, buffer.data(), size);
    write_all(fd, "!", 1);
  });
  const std::vector<char> message(size, 0x5a);
  const auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < count; ++i) write_all(sink.fd, message.data(), size);
  char ack = 0;
  read_all(sink.fd, &ack, 1);
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  sink.join();
  return static_cast<double>(size) * static_cast<double>(count) / s / 1e6;
}

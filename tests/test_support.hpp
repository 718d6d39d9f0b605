// SPDX-License-Identifier: MIT
// Small helpers shared by the tests: temporary directories, stdout/stderr capture around a call
// (children inherit the redirected descriptors), elapsed time, waiting for an unrelated pid, and
// PipeEnd, a descriptor-owning handle that crosses every start method.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>

#include <atomic>
#include <memory>
#include <set>
#include <thread>

#include <multiprocessing/context.hpp>
#include <multiprocessing/serialize.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace test_support {

inline std::chrono::steady_clock::duration elapsed_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::steady_clock::now() - t0;
}

/// first, first + 1, ... up to `last` (forever without one). The tests use it rather than
/// std::views::iota, which clang before 16 cannot compile with libstdc++ 12.
struct counting {
  struct sentinel {
    std::optional<int> last;
  };
  struct iterator {
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    int at = 0;
    int operator*() const { return at; }
    iterator& operator++() {
      ++at;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++at;
      return old;
    }
    bool operator==(const iterator&) const = default;
    friend bool operator==(const iterator& it, const sentinel& s) { return s.last && it.at >= *s.last; }
  };
  explicit counting(int from, std::optional<int> to = std::nullopt) : first(from), last(to) {}
  [[nodiscard]] iterator begin() const { return {first}; }
  [[nodiscard]] sentinel end() const { return {last}; }
  int first;
  std::optional<int> last;
};

/// A fresh directory under $TMPDIR, removed with everything in it at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mp-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// Runs `body` with descriptor `fd` redirected to `file`, then restores it.
template <class Body>
void redirect_fd(int fd, const std::string& file, Body&& body) {
  std::fflush(nullptr);
  const int saved = ::dup(fd);
  const int target = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ::dup2(target, fd);
  ::close(target);
  try {
    body();
  } catch (...) {
    std::fflush(nullptr);
    ::dup2(saved, fd);
    ::close(saved);
    throw;
  }
  std::fflush(nullptr);
  ::dup2(saved, fd);
  ::close(saved);
}

template <class Body>
void redirect_stdout(const std::string& file, Body&& body) {
  redirect_fd(STDOUT_FILENO, file, std::forward<Body>(body));
}

/// Runs `body` with stderr going to a temporary file and returns what was written there.
template <class Body>
std::string capture_stderr(Body&& body) {
  const std::string file =
      (std::filesystem::temp_directory_path() / ("mp-stderr-" + std::to_string(::getpid()))).string();
  redirect_fd(STDERR_FILENO, file, std::forward<Body>(body));
  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  std::filesystem::remove(file);
  return text.str();
}

/// True when process `pid` (not necessarily our child) has ended within `limit`.
inline bool wait_pid_gone(pid_t pid, std::chrono::milliseconds limit) {
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return errno == ESRCH;
  pollfd p{static_cast<int>(fd), POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(limit.count()));
  ::close(static_cast<int>(fd));
  return rc == 1;
}

/// A handle that owns a descriptor, as Queue and Lock handles do: under fork it is inherited, under
/// spawn and forkserver it travels with the handshake (Writer::attach_fd). Children report through
/// the pipe it names.
struct PipeEnd {
  int fd = -1;
};

/// Workers as processes started through context Ctx (daemons, so that a failed test leaves none
/// behind); a worker failed when its exit code is not 0.
template <class Ctx>
struct process_workers {
  struct worker {
    multiprocessing::Process p;
    bool join() {
      using namespace std::chrono_literals;
      const bool ended = p.join(60s);
      if (!ended) p.kill(), (void)p.join(10s);
      return ended && p.exitcode() == 0;
    }
  };
  template <class... Args>
  static worker start(void (*f)(Args...), Args... args) {
    Ctx ctx;
    worker w{ctx.Process(f, args...)};
    w.p.daemon(true);
    w.p.start();
    return w;
  }
};

/// Workers as std::threads; a worker failed when an exception escaped its function.
struct thread_workers {
  struct worker {
    std::unique_ptr<std::atomic<bool>> ok = std::make_unique<std::atomic<bool>>(false);
    std::thread t;
    bool join() {
      t.join();
      return ok->load();
    }
  };
  template <class... Args>
  static worker start(void (*f)(Args...), Args... args) {
    worker w;
    w.t = std::thread([f, flag = w.ok.get(), args...]() mutable {
      try {
        f(args...);
        flag->store(true);
      } catch (...) {
      }
    });
    return w;
  }
};

/// Entries of /dev/shm that the library could be blamed for: every name except those tests give
/// SharedMemory blocks on purpose ("mptest_", "psm_") and Python's named semaphores ("sem.", from
/// the benchmarks). The library's own objects live in memfds, so this set never grows.
inline std::set<std::string> unexpected_dev_shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    const auto name = entry.path().filename().string();
    if (name.rfind("mptest_", 0) != 0 && name.rfind("psm_", 0) != 0 && name.rfind("sem.", 0) != 0) {
      names.insert(name);
    }
  }
  return names;
}

/// Lines of /proc/<pid>/maps (pid 0: this process) whose path contains `what`.
inline std::size_t count_mappings(pid_t pid, const std::string& what) {
  std::ifstream maps(pid == 0 ? std::string("/proc/self/maps")
                              : "/proc/" + std::to_string(pid) + "/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find(what) != std::string::npos) ++n;
  }
  return n;
}

}  // namespace test_support

template <>
struct multiprocessing::serializer<test_support::PipeEnd> {
  static void save(multiprocessing::Writer& w, const test_support::PipeEnd& end) {
    w.save(w.attach_fd(end.fd));
  }
  static test_support::PipeEnd load(multiprocessing::Reader& r) {
    // The passed descriptor is valid while loading only: keep a duplicate.
    return test_support::PipeEnd{::fcntl(r.fd(r.load<std::uint32_t>()), F_DUPFD_CLOEXEC, 0)};
  }
};

// SPDX-License-Identifier: MIT
// Competitor: boost::interprocess::message_queue, the usual C++ answer to "a queue between
// processes": a named shared-memory queue of `max_num_msg` slots of `max_msg_size` bytes, guarded
// by a process-shared mutex and two condition variables. Children from fork() use the parent's
// mapping. (Boost.Interprocess appears here only, never in the library's public headers.)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>

#include "queues.hpp"

namespace bip = boost::interprocess;

namespace {

/// Slots: enough to keep both sides busy, as a user would size them (about 1 MiB of ints or
/// KiB messages, 8 MiB of MiB messages; the raw ring has 8 MiB).
std::size_t slots_for(std::size_t size) {
  if (size == 0) return 4096;
  if (size <= 4096) return 1024;
  return 8;
}

template <class Body>
pid_t fork_child(Body body) {
  const pid_t pid = ::fork();
  if (pid == -1) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    try {
      body();
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  return pid;
}

}  // namespace

double bench::measure_boost(const Workload& w) {
  const std::string name = "mp_bench_mq_" + std::to_string(::getpid());
  bip::message_queue::remove(name.c_str());
  const std::size_t slot = w.size == 0 ? sizeof(int) : w.size;
  Stage* stage = map_stage();
  std::vector<pid_t> children;
  bool ok = true;
  {
    bip::message_queue q(bip::create_only, name.c_str(), slots_for(w.size), slot);
    for (int k = 0; k < w.consumers; ++k) {
      children.push_back(fork_child([&] {
        std::vector<std::byte> buffer(slot);
        std::int64_t got = 0, bad = 0;
        consumer_ready(*stage);
        for (;;) {
          bip::message_queue::size_type received = 0;
          unsigned priority = 0;
          q.receive(buffer.data(), buffer.size(), received, priority);
          if (w.size == 0) {
            int value = 0;
            if (received != sizeof value) {
              ++bad;
              continue;
            }
            std::memcpy(&value, buffer.data(), sizeof value);
            if (value < 0) break;
          } else {
            if (received == 0) break;
            if (received != w.size) ++bad;
          }
          ++got;
        }
        consumer_done(*stage, got, bad);
      }));
    }
    for (int k = 0; k < w.producers; ++k) {
      children.push_back(fork_child([&, k] {
        const std::vector<std::byte> message(slot, std::byte{0x5a});
        const std::int64_t n = share(w, k);
        await_go(*stage);
        for (std::int64_t i = 0; i < n; ++i) {
          if (w.size == 0) {
            const int value = static_cast<int>(i);
            q.send(&value, sizeof value, 0);
          } else {
            q.send(message.data(), message.size(), 0);
          }
        }
        const int end = -1;
        q.send(&end, w.size == 0 ? sizeof end : 0, 0);
      }));
    }
    if (!release(*stage, w)) {
      for (const pid_t pid : children) ::kill(pid, SIGKILL);
    }
    for (const pid_t pid : children) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
  }
  bip::message_queue::remove(name.c_str());
  const Tally result = tally(*stage);
  unmap_stage(stage);
  return finish(result, w, ok, "boost message_queue");
}

// SPDX-License-Identifier: MIT
// A user's program, built by each consumer project (find_package of the installed package or
// the build tree, and add_subdirectory of the source tree).
// Starts a process under the default start method and one under spawn, joins both, and exits 0
// only if both children exited 0 and an authenticated Listener/Client pair (OpenSSL::Crypto,
// found through the package's config) on 127.0.0.1 exchanges a message.
#include <chrono>
#include <cstdio>
#include <thread>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

namespace {
void work() {}
}  // namespace

int main() {
  mp::freeze_support();

  mp::Process p(work);
  p.start();
  p.join();

  auto spawned = mp::get_context("spawn").Process(work);
  spawned.start();
  spawned.join();

  if (p.exitcode() != 0 || spawned.exitcode() != 0) {
    std::fprintf(stderr, "consumer: a child did not exit with 0\n");
    return 1;
  }
  mp::connection::Listener listener({"127.0.0.1", 0}, mp::current_process().authkey());
  std::thread client([&listener] {  // the handshake needs both sides at once
    mp::connection::Client(listener.address(), mp::current_process().authkey(), 30.0s).send(42);
  });
  auto server = listener.accept(30.0s);
  client.join();
  if (!server.poll(30.0s) || server.recv<int>() != 42) {
    std::fprintf(stderr, "consumer: the Listener/Client exchange failed\n");
    return 1;
  }

  std::puts("consumer: ok");
  return 0;
}

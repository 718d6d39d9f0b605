// SPDX-License-Identifier: MIT
// The server half of a remote manager (C++ twin of the BaseManager program of seed 004 and of
// Python's documented "remote manager" example): it serves a queue and a dict by name, with an
// authkey, to programs that connect to it; remote_manager_client is such a program.
//
//   class QueueManager(BaseManager): pass
//   queue = queue.Queue()
//   QueueManager.register('get_queue', callable=lambda: queue)
//   m = QueueManager(address=('', 50000), authkey=b'abracadabra')
//   m.get_server().serve_forever()
//
// Usage: remote_manager_server [ADDRESS [ADDRESS_FILE]]
//   ADDRESS is HOST:PORT (default 127.0.0.1:50000; port 0 picks a free one) or an AF_UNIX path;
//   the bound address is written to ADDRESS_FILE when given. The server prints what clients put
//   on the queue until one puts "stop", then shuts down (at most 60 s).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  mp::freeze_support();
  const auto address = mp::connection::Address::parse(argc > 1 ? argv[1] : "127.0.0.1:50000");
  mp::Manager store;
  auto queue = store.Queue<std::string>();
  auto seen = store.dict<std::string, int>();

  mp::managers::BaseManager m(address, std::string_view("abracadabra"));
  m.register_("get_queue", queue);
  m.register_("get_seen", seen);
  m.start();  // serves from a background thread
  if (argc > 2) {
    const std::string tmp = std::string(argv[2]) + ".tmp";
    auto bound = m.address();
    std::ofstream(tmp) << (bound.is_tcp() ? bound.host() + ":" + std::to_string(bound.port())
                                          : bound.path());
    std::rename(tmp.c_str(), argv[2]);  // the client waits for the whole file
  }
  std::cout << "serving" << std::endl;
  for (;;) {
    std::string item;
    try {
      item = queue.get(60s);
    } catch (const mp::Empty&) {
      std::cout << "no client came" << std::endl;
      return 1;
    }
    if (item == "stop") break;
    std::cout << "got: " << item << std::endl;
    seen.set(item, seen.get(item, 0) + 1);
  }
  m.shutdown();
  std::cout << "server done" << std::endl;
}

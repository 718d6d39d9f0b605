// SPDX-License-Identifier: MIT
// The client half of a remote manager (see remote_manager_server): an unrelated program that
// connects with the authkey, gets the server's queue and dict by name and uses them.
//
//   class QueueManager(BaseManager): pass
//   QueueManager.register('get_queue')
//   m = QueueManager(address=('127.0.0.1', 50000), authkey=b'abracadabra')
//   m.connect()
//   queue = m.get_queue()
//   queue.put('hello')
//
// Usage: remote_manager_client [ADDRESS | @ADDRESS_FILE]
//   ADDRESS as for the server (default 127.0.0.1:50000); @FILE reads it from the file the
//   server writes, waiting up to 30 s for it.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <multiprocessing.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  mp::freeze_support();
  std::string text = argc > 1 ? argv[1] : "127.0.0.1:50000";
  if (text.starts_with("@")) {
    const std::string file = text.substr(1);
    for (int i = 0; i < 300 && !std::filesystem::exists(file); ++i)
      std::this_thread::sleep_for(100ms);
    std::getline(std::ifstream(file), text);
  }
  mp::managers::BaseManager m(mp::connection::Address::parse(text),
                              std::string_view("abracadabra"));
  for (int attempt = 0;; ++attempt) {  // the server may still be starting
    try {
      m.connect();
      break;
    } catch (const mp::OSError&) {
      if (attempt == 100) throw;
      std::this_thread::sleep_for(100ms);
    }
  }
  auto queue = m.get<mp::Queue<std::string>>("get_queue");
  auto seen = m.get<mp::DictProxy<std::string, int>>("get_seen");
  queue.put("hello");
  queue.put("world");
  queue.put("hello");
  // The server counts what it got in the shared dict; wait until it has all three, then let it
  // stop (it owns the dict: after it ends, the proxy would throw ProcessError).
  for (int i = 0; i < 3000 && seen.get("hello", 0) + seen.get("world", 0) < 3; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  std::cout << "hello seen " << seen.get("hello", 0) << " times, world " << seen.get("world", 0)
            << " time" << std::endl;
  queue.put("stop");
}

// SPDX-License-Identifier: MIT
// Our side: a Manager's dict and list proxies used from a child process.
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <multiprocessing.hpp>

#include "managers.hpp"

namespace mp = multiprocessing;

namespace {

using clock_type = std::chrono::steady_clock;

/// Runs `work(n)` in a child and returns the operations per second it measured.
template <class Work>
double in_child(std::int64_t ops, Work work) {
  mp::RawValue<double> rate(0.0);
  mp::Process p([=]() mutable {
    const auto t0 = clock_type::now();
    work(ops);
    rate.value() =
        static_cast<double>(ops) / std::chrono::duration<double>(clock_type::now() - t0).count();
  });
  p.start();
  p.join();
  if (p.exitcode() != 0)
    throw std::runtime_error("mp child exited with " + std::to_string(p.exitcode().value_or(-1)));
  return rate.value();
}

}  // namespace

bench::Results bench::measure_mp(std::int64_t ops, std::int64_t keys) {
  Results r;
  mp::Manager mgr;
  auto d = mgr.dict<std::int64_t, std::int64_t>();
  auto l = mgr.list<std::int64_t>();
  auto s = mgr.dict<std::string, std::int64_t>();
  r.dict_set = in_child(ops, [d, keys](std::int64_t n) mutable {
    for (std::int64_t i = 0; i < n; ++i) d.set(i % keys, i);
  });
  r.dict_get = in_child(ops, [d, keys](std::int64_t n) {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += d.get(i % keys);
    if (sum < 0) throw std::logic_error("impossible sum");
  });
  r.list_append = in_child(ops, [l](std::int64_t n) mutable {
    for (std::int64_t i = 0; i < n; ++i) l.append(i);
  });
  if (static_cast<std::int64_t>(l.size()) != ops) throw std::logic_error("the list lost appends");
  r.dict_set_str = in_child(ops, [s, keys](std::int64_t n) mutable {
    for (std::int64_t i = 0; i < n; ++i) s.set(bench::string_key(i % keys), i);
  });
  // A remote manager: the child knows only the address and the key.
  mp::managers::BaseManager server(mp::connection::Address("127.0.0.1", 0),
                                   std::string_view("key"));
  server.register_("get_dict", d);
  server.start();
  r.remote_dict_set = in_child(ops, [address = server.address(), keys](std::int64_t n) {
    mp::managers::BaseManager m(address, std::string_view("key"));
    m.connect();
    auto remote = m.get<mp::DictProxy<std::int64_t, std::int64_t>>("get_dict");
    for (std::int64_t i = 0; i < n; ++i) remote.set(i % keys, i);
  });
  return r;
}

// SPDX-License-Identifier: MIT
// benchmarks/managers/managers.hpp
//
// What each competitor file gives main.cpp. Every workload runs in one child process against a
// container the parent created, over `keys` distinct integer keys, and reports operations per
// second measured inside the child:
//   dict set:    d[i % keys] = i
//   dict get:    d[i % keys]
//   list append: l.append(i)
// plus dict set with string keys ("k<i % keys>"), the seeds' usual shape, and dict set from a
// client that got the dict from a BaseManager over TCP (remote managers).
#pragma once

#include <cstdint>
#include <string>

namespace bench {

/// "k<n>", the string keys (built by appending: g++ 12 warns falsely on "literal" + std::string).
inline std::string string_key(std::int64_t n) {
  std::string key = "k";
  key += std::to_string(n);
  return key;
}

struct Results {
  double dict_set = 0;  // operations per second
  double dict_get = 0;
  double list_append = 0;
  double dict_set_str = 0;
  double remote_dict_set = 0;  // dict set by a program that connected over TCP (BaseManager)
};

/// bench_mp.cpp: mp::Manager's DictProxy and ListProxy, the child started with mp::Process (fork).
Results measure_mp(std::int64_t ops, std::int64_t keys);

/// raw_posix.cpp: what one would write by hand: a Boost.Interprocess map and vector in a
/// MAP_SHARED buffer (managed_external_buffer) under an interprocess_mutex, child from fork().
Results measure_raw(std::int64_t ops, std::int64_t keys);

/// raw_posix.cpp: std::unordered_map and std::vector under a std::mutex, used from a std::thread
/// (the in-process floor: no process boundary at all).
Results measure_thread(std::int64_t ops, std::int64_t keys);

}  // namespace bench

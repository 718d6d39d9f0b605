// SPDX-License-Identifier: MIT
// The hand-written competitors: Boost.Interprocess containers in a MAP_SHARED buffer under one
// interprocess_mutex, used from a fork()ed child; and std containers under a std::mutex, used
// from a std::thread.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/containers/map.hpp>
#include <boost/interprocess/containers/string.hpp>
#include <boost/interprocess/containers/vector.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>

#include "managers.hpp"

namespace bip = boost::interprocess;

namespace {

using clock_type = std::chrono::steady_clock;
using segment_manager = bip::managed_external_buffer::segment_manager;
template <class T>
using shm_allocator = bip::allocator<T, segment_manager>;
using shm_string = bip::basic_string<char, std::char_traits<char>, shm_allocator<char>>;
using int_map = bip::map<std::int64_t, std::int64_t, std::less<>,
                         shm_allocator<std::pair<const std::int64_t, std::int64_t>>>;
/// Orders shared and local strings alike, so that a lookup needs no string in shared memory.
struct by_view {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::string_view(a.data(), a.size()) < std::string_view(b.data(), b.size());
  }
};
using str_map = bip::map<shm_string, std::int64_t, by_view,
                         shm_allocator<std::pair<const shm_string, std::int64_t>>>;
using int_vector = bip::vector<std::int64_t, shm_allocator<std::int64_t>>;

double per_second(std::int64_t ops, clock_type::time_point t0) {
  return static_cast<double>(ops) / std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Runs `work()` in a fork()ed child; it returns the rate, passed back through shared memory.
double in_child(double* slot, const std::function<double()>& work) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    *slot = work();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("raw child failed");
  return *slot;
}

}  // namespace

bench::Results bench::measure_raw(std::int64_t ops, std::int64_t keys) {
  const std::size_t size = std::size_t{256} << 20;
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) throw std::runtime_error("mmap failed");
  Results r;
  {
    bip::managed_external_buffer segment(bip::create_only, mapping, size);
    auto* mutex = segment.construct<bip::interprocess_mutex>("mutex")();
    auto* ints = segment.construct<int_map>("ints")(segment.get_segment_manager());
    auto* strs = segment.construct<str_map>("strs")(segment.get_segment_manager());
    auto* list = segment.construct<int_vector>("list")(segment.get_segment_manager());
    auto* slot = segment.construct<double>("rate")(0.0);
    r.dict_set = in_child(slot, [&] {
      const auto t0 = clock_type::now();
      for (std::int64_t i = 0; i < ops; ++i) {
        bip::scoped_lock guard(*mutex);
        (*ints)[i % keys] = i;
      }
      return per_second(ops, t0);
    });
    r.dict_get = in_child(slot, [&] {
      const auto t0 = clock_type::now();
      std::int64_t sum = 0;
      for (std::int64_t i = 0; i < ops; ++i) {
        bip::scoped_lock guard(*mutex);
        sum += ints->at(i % keys);
      }
      if (sum < 0) throw std::logic_error("impossible sum");
      return per_second(ops, t0);
    });
    r.list_append = in_child(slot, [&] {
      const auto t0 = clock_type::now();
      for (std::int64_t i = 0; i < ops; ++i) {
        bip::scoped_lock guard(*mutex);
        list->push_back(i);
      }
      return per_second(ops, t0);
    });
    r.dict_set_str = in_child(slot, [&] {
      const auto t0 = clock_type::now();
      for (std::int64_t i = 0; i < ops; ++i) {
        const std::string key = bench::string_key(i % keys);
        bip::scoped_lock guard(*mutex);
        auto it = strs->find(key);
        if (it == strs->end()) {
          strs->emplace(shm_string(key.data(), key.size(), segment.get_segment_manager()), i);
        } else {
          it->second = i;
        }
      }
      return per_second(ops, t0);
    });
  }
  ::munmap(mapping, size);
  return r;
}

bench::Results bench::measure_thread(std::int64_t ops, std::int64_t keys) {
  std::mutex mutex;
  std::unordered_map<std::int64_t, std::int64_t> ints;
  std::unordered_map<std::string, std::int64_t> strs;
  std::vector<std::int64_t> list;
  Results r;
  const auto in_thread = [](const std::function<double()>& work) {
    double rate = 0;
    std::thread t([&] { rate = work(); });
    t.join();
    return rate;
  };
  r.dict_set = in_thread([&] {
    const auto t0 = clock_type::now();
    for (std::int64_t i = 0; i < ops; ++i) {
      std::lock_guard guard(mutex);
      ints[i % keys] = i;
    }
    return per_second(ops, t0);
  });
  r.dict_get = in_thread([&] {
    const auto t0 = clock_type::now();
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < ops; ++i) {
      std::lock_guard guard(mutex);
      sum += ints.at(i % keys);
    }
    if (sum < 0) throw std::logic_error("impossible sum");
    return per_second(ops, t0);
  });
  r.list_append = in_thread([&] {
    const auto t0 = clock_type::now();
    for (std::int64_t i = 0; i < ops; ++i) {
      std::lock_guard guard(mutex);
      list.push_back(i);
    }
    return per_second(ops, t0);
  });
  r.dict_set_str = in_thread([&] {
    const auto t0 = clock_type::now();
    for (std::int64_t i = 0; i < ops; ++i) {
      std::string key = bench::string_key(i % keys);
      std::lock_guard guard(mutex);
      strs[std::move(key)] = i;
    }
    return per_second(ops, t0);
  });
  return r;
}

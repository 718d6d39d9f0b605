// SPDX-License-Identifier: MIT
// multiprocessing/detail/pool_process.hpp
//
// The process backend of pools and executors, as the front ends (pool.hpp, futures.hpp) see it:
// the compile-time spawn rules for tasks, and the chunk maker that serializes a batch of calls
// into a message for a worker process (detail/pool_wire.hpp) run by detail/pool_core.hpp.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "../serialize.hpp"
#include "pool_core.hpp"
#include "pool_jobs.hpp"
#include "pool_wire.hpp"
#include "target.hpp"

namespace multiprocessing {
struct PoolOptions;  // pool.hpp
}  // namespace multiprocessing

namespace multiprocessing::detail {

/// The compile-time spawn rules for a Pool or ProcessPoolExecutor task; one template per check so
/// that the compiler names the offending type next to the message.
template <class F>
constexpr bool check_pool_callable() {
  static_assert(spawnable_callable_v<F>,
                "mp: a Pool task must be a function pointer, a captureless lambda or a "
                "default-constructible serializable function object (the workers exist before the "
                "task, so the spawn rules apply under every start method; a capturing lambda "
                "cannot cross to them)");
  return true;
}
template <class Argument>
constexpr bool check_pool_argument() {
  static_assert(serialize::serializable<Argument>,
                "mp: every argument of a Pool task must be serializable");
  return true;
}
template <class Result>
constexpr bool check_pool_result() {
  static_assert(std::is_void_v<Result> || serialize::serializable<Result>,
                "mp: the result of a Pool task must be serializable (or void)");
  return true;
}

template <class F, class... Args>
constexpr bool check_pool_task() {
  static_assert(std::is_invocable_v<F&, Args&&...>,
                "mp: the Pool task cannot be called with these arguments (after decay; C strings "
                "become std::string)");
  if constexpr (std::is_invocable_v<F&, Args&&...>) {
    return check_pool_callable<F>() && (check_pool_argument<Args>() && ... && true) &&
           check_pool_result<pool_result_t<F, Args...>>();
  } else {
    return false;
  }
}

/// Saves one argument as the stored type A the worker loads (C strings as c_string_arg).
template <class A, class X>
void save_arg(serialize::Writer& w, X&& x) {
  if constexpr (std::is_same_v<std::remove_cvref_t<X>, A>) {
    w.save(x);
  } else {
    w.save(store_as<A>(std::forward<X>(x)));
  }
}

/// pool_chunk::decoder for a job of results of type R.
template <class R>
void decode_result(pool_job& job, std::size_t index, serialize::Reader& in) {
  auto& sink = static_cast<result_sink<R>&>(job);
  if constexpr (std::is_void_v<R>) {
    sink.put(index, std::monostate{});
  } else {
    sink.put(index, in.load<R>());
  }
}

/// Serializes chunks of calls of F(Args...) for one process pool: a chunk message carries the ids
/// of the type-erased runner and of a function pointer (see pool_core::code_id), or the function
/// object itself, then the arguments of each item.
template <class F, class... Args>
class process_chunk_maker {
 public:
  using result_type = pool_result_t<F, Args...>;

  process_chunk_maker(pool_core& core, const F& f) : f_(f) {
    runner_id_ = core.code_id(code_address(&run_chunk<F, Args...>));
    needed_ = runner_id_ + 1;
    if constexpr (is_function_pointer_v<F>) {
      fn_id_ = core.code_id(code_address(f));
      needed_ = std::max(needed_, fn_id_ + 1);
    }
  }

  /// A chunk for `job` whose items start at index `first`. `add_items(add)` calls `add(args...)`
  /// once per item and returns how many items it added.
  template <class AddItems>
  [[nodiscard]] chunk_ptr make(const std::shared_ptr<result_sink<result_type>>& job, std::size_t first,
                               AddItems&& add_items) const {
    serialize::Writer w;
    w.save(static_cast<std::uint8_t>(pool_msg::chunk));
    w.save(runner_id_);
    w.save(std::uint32_t{0});  // the count, patched below
    if constexpr (is_function_pointer_v<F>) {
      w.save(fn_id_);
    } else if constexpr (!(std::is_empty_v<F> && std::default_initializable<F>)) {
      w.save(f_);
    }
    const auto count = static_cast<std::uint32_t>(
        add_items([&w](auto&&... xs) { (save_arg<Args>(w, std::forward<decltype(xs)>(xs)), ...); }));
    auto c = std::make_shared<pool_chunk>();
    c->fds.reserve(w.fds().size());
    for (const int fd : w.fds()) c->fds.push_back(dup_fd(fd, "pool task descriptor"));
    c->payload = std::move(w).take();
    std::memcpy(c->payload.data() + 5, &count, sizeof count);
    c->job = job;
    c->decode = &decode_result<result_type>;
    c->first = first;
    c->count = count;
    c->code_needed = needed_;
    return c;
  }

 private:
  const F& f_;
  std::uint32_t runner_id_ = 0;
  std::uint32_t fn_id_ = 0;
  std::uint32_t needed_ = 0;
};

/// How the front ends reach the process backend.
struct process_pool_backend {
  using core_type = pool_core;
  using options_type = PoolOptions;
  /// Starts the workers of a Pool with these options (defined in pool.hpp), under the default
  /// context's start method or `ctx`'s, each holding at most `max_prefetch` chunks at once.
  /// @throws as the Pool constructor.
  static std::shared_ptr<pool_core> make_core(PoolOptions options);
  static std::shared_ptr<pool_core> make_core(PoolOptions options, const Context& ctx,
                                              std::size_t max_prefetch = pool_config{}.max_prefetch);
  template <class F, class... Args>
  using maker = process_chunk_maker<F, Args...>;
  template <class F, class... Args>
  static constexpr bool check_task() {
    return check_pool_task<F, Args...>();
  }
};

}  // namespace multiprocessing::detail

// SPDX-License-Identifier: MIT
// multiprocessing/detail/target.hpp
//
// A Process target bound to its arguments (Python: target + args), and the rules for carrying it
// across exec (spawn and forkserver): the callable must be a function pointer, a captureless lambda
// (an empty, default-constructible class) or a serializable function object (an aggregate or a type
// with a member serialize()); every argument must be serializable. A capturing lambda is never
// copied bytewise into another process: it may hold references into the parent's memory.
#pragma once

#include <concepts>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "../serialize.hpp"
#include "child.hpp"
#include "code_ref.hpp"

namespace multiprocessing::detail {

/// A C string argument, stored as std::string so it survives the parent's memory (and crosses
/// exec), yet still binds to a `const char*`, `std::string` or `std::string_view` parameter.
struct c_string_arg {
  std::string value;
  operator const char*() const noexcept { return value.c_str(); }  // NOLINT
  operator std::string() const& { return value; }                  // NOLINT
  operator std::string() && noexcept { return std::move(value); }  // NOLINT
  operator std::string_view() const noexcept { return value; }     // NOLINT
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value);
  }
};

template <class A>
using stored_arg_t = std::conditional_t<
    std::is_same_v<std::decay_t<A>, const char*> || std::is_same_v<std::decay_t<A>, char*>,
    c_string_arg, std::decay_t<A>>;

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

template <class F>
concept has_member_serialize = requires(F& f, serialize::Writer& w) { f.serialize(w); };

/// True when a callable of type F can be re-created in a fresh execution of the program.
template <class F>
inline constexpr bool spawnable_callable_v =
    is_function_pointer_v<F> ||
    (std::is_class_v<F> && std::is_empty_v<F> && std::default_initializable<F>) ||
    (std::is_class_v<F> && (std::is_aggregate_v<F> || has_member_serialize<F>) &&
     serialize::serializable<F>);

/// True when F bound to Args can be started under spawn or forkserver.
template <class F, class... Args>
inline constexpr bool spawnable_target_v =
    spawnable_callable_v<F> && (serialize::serializable<Args> && ...);

/// Why F bound to Args cannot cross exec ("" when it can), for ProcessError messages.
template <class F, class... Args>
std::string spawn_obstacle() {
  if constexpr (!spawnable_callable_v<F>) {
    return "the target (" + demangle(typeid(F).name()) +
           ") is neither a function pointer, a captureless lambda nor a serializable function "
           "object; a capturing lambda cannot cross exec";
  } else {
    std::string reason;
    std::size_t index = 0;
    ((++index, reason.empty() && !serialize::serializable<Args>
                   ? void(reason = "argument " + std::to_string(index) + " (" +
                                   demangle(typeid(Args).name()) + ") is not serializable")
                   : void()),
     ...);
    return reason;
  }
}

/// The address of a function, as an integer (function pointers are not object pointers).
template <class Fn>
std::uintptr_t code_address(Fn fn) noexcept {
  static_assert(sizeof(Fn) == sizeof(std::uintptr_t));
  std::uintptr_t addr = 0;
  std::memcpy(&addr, &fn, sizeof fn);
  return addr;
}

/// A process body: what runs in the child, and how to carry it across exec.
struct target_base {
  target_base() = default;
  target_base(const target_base&) = delete;
  target_base& operator=(const target_base&) = delete;
  virtual ~target_base() = default;
  /// Runs the target (once, in the child).
  virtual void invoke() = 0;
  /// "" when the target can cross exec, otherwise the reason it cannot.
  [[nodiscard]] virtual std::string spawn_obstacle() const = 0;
  /// Where the child finds the decoder of this target type (valid when spawn_obstacle() is "").
  [[nodiscard]] virtual code_ref spawn_entry() const = 0;
  /// Writes the callable's state and the arguments for the decoder.
  virtual void encode(serialize::Writer& out) const = 0;
};

/// The signature of a spawn decoder: reads what encode() wrote and rebuilds the target.
using spawn_decoder = std::unique_ptr<target_base> (*)(serialize::Reader&);

template <class F, class... Args>
class bound_target;

template <class F, class... Args>
std::unique_ptr<target_base> decode_target(serialize::Reader& in) {
  auto callable = [&]() -> F {
    if constexpr (is_function_pointer_v<F>) {
      const std::uintptr_t addr = resolve_code_ref(in.load<code_ref>());
      F fn = nullptr;
      std::memcpy(&fn, &addr, sizeof fn);
      return fn;
    } else if constexpr (std::is_empty_v<F> && std::default_initializable<F>) {
      return F{};
    } else {
      return in.load<F>();
    }
  }();
  // Braced initialisation evaluates the loads left to right.
  std::tuple<Args...> args{in.load<Args>()...};
  return std::make_unique<bound_target<F, Args...>>(std::move(callable), std::move(args));
}

template <class F, class... Args>
class bound_target final : public target_base {
 public:
  bound_target(F f, std::tuple<Args...> args) : f_(std::move(f)), args_(std::move(args)) {}

  void invoke() override { std::apply(std::move(f_), std::move(args_)); }

  [[nodiscard]] std::string spawn_obstacle() const override {
    return detail::spawn_obstacle<F, Args...>();
  }

  [[nodiscard]] code_ref spawn_entry() const override {
    if constexpr (spawnable_target_v<F, Args...>) {
      return make_code_ref(code_address(&decode_target<F, Args...>));
    } else {
      throw ProcessError(spawn_obstacle());
    }
  }

  void encode(serialize::Writer& out) const override {
    if constexpr (spawnable_target_v<F, Args...>) {
      if constexpr (is_function_pointer_v<F>) {
        out.save(make_code_ref(code_address(f_)));
      } else if constexpr (!std::is_empty_v<F>) {
        out.save(f_);
      }
      std::apply([&](const auto&... a) { (out.save(a), ...); }, args_);
    } else {
      throw ProcessError(spawn_obstacle());
    }
  }

 private:
  F f_;
  std::tuple<Args...> args_;
};

/// A decayed copy of an argument; C strings become c_string_arg.
template <class A>
stored_arg_t<A> store_arg(A&& a) {
  if constexpr (std::is_same_v<stored_arg_t<A>, c_string_arg>) {
    return c_string_arg{std::string(a)};
  } else {
    return stored_arg_t<A>(std::forward<A>(a));
  }
}

/// `x` as the stored argument type A (see stored_arg_t): a C string as c_string_arg, anything
/// else converted to A.
template <class A, class X>
A store_as(X&& x) {
  if constexpr (std::is_same_v<A, c_string_arg> && !std::is_same_v<std::remove_cvref_t<X>, c_string_arg>) {
    return c_string_arg{std::string(x)};
  } else {
    return A(std::forward<X>(x));
  }
}

/// Binds `f` to copies of `args` (C strings become std::string), as std::thread does.
template <class F, class... Args>
std::unique_ptr<target_base> bind_target(F&& f, Args&&... args) {
  using target = bound_target<std::decay_t<F>, stored_arg_t<Args>...>;
  return std::make_unique<target>(std::forward<F>(f),
                                  std::tuple<stored_arg_t<Args>...>(store_arg(std::forward<Args>(args))...));
}

}  // namespace multiprocessing::detail

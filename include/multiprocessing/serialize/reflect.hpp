// SPDX-License-Identifier: MIT
// multiprocessing/serialize/reflect.hpp
//
// Defines the aggregate reflection the serializer uses to encode plain structs with no
// boilerplate: reflectable<T>, field_count<T> and tie_fields(object) (Python needs none of this:
// pickle walks an object's __dict__). A small stand-in for Boost.PFR, which Debian's Boost 1.74
// lacks. Works on aggregates of up to 32 fields.
//
// How it works: an aggregate T with n fields accepts T{x1, ..., xk} for every k <= n when each
// x converts to anything (detail::any_field). That count is exact unless a field is a C array (its
// elements are brace-elided and each eat one initializer) or a base class is involved, so the
// count is confirmed with T{{}, ..., {}}: an empty braced list initializes exactly one field,
// never an element. When both agree, structured bindings of exactly that many names unpack T.
// Limits (types outside them are simply not reflectable): C-array members (use std::array),
// fields that cannot be value-initialized from {}, reference members, base classes (a base with
// data members is a compile error inside the structured binding), more than 32 fields.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace multiprocessing::serialize {

namespace detail {

/// The most fields a reflected aggregate may have (the structured-binding table below).
inline constexpr std::size_t max_reflected_fields = 32;
/// How far leaf_count<T> counts brace-elided initializers before giving up.
inline constexpr std::size_t max_counted_leaves = 512;
/// "No count": T is not an aggregate, or it needs more initializers than we count.
inline constexpr std::size_t no_count = static_cast<std::size_t>(-1);

/// Converts to any type; used only in unevaluated initializers to count fields.
struct any_field {
  template <class U>
  operator U() const noexcept;  // NOLINT(google-explicit-constructor): that is its purpose
};

template <class Field, std::size_t>
using nth = Field;

/// True when `T{Field{}, ... N times}` is well-formed.
template <class T, class Field, std::size_t... I>
consteval bool list_initializable(std::index_sequence<I...> /*unused*/) {
  return requires { T{nth<Field, I>{}...}; };
}

template <class T, class Field, std::size_t N>
consteval bool initializable_with() {
  return list_initializable<T, Field>(std::make_index_sequence<N>{});
}

/// True when `T{{}, ... N times}` is well-formed (one value-initialized field per `{}`).
template <class T, std::size_t N>
consteval bool brace_initializable() {
  if constexpr (N == 0) {
    return requires { T{}; };
  } else if constexpr (N == 1) {
    return requires { T{{}}; };
  } else if constexpr (N == 2) {
    return requires { T{{}, {}}; };
  } else if constexpr (N == 3) {
    return requires { T{{}, {}, {}}; };
  } else if constexpr (N == 4) {
    return requires { T{{}, {}, {}, {}}; };
  } else if constexpr (N == 5) {
    return requires { T{{}, {}, {}, {}, {}}; };
  } else if constexpr (N == 6) {
    return requires { T{{}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 7) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 8) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 9) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 10) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 11) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 12) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 13) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 14) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 15) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 16) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 17) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 18) {
    return requires { T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}}; };
  } else if constexpr (N == 19) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 20) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 21) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 22) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 23) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 24) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 25) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 26) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 27) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 28) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 29) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 30) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 31) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else if constexpr (N == 32) {
    return requires {
      T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
        {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
    };
  } else {
    return false;
  }
}

/// Largest n in [Lo, Hi) with initializable_with<T, Field, n>, knowing it holds at Lo and not at
/// Hi.
template <class T, class Field, std::size_t Lo, std::size_t Hi>
consteval std::size_t last_initializable() {
  if constexpr (Hi - Lo <= 1) {
    return Lo;
  } else {
    constexpr std::size_t mid = Lo + (Hi - Lo) / 2;
    if constexpr (initializable_with<T, Field, mid>()) {
      return last_initializable<T, Field, mid, Hi>();
    } else {
      return last_initializable<T, Field, Lo, mid>();
    }
  }
}

/// Smallest n <= max_reflected_fields with initializable_with<T, Field, n> (usually 0).
template <class T, class Field, std::size_t N = 0>
consteval std::size_t first_initializable() {
  if constexpr (N > max_reflected_fields) {
    return no_count;
  } else if constexpr (initializable_with<T, Field, N>()) {
    return N;
  } else {
    return first_initializable<T, Field, N + 1>();
  }
}

/// How many `Field` initializers T takes, counting brace-elided array elements one by one;
/// no_count when T is not an aggregate class or takes more than max_counted_leaves.
template <class T, class Field = any_field>
consteval std::size_t count_initializers() {
  if constexpr (!std::is_aggregate_v<T> || !std::is_class_v<T>) {
    return no_count;
  } else {
    constexpr std::size_t first = first_initializable<T, Field>();
    if constexpr (first == no_count) {
      return no_count;
    } else if constexpr (initializable_with<T, Field, max_counted_leaves + 1>()) {
      return no_count;
    } else {
      return last_initializable<T, Field, first, max_counted_leaves + 1>();
    }
  }
}

template <class T>
consteval bool is_reflectable() {
  if constexpr (!std::is_aggregate_v<T> || !std::is_class_v<T> || std::is_const_v<T> ||
                std::is_volatile_v<T>) {
    return false;
  } else {
    constexpr std::size_t n = count_initializers<T>();
    if constexpr (n == no_count || n > max_reflected_fields) {
      return false;
    } else {
      return brace_initializable<T, n>();
    }
  }
}

}  // namespace detail

/// Number of initializers an aggregate takes with C-array members brace-elided (one per array
/// element), or detail::no_count. Equals field_count<T> when T is reflectable.
template <class T>
inline constexpr std::size_t leaf_count = detail::count_initializers<T>();

/// True for aggregates whose fields can be unpacked by tie_fields (see the limits above).
template <class T>
inline constexpr bool reflectable = detail::is_reflectable<T>();

/// Number of fields of a reflectable aggregate (0 for an empty struct).
template <class T>
requires reflectable<T>
inline constexpr std::size_t field_count = leaf_count<T>;

/// A std::tuple of references to the fields of `object`, in declaration order.
template <class T>
requires reflectable<std::remove_const_t<T>>
constexpr auto tie_fields(T& object) noexcept {
  constexpr std::size_t N = field_count<std::remove_const_t<T>>;
  if constexpr (N == 0) {
    (void)object;
    return std::tuple<>{};
  } else if constexpr (N == 1) {
    auto& [f0] = object;
    return std::forward_as_tuple(f0);
  } else if constexpr (N == 2) {
    auto& [f0, f1] = object;
    return std::forward_as_tuple(f0, f1);
  } else if constexpr (N == 3) {
    auto& [f0, f1, f2] = object;
    return std::forward_as_tuple(f0, f1, f2);
  } else if constexpr (N == 4) {
    auto& [f0, f1, f2, f3] = object;
    return std::forward_as_tuple(f0, f1, f2, f3);
  } else if constexpr (N == 5) {
    auto& [f0, f1, f2, f3, f4] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4);
  } else if constexpr (N == 6) {
    auto& [f0, f1, f2, f3, f4, f5] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5);
  } else if constexpr (N == 7) {
    auto& [f0, f1, f2, f3, f4, f5, f6] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6);
  } else if constexpr (N == 8) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7);
  } else if constexpr (N == 9) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8);
  } else if constexpr (N == 10) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9);
  } else if constexpr (N == 11) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10);
  } else if constexpr (N == 12) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11);
  } else if constexpr (N == 13) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12);
  } else if constexpr (N == 14) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13);
  } else if constexpr (N == 15) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14);
  } else if constexpr (N == 16) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15);
  } else if constexpr (N == 17) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16);
  } else if constexpr (N == 18) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17);
  } else if constexpr (N == 19) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18] =
        object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18);
  } else if constexpr (N == 20) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18,
           f19] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19);
  } else if constexpr (N == 21) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20);
  } else if constexpr (N == 22) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21);
  } else if constexpr (N == 23) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22);
  } else if constexpr (N == 24) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23);
  } else if constexpr (N == 25) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24);
  } else if constexpr (N == 26) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25);
  } else if constexpr (N == 27) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26);
  } else if constexpr (N == 28) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27);
  } else if constexpr (N == 29) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27,
                                 f28);
  } else if constexpr (N == 30) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27,
                                 f28, f29);
  } else if constexpr (N == 31) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27,
                                 f28, f29, f30);
  } else if constexpr (N == 32) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31] = object;
    return std::forward_as_tuple(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14,
                                 f15, f16, f17, f18, f19, f20, f21, f22, f23, f24, f25, f26, f27,
                                 f28, f29, f30, f31);
  }
}

namespace detail {
/// A list of types, never instantiated as an object.
template <class... T>
struct type_list {};

template <class Tuple>
struct referred_types;
template <class... R>
struct referred_types<std::tuple<R&...>> {
  using type = type_list<R...>;
};
}  // namespace detail

/// The field types of a reflectable aggregate, as detail::type_list<F0, F1, ...> (cv as declared).
template <class T>
requires reflectable<T>
using field_types = typename detail::referred_types<decltype(tie_fields(std::declval<T&>()))>::type;

}  // namespace multiprocessing::serialize

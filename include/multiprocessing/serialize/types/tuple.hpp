// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/tuple.hpp
//
// Serializes std::tuple (Python: pickling tuple): the elements in order, no length.
#pragma once

#include <cstddef>
#include <tuple>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::tuple<T...>: the elements in order (nothing for std::tuple<>).
template <class... T>
struct serializer<std::tuple<T...>> {
  using value_type = std::tuple<T...>;
  using parts = serialize::detail::type_list<T...>;
  static constexpr bool enabled = (serializable<T> && ...);
  static constexpr std::size_t min_size =
      (std::size_t{0} + ... + serialize::detail::min_encoded_size<std::remove_cv_t<T>>());

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("tuple");
    builder.number(sizeof...(T));
    (builder.type<T>(), ...);
  }

  static void save(Writer& writer, const value_type& tuple) {
    std::apply([&writer](const auto&... elements) { (writer.save(elements), ...); }, tuple);
  }

  static value_type load([[maybe_unused]] Reader& reader) {
    // Braced initialization evaluates left to right.
    return value_type{reader.load<std::remove_cv_t<T>>()...};
  }
};

}  // namespace multiprocessing

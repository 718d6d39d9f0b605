// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/array.hpp
//
// Serializes std::array (Python: pickling a fixed-size tuple): the N elements, no length; an
// array of trivially copyable T in one copy.
#pragma once

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <utility>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::array<T, N>: the N elements back to back (sizeof(std::array) bytes when T's encoding is
/// its object representation).
template <class T, std::size_t N>
struct serializer<std::array<T, N>> {
  using value_type = std::array<T, N>;
  using parts = serialize::detail::type_list<T>;
  static constexpr bool enabled = serializable<T>;
  static constexpr bool bitwise = N > 0 && serialize::detail::is_bitwise<T> &&
                                  sizeof(value_type) == N * sizeof(T);
  static constexpr std::size_t min_size = N * serialize::detail::min_encoded_size<T>();

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("array");
    builder.number(N);
    builder.type<T>();
  }

  static void save(Writer& writer, const value_type& elements) {
    if constexpr (bitwise) {
      writer.write_bytes(elements.data(), sizeof(value_type));
    } else {
      for (const T& element : elements) writer.save(element);
    }
  }

  static value_type load(Reader& reader) {
    if constexpr (bitwise && std::default_initializable<T>) {
      value_type elements;
      reader.read_bytes(elements.data(), sizeof(value_type));
      return elements;
    } else if constexpr (bitwise) {
      std::array<std::byte, sizeof(value_type)> raw;
      reader.read_bytes(raw.data(), raw.size());
      return std::bit_cast<value_type>(raw);
    } else if constexpr (std::default_initializable<T> && std::is_move_assignable_v<T>) {
      value_type elements{};
      for (T& element : elements) element = reader.load<T>();
      return elements;
    } else {
      // Braced initialization evaluates left to right.
      return [&reader]<std::size_t... I>(std::index_sequence<I...>) {
        return value_type{(static_cast<void>(I), reader.load<T>())...};
      }
      (std::make_index_sequence<N>{});
    }
  }
};

}  // namespace multiprocessing

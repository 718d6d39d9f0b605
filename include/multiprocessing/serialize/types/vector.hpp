// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/vector.hpp
//
// Serializes std::vector (Python: pickling list): a u64 length, then the elements; a vector of
// trivially copyable T in one copy. std::vector<bool> stores one byte (0/1) per element.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::vector<T>: u64 length, then the elements (one block of length * sizeof(T) bytes when T's
/// encoding is its object representation). Same fingerprint as std::deque<T> and std::list<T>.
template <class T, class Alloc>
struct serializer<std::vector<T, Alloc>> : serialize::detail::sequence_serializer<std::vector<T, Alloc>> {
  using value_type = std::vector<T, Alloc>;
  using element_wise = serialize::detail::sequence_serializer<value_type>;

  static void save(Writer& writer, const value_type& elements) {
    if constexpr (serialize::detail::is_bitwise<T>) {
      writer.write_length(elements.size());
      writer.write_bytes(elements.data(), elements.size() * sizeof(T));
    } else {
      element_wise::save(writer, elements);
    }
  }

  static value_type load(Reader& reader) {
    if constexpr (serialize::detail::is_bitwise<T> && std::default_initializable<T>) {
      const std::size_t length = reader.read_length(sizeof(T));
      value_type elements(length);
      reader.read_bytes(elements.data(), length * sizeof(T));
      return elements;
    } else {
      return element_wise::load(reader);
    }
  }
};

/// std::vector<bool>: u64 length, then one byte (0 or 1) per element.
template <class Alloc>
struct serializer<std::vector<bool, Alloc>>
    : serialize::detail::sequence_serializer<std::vector<bool, Alloc>> {};

}  // namespace multiprocessing

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
struct serializer<std::vector<T, Alloc>> {
  using value_type = std::vector<T, Alloc>;
  using parts = serialize::detail::type_list<T>;
  static constexpr bool enabled = serializable<T>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("seq");
    builder.type<T>();
  }

  static void save(Writer& writer, const value_type& elements) {
    if constexpr (serialize::detail::is_bitwise<T>) {
      writer.write_length(elements.size());
      writer.write_bytes(elements.data(), elements.size() * sizeof(T));
    } else {
      serialize::detail::save_range(writer, elements);
    }
  }

  static value_type load(Reader& reader) {
    if constexpr (serialize::detail::is_bitwise<T> && std::default_initializable<T>) {
      const std::size_t length = reader.read_length(sizeof(T));
      value_type elements(length);
      reader.read_bytes(elements.data(), length * sizeof(T));
      return elements;
    } else {
      const std::size_t length = serialize::detail::read_count<T>(reader);
      value_type elements;
      // Bounded by the bytes left; without a known minimum size, grow as elements arrive.
      if constexpr (serialize::detail::min_encoded_size<T>() > 0) elements.reserve(length);
      for (std::size_t i = 0; i < length; ++i) elements.push_back(reader.load<T>());
      return elements;
    }
  }
};

/// std::vector<bool>: u64 length, then one byte (0 or 1) per element.
template <class Alloc>
struct serializer<std::vector<bool, Alloc>> {
  using value_type = std::vector<bool, Alloc>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("seq");
    builder.type<bool>();
  }

  static void save(Writer& writer, const value_type& bits) {
    writer.write_length(bits.size());
    for (const bool bit : bits) writer.save(bit);
  }

  static value_type load(Reader& reader) {
    const std::size_t length = reader.read_length(1);
    value_type bits;
    bits.reserve(length);
    for (std::size_t i = 0; i < length; ++i) bits.push_back(reader.load<bool>());
    return bits;
  }
};

}  // namespace multiprocessing

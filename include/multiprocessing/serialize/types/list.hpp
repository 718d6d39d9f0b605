// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/list.hpp
//
// Serializes std::list (Python: pickling list): a u64 length, then the elements one by one.
// The encoding and fingerprint are std::vector's, so one side may send a vector and the other
// receive a std::list.
#pragma once

#include <cstddef>
#include <list>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::list<T>: u64 length, then the elements.
template <class T, class Alloc>
struct serializer<std::list<T, Alloc>> {
  using value_type = std::list<T, Alloc>;
  using parts = serialize::detail::type_list<T>;
  static constexpr bool enabled = serializable<T>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("seq");
    builder.type<T>();
  }

  static void save(Writer& writer, const value_type& elements) {
    serialize::detail::save_range(writer, elements);
  }

  static value_type load(Reader& reader) {
    const std::size_t length = serialize::detail::read_count<T>(reader);
    value_type elements;
    for (std::size_t i = 0; i < length; ++i) elements.push_back(reader.load<T>());
    return elements;
  }
};

}  // namespace multiprocessing

// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/set.hpp
//
// Serializes std::set and std::unordered_set (Python: pickling set): a u64 count, then the keys.
// A repeated key is rejected as corrupt on load (dumps never writes one). Both sets share a
// fingerprint: send one, receive the other.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {
namespace serialize::detail {

/// The shared encoding of the two sets.
template <class Set, class K>
struct set_serializer {
  using parts = type_list<K>;
  static constexpr bool enabled = serializable<K>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(signature_builder& builder) noexcept {
    builder.tag("set");
    builder.type<K>();
  }

  static void save(Writer& writer, const Set& set) { save_range(writer, set); }

  static Set load(Reader& reader) {
    const std::size_t count = read_count<K>(reader);
    Set set;
    if constexpr (requires { set.reserve(count); }) {
      if constexpr (min_encoded_size<K>() > 0) set.reserve(count);
    }
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t before = set.size();
      set.emplace_hint(set.end(), reader.load<K>());
      if (set.size() == before) {
        Reader::fail("duplicate key at element " + std::to_string(i) + " of " +
                     std::to_string(count));
      }
    }
    return set;
  }
};

}  // namespace serialize::detail

/// std::set<K>: u64 count, then the keys in order.
template <class K, class Compare, class Alloc>
struct serializer<std::set<K, Compare, Alloc>>
    : serialize::detail::set_serializer<std::set<K, Compare, Alloc>, K> {};

/// std::unordered_set<K>: u64 count, then the keys in iteration order.
template <class K, class Hash, class Equal, class Alloc>
struct serializer<std::unordered_set<K, Hash, Equal, Alloc>>
    : serialize::detail::set_serializer<std::unordered_set<K, Hash, Equal, Alloc>, K> {};

}  // namespace multiprocessing

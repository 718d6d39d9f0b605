// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/map.hpp
//
// Serializes std::map and std::unordered_map (Python: pickling dict): a u64 count, then key,
// value, key, value... A repeated key is rejected as corrupt on load (dumps never writes one).
// Both maps share a fingerprint: send one, receive the other.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {
namespace serialize::detail {

/// The shared encoding of the two maps.
template <class Map, class K, class V>
struct map_serializer {
  using parts = type_list<K, V>;
  static constexpr bool enabled = serializable<K> && serializable<V>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(signature_builder& builder) noexcept {
    builder.tag("map");
    builder.type<K>();
    builder.type<V>();
  }

  static void save(Writer& writer, const Map& map) {
    writer.write_length(map.size());
    for (const auto& [key, value] : map) {
      writer.save(key);
      writer.save(value);
    }
  }

  static Map load(Reader& reader) {
    const std::size_t count = reader.read_length(min_encoded_size<K>() + min_encoded_size<V>());
    Map map;
    if constexpr (requires { map.reserve(count); }) {
      if constexpr (min_encoded_size<K>() + min_encoded_size<V>() > 0) map.reserve(count);
    }
    for (std::size_t i = 0; i < count; ++i) {
      K key = reader.load<K>();  // two statements: function arguments have no order
      V value = reader.load<V>();
      const std::size_t before = map.size();
      map.emplace_hint(map.end(), std::move(key), std::move(value));
      if (map.size() == before) {
        Reader::fail("duplicate key at entry " + std::to_string(i) + " of " +
                     std::to_string(count));
      }
    }
    return map;
  }
};

}  // namespace serialize::detail

/// std::map<K, V>: u64 count, then the entries in key order.
template <class K, class V, class Compare, class Alloc>
struct serializer<std::map<K, V, Compare, Alloc>>
    : serialize::detail::map_serializer<std::map<K, V, Compare, Alloc>, K, V> {};

/// std::unordered_map<K, V>: u64 count, then the entries in iteration order.
template <class K, class V, class Hash, class Equal, class Alloc>
struct serializer<std::unordered_map<K, V, Hash, Equal, Alloc>>
    : serialize::detail::map_serializer<std::unordered_map<K, V, Hash, Equal, Alloc>, K, V> {};

}  // namespace multiprocessing

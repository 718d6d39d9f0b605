// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/optional.hpp
//
// Serializes std::optional (Python: a value or None): a u8 flag (0 empty, 1 engaged), then the
// value when engaged. Any other flag is rejected as corrupt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::optional<T>: u8 0, or u8 1 followed by the value.
template <class T>
struct serializer<std::optional<T>> {
  using value_type = std::optional<T>;
  using parts = serialize::detail::type_list<T>;
  static constexpr bool enabled = serializable<T>;
  static constexpr std::size_t min_size = 1;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("optional");
    builder.type<T>();
  }

  static void save(Writer& writer, const value_type& optional) {
    const std::uint8_t engaged = optional.has_value() ? 1 : 0;
    writer.write_bytes(&engaged, 1);
    if (optional) writer.save(*optional);
  }

  static value_type load(Reader& reader) {
    std::uint8_t engaged = 0;
    reader.read_bytes(&engaged, 1);
    if (engaged > 1) {
      Reader::fail("an optional's flag must be the byte 0 or 1, not " + std::to_string(engaged));
    }
    if (engaged == 0) return std::nullopt;
    return value_type(reader.load<T>());
  }
};

}  // namespace multiprocessing

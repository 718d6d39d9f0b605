// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/chrono.hpp
//
// Serializes std::chrono::duration (Python: pickling datetime.timedelta): its count(). The
// period is part of the fingerprint: milliseconds sent are not received as seconds.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::chrono::duration<Rep, Period>: count(), as a Rep.
template <class Rep, class Period>
struct serializer<std::chrono::duration<Rep, Period>> {
  using value_type = std::chrono::duration<Rep, Period>;
  using parts = serialize::detail::type_list<Rep>;
  static constexpr bool enabled = serializable<Rep>;
  static constexpr bool bitwise =
      serialize::detail::is_bitwise<Rep> && sizeof(value_type) == sizeof(Rep);
  static constexpr std::size_t min_size = serialize::detail::min_encoded_size<Rep>();

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("duration");
    builder.type<Rep>();
    builder.number(static_cast<std::uint64_t>(Period::num));
    builder.number(static_cast<std::uint64_t>(Period::den));
  }

  static void save(Writer& writer, const value_type& duration) { writer.save(duration.count()); }
  static value_type load(Reader& reader) { return value_type(reader.load<Rep>()); }
};

}  // namespace multiprocessing

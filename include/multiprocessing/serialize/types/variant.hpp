// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/variant.hpp
//
// Serializes std::variant (Python: a value of one of several types) and std::monostate (None):
// a u32 alternative index, then that alternative. An index out of range is rejected as corrupt.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::monostate: encodes to nothing.
template <>
struct serializer<std::monostate> {
  static constexpr std::size_t min_size = 0;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("monostate");
  }
  static void save(Writer& /*writer*/, const std::monostate& /*value*/) noexcept {}
  static std::monostate load(Reader& /*reader*/) noexcept { return {}; }
};

/// std::variant<T...>: u32 index(), then the active alternative.
template <class... T>
struct serializer<std::variant<T...>> {
  using value_type = std::variant<T...>;
  using parts = serialize::detail::type_list<T...>;
  static constexpr bool enabled = (serializable<T> && ...);
  static constexpr std::size_t min_size =
      4 + std::min({serialize::detail::min_encoded_size<std::remove_cv_t<T>>()...});

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("variant");
    builder.number(sizeof...(T));
    (builder.type<T>(), ...);
  }

  static void save(Writer& writer, const value_type& variant) {
    if (variant.valueless_by_exception()) {
      throw SerializationError("cannot save " + serialize::detail::type_name<value_type>() +
                               ": it is valueless by exception");
    }
    writer.save(static_cast<std::uint32_t>(variant.index()));
    std::visit([&writer](const auto& alternative) { writer.save(alternative); }, variant);
  }

  static value_type load(Reader& reader) {
    const auto index = reader.load<std::uint32_t>();
    if (index >= sizeof...(T)) {
      Reader::fail("variant index " + std::to_string(index) + " is out of range (" +
                   std::to_string(sizeof...(T)) + " alternatives)");
    }
    return loaders()[index](reader);
  }

 private:
  using loader = value_type (*)(Reader&);
  static constexpr std::array<loader, sizeof...(T)> loaders() noexcept {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return std::array<loader, sizeof...(T)>{+[](Reader& reader) {
        return value_type(
            std::in_place_index<I>,
            reader.load<std::remove_cv_t<std::variant_alternative_t<I, value_type>>>());
      }...};
    }
    (std::index_sequence_for<T...>{});
  }
};

}  // namespace multiprocessing

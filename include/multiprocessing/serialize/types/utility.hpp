// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/utility.hpp
//
// Serializes std::pair (Python: pickling a 2-tuple): first, then second. Same encoding and
// fingerprint as std::tuple<A, B>.
#pragma once

#include <cstddef>
#include <utility>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::pair<A, B>: first, then second.
template <class A, class B>
struct serializer<std::pair<A, B>> {
  using value_type = std::pair<A, B>;
  using parts = serialize::detail::type_list<A, B>;
  static constexpr bool enabled = serializable<A> && serializable<B>;
  static constexpr std::size_t min_size =
      serialize::detail::min_encoded_size<std::remove_cv_t<A>>() +
      serialize::detail::min_encoded_size<std::remove_cv_t<B>>();

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("tuple");
    builder.number(2);
    builder.type<A>();
    builder.type<B>();
  }

  static void save(Writer& writer, const value_type& pair) {
    writer.save(pair.first);
    writer.save(pair.second);
  }

  static value_type load(Reader& reader) {
    // Braced initialization evaluates left to right.
    return value_type{reader.load<std::remove_cv_t<A>>(), reader.load<std::remove_cv_t<B>>()};
  }
};

}  // namespace multiprocessing

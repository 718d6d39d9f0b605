// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/string.hpp
//
// Serializes std::basic_string (Python: pickling str/bytes): a u64 length, then the characters
// in one copy.
#pragma once

#include <cstddef>
#include <string>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::basic_string<C>: u64 length, then length * sizeof(C) bytes.
template <class C, class Traits, class Alloc>
struct serializer<std::basic_string<C, Traits, Alloc>> {
  using value_type = std::basic_string<C, Traits, Alloc>;
  using parts = serialize::detail::type_list<C>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(serialize::detail::signature_builder& builder) noexcept {
    builder.tag("str");
    builder.type<C>();
  }

  static void save(Writer& writer, const value_type& text) {
    writer.write_length(text.size());
    writer.write_bytes(text.data(), text.size() * sizeof(C));
  }

  static value_type load(Reader& reader) {
    const std::size_t length = reader.read_length(sizeof(C));
    value_type text(length, C{});
    reader.read_bytes(text.data(), length * sizeof(C));
    return text;
  }
};

}  // namespace multiprocessing

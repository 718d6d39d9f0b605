// SPDX-License-Identifier: MIT
// multiprocessing/serialize/message.hpp
//
// Defines messages: a value's encoding behind its type fingerprint (Python: pickle.dumps and
// pickle.loads), so that receiving a message as the wrong type is a TypeError, not garbage.
//
// A message is: u64 fingerprint (little-endian), then the payload Writer::save writes.
//
// The fingerprint, type_fingerprint<T>(), is FNV-1a 64 over a structural description of T, so it
// is the same for g++ and clang builds and for different programs:
//   * numbers by kind and size ("i" 4 for int32_t, "u" 8, "f" 8, "c" 1 for char, "b" for bool);
//   * std families by a family tag and their parameters: "seq" + element for vector, deque and
//     list (interchangeable: same encoding), "str" + char type, "array" + N + element,
//     "map"/"set" + key (+ value) for ordered and unordered alike, "tuple" + N + elements for
//     tuple and pair, "optional", "variant" + alternatives, "monostate", "duration" + rep + ratio;
//   * enums, trivially copyable structs ("pod" + size + fields), aggregates ("struct" + fields)
//     and member-serialize types ("class") by their qualified name as the compiler spells it,
//     normalized (spaces and "__cxx11::" dropped, anonymous namespaces and function-local scopes
//     spelled the same for both compilers), plus, for structs, the fingerprints of their fields;
//     so renaming a struct or changing a field's type changes the fingerprint. Names are stable
//     for namespace-scope classes; template arguments other than types and plain integers may be
//     spelled differently by two compilers (give such a type a serializer with a type_name);
//   * user specializations: their `static constexpr std::string_view type_name` when they have
//     one (the stable choice), else the normalized name of T.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiprocessing/errors.hpp>
#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing::serialize {

/// The 64-bit fingerprint of T's structure, stable across compilers and programs (see above).
template <class T>
[[nodiscard]] constexpr std::uint64_t type_fingerprint() noexcept;

/// Appends a message (fingerprint, then payload) to `writer`; the form the channels use, since a
/// Writer also carries attached file descriptors.
template <class T>
void save_message(Writer& writer, const T& value);

/// Reads a message written by save_message and checks its fingerprint; leaves any bytes after it.
/// @throws TypeError if the message holds another type; SerializationError if it is corrupt.
template <class T>
[[nodiscard]] T load_message(Reader& reader);

/// Encodes `value` as a message: 8-byte fingerprint, then the payload (Python: pickle.dumps).
/// A T that is not serializable is a compile error naming T.
/// @throws SerializationError if the value cannot be encoded (a valueless std::variant).
template <class T>
[[nodiscard]] std::vector<std::byte> dumps(const T& value);

/// Decodes a message made by dumps<T> (Python: pickle.loads). `fds` are the file descriptors
/// that came with it, for types that attach some.
/// @throws TypeError naming T if the message holds another type; SerializationError on
/// truncated or corrupt bytes, or bytes left over after the value.
template <class T>
[[nodiscard]] T loads(std::span<const std::byte> bytes, std::span<const int> fds = {});

template <class T>
constexpr std::uint64_t type_fingerprint() noexcept {
  using U = std::remove_cvref_t<T>;
  if constexpr (serializable<U>) {
    detail::signature_builder builder;
    builder.type<U>();
    return builder.value();
  } else {
    detail::require_serializable<U>();
    return 0;
  }
}

namespace detail {
inline std::string hex(std::uint64_t value) {
  constexpr char digits[] = "0123456789abcdef";
  std::string text = "0x0000000000000000";
  for (std::size_t i = 0; i < 16; ++i) {
    text[17 - i] = digits[(value >> (4 * i)) & 0xfU];
  }
  return text;
}
}  // namespace detail

template <class T>
void save_message(Writer& writer, const T& value) {
  using U = std::remove_cvref_t<T>;
  writer.save(type_fingerprint<U>());
  writer.save(value);
}

template <class T>
T load_message(Reader& reader) {
  using U = std::remove_cvref_t<T>;
  constexpr std::uint64_t expected = type_fingerprint<U>();
  if (reader.remaining() < sizeof(std::uint64_t)) {
    throw SerializationError("cannot load " + detail::type_name<U>() + ": the message has " +
                             std::to_string(reader.remaining()) +
                             " bytes, fewer than its 8-byte type fingerprint");
  }
  const auto fingerprint = reader.load<std::uint64_t>();
  if (fingerprint != expected) {
    throw TypeError("cannot load " + detail::type_name<U>() +
                    ": the message holds a value of another type (fingerprint " +
                    detail::hex(fingerprint) + ", expected " + detail::hex(expected) + ")");
  }
  return reader.load<U>();
}

template <class T>
std::vector<std::byte> dumps(const T& value) {
  Writer writer;
  save_message(writer, value);
  return std::move(writer).take();
}

template <class T>
T loads(std::span<const std::byte> bytes, std::span<const int> fds) {
  using U = std::remove_cvref_t<T>;
  Reader reader(bytes, fds);
  U value = load_message<U>(reader);
  if (reader.remaining() != 0) {
    throw SerializationError("cannot load " + detail::type_name<U>() + ": " +
                             std::to_string(reader.remaining()) +
                             " bytes are left over after the value");
  }
  return value;
}

}  // namespace multiprocessing::serialize

namespace multiprocessing {
using serialize::dumps;
using serialize::loads;
}  // namespace multiprocessing

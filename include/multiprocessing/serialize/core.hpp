// SPDX-License-Identifier: MIT
// multiprocessing/serialize/core.hpp
//
// Defines the core of the serialization trait layer (Python: pickle's Pickler/Unpickler): the
// customization point mp::serializer<T>, the byte Writer and the bounds-checked Reader, the
// concept serializable<T>, and the built-in handling of arithmetic types, enums, std::byte,
// bool, trivially copyable structs, aggregates and types with a member serialize(). The std
// containers live in serialize/types/*.hpp, messages (fingerprint + payload) in message.hpp.
//
// Which encoding a type gets, first match wins:
//   1. a specialization of mp::serializer<T> (the std families in types/*.hpp are ones too);
//   2. a member `template <class Archive> void serialize(Archive& ar) { ar(a, b); }`, called with a
//      Writer to save and, after default-constructing T, with a Reader to load;
//   3. bool (one byte), arithmetic types and enums (their object representation);
//   4. trivially copyable classes whose every field is again a number, enum or byte (or an array
//      or struct of those): the object representation, in ONE copy (padding included);
//   5. aggregates whose fields are all serializable: field by field, no boilerplate
//      (see reflect.hpp for what counts as a reflectable aggregate).
// Rejected at compile time, with a static_assert naming the type: raw pointers, member pointers
// and nullptr_t (an address means nothing in another process), views (std::string_view,
// std::span, std::reference_wrapper, std::initializer_list), and anything else that matches no
// rule, e.g. std::unique_ptr, std::function, std::thread, or a struct holding one of them.
// Pointers hiding in a struct are found when the struct is reflectable (or, for trivially
// copyable aggregates with C-array members, through their brace-elided leaves). A trivially
// copyable class that is NOT an aggregate (private members, constructors) or a union cannot be
// looked into: it is copied as is, so one that holds a pointer must provide a serializer.
//
// Wire format (payload; a message adds an 8-byte fingerprint in front, see message.hpp):
//   * every number has a fixed width and is little-endian; the library requires a little-endian
//     target (static_assert below), so numbers and trivially copyable structs are memcpy'd;
//   * bool: one byte, 0 or 1 (anything else is rejected on load);
//   * arithmetic and enums: sizeof(T) bytes (enums accept any value of the underlying type);
//   * trivially copyable structs (rule 4): sizeof(T) bytes, the object representation;
//   * aggregates (rule 5): the fields one after the other, nothing in between;
//   * lengths: u64 element count, followed by the elements (strings and contiguous containers of
//     trivially copyable T in one block of n * sizeof(T) bytes);
//   * std::optional: u8 flag 0/1, then the value if 1; std::variant: u32 index, then the value;
//     std::pair/std::tuple/std::array: the elements, no length; std::monostate: nothing;
//     std::map/unordered_map: u64 count, then key, value, key, value...; sets alike;
//     std::chrono::duration: its count().
// Loading is bounds-checked: nothing is read past the end, and a length prefix n is accepted only
// if n elements of the element type's minimum encoded size fit in the bytes left (so a hostile
// prefix of 2^63 is an error, not an allocation). Element types that may encode to zero bytes
// (std::monostate, empty tuples, types whose size is unknown such as member-serialize types) are
// capped at max(bytes left, max_empty_elements). Duplicate keys in a set or map are rejected
// (dumps never produces them). Nesting deeper than max_depth levels is rejected (a recursive
// type must not overflow the stack on hostile bytes). Every decoding failure throws
// mp::SerializationError naming the type being loaded and the reason.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <multiprocessing/errors.hpp>
#include <multiprocessing/serialize/reflect.hpp>

namespace multiprocessing {

/// The serialization customization point (Python: __reduce__ / copyreg). Specialize it for a type
/// that needs its own encoding:
/// ```cpp
/// template <> struct mp::serializer<Handle> {
///   static void save(mp::Writer& w, const Handle& h) { w(h.id); }
///   static Handle load(mp::Reader& r) { return Handle(r.load<int>()); }
///   // optional: a stable name that enters the type fingerprint (default: the demangled name)
///   static constexpr std::string_view type_name = "app::Handle";
///   // optional: the fewest bytes an encoding takes (tightens length-prefix checks; default 0)
///   static constexpr std::size_t min_size = 4;
/// };
/// ```
/// A specialization wins over every built-in rule. The primary template handles the built-in
/// categories listed at the top of this file; using it with any other type is a compile error
/// that names the type.
template <class T, class Enable = void>
struct serializer;

namespace serialize {

class Writer;
class Reader;

/// Deepest nesting of non-trivial values a Reader accepts before throwing SerializationError.
inline constexpr std::size_t max_depth = 256;
/// Longest length prefix accepted for elements that may encode to zero bytes, when it exceeds
/// the bytes left (std::vector<std::monostate> and the like).
inline constexpr std::size_t max_empty_elements = std::size_t{1} << 24;

static_assert(std::endian::native == std::endian::little,
              "multiprocessing: the wire format is little-endian and copies numbers as they are in "
              "memory; big-endian targets are not supported");

namespace detail {

// ---------------------------------------------------------------------------------------------
// Type names: for error messages, and for the fingerprints of user types.

template <class T>
constexpr const char* pretty_function() noexcept {
  return __PRETTY_FUNCTION__;
}

/// The compiler's spelling of T, cut out of __PRETTY_FUNCTION__ ("[with T = X]" on g++,
/// "[T = X]" on clang). Not yet normalized: see signature_builder::name and type_name.
template <class T>
constexpr std::string_view raw_type_name() noexcept {
  constexpr std::string_view full = pretty_function<T>();
  constexpr std::size_t start = full.find("T = ") + 4;
  constexpr std::size_t end = full.rfind(']');
  return full.substr(start, end - start);
}

/// Drops a function-local scope ("main()::Local" on g++ is "Local" on clang).
constexpr std::string_view strip_local_scope(std::string_view name) noexcept {
  int depth = 0;
  std::size_t cut = 0;
  for (std::size_t i = 0; i + 2 < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') ++depth;
    if (c == '>') --depth;
    if (depth == 0 && c == ')' && name[i + 1] == ':' && name[i + 2] == ':') cut = i + 3;
  }
  return name.substr(cut);
}

/// T's name for humans: "std::vector<int>", "std::string", "app::Point".
template <class T>
std::string type_name();

/// Builds a type's fingerprint: FNV-1a 64 over a structural description of the type (see
/// message.hpp for what goes in). Built-in serializers describe themselves through a
/// `static constexpr void signature(signature_builder&)`.
class signature_builder {
 public:
  /// Adds a short tag ("seq", "map", ...) that names a family or a kind.
  constexpr void tag(std::string_view text) noexcept {
    for (char c : text) byte(static_cast<std::uint8_t>(c));
    byte(0);
  }
  /// Adds a number (a size, an extent, a ratio).
  constexpr void number(std::uint64_t value) noexcept {
    for (int i = 0; i < 8; ++i) byte(static_cast<std::uint8_t>(value >> (8 * i)));
  }
  /// Adds a compiler's spelling of a type name, normalized so that g++ and clang agree on
  /// namespace-scope classes: spaces and "__cxx11::" dropped, "{anonymous}" read as
  /// "(anonymous namespace)", a function-local scope dropped.
  constexpr void name(std::string_view raw) noexcept {
    constexpr std::string_view gcc_anon = "{anonymous}";
    constexpr std::string_view clang_anon = "(anonymous namespace)";
    constexpr std::string_view abi_tag = "__cxx11::";
    const std::string_view text = strip_local_scope(raw);
    for (std::size_t i = 0; i < text.size();) {
      const std::string_view rest = text.substr(i);
      if (rest.starts_with(gcc_anon) || rest.starts_with(clang_anon)) {
        for (char c : std::string_view("(anonymous)")) byte(static_cast<std::uint8_t>(c));
        i += rest.starts_with(gcc_anon) ? gcc_anon.size() : clang_anon.size();
      } else if (rest.starts_with(abi_tag)) {
        i += abi_tag.size();
      } else {
        if (text[i] != ' ') byte(static_cast<std::uint8_t>(text[i]));
        ++i;
      }
    }
    byte(0);
  }
  /// Adds the signature of a nested type (an element, a field, an alternative).
  template <class T>
  constexpr void type() noexcept;
  /// The fingerprint of everything added so far.
  [[nodiscard]] constexpr std::uint64_t value() const noexcept { return hash_; }

 private:
  constexpr void byte(std::uint8_t b) noexcept {
    hash_ ^= b;
    hash_ *= 1099511628211ULL;
  }
  template <class T>
  constexpr void field() noexcept;

  std::uint64_t hash_ = 14695981039346656037ULL;
};

/// Thrown by Reader primitives; Reader::load<T> turns it into a SerializationError that names T.
class unattributed_error : public SerializationError {
 public:
  using SerializationError::SerializationError;
};

// ---------------------------------------------------------------------------------------------
// Classification.

/// The rule (see the top of this file) that encodes a type.
enum class kind {
  specialized,   // 1. a serializer<T> specialization
  member,        // 2. member serialize()
  boolean,       // 3. bool
  scalar,        // 3. arithmetic or enum
  bitwise,       // 4. trivially copyable, one copy
  aggregate,     // 5. field by field
  pointer,       // rejected: raw pointer, member pointer, nullptr_t
  view,          // rejected: non-owning view
  not_loadable,  // rejected: member serialize() but no default constructor
  none,          // rejected: nothing matches
};

// Arrays and functions never reach serializer<T>: its load() cannot return them.
template <class T>
concept has_specialization = std::is_object_v<T> && !std::is_array_v<T> && !requires {
  typename serializer<T>::is_primary_template_;
};

template <class T>
concept has_member_serialize = std::is_class_v<T> &&
    requires(T& value, Writer& writer, Reader& reader) {
  value.serialize(writer);
  value.serialize(reader);
};

template <class T>
struct is_view : std::false_type {};
template <class C, class Traits>
struct is_view<std::basic_string_view<C, Traits>> : std::true_type {};
template <class E, std::size_t N>
struct is_view<std::span<E, N>> : std::true_type {};
template <class T>
struct is_view<std::reference_wrapper<T>> : std::true_type {};
template <class E>
struct is_view<std::initializer_list<E>> : std::true_type {};

template <class T>
consteval bool specialization_enabled() {
  if constexpr (requires { serializer<T>::enabled; }) {
    return serializer<T>::enabled;
  } else {
    return true;
  }
}

template <class T>
consteval kind kind_of();

/// serializable<T> for a cv-unqualified, non-reference T.
template <class T>
consteval bool serializable_impl() {
  constexpr kind k = kind_of<T>();
  return k == kind::specialized || k == kind::member || k == kind::boolean || k == kind::scalar ||
         k == kind::bitwise || k == kind::aggregate;
}

template <class T>
consteval bool compute_bitwise();

/// True when T's encoding is its object representation (sizeof(T) bytes copied as they are), so
/// that a contiguous run of T is one copy.
template <class T>
inline constexpr bool is_bitwise = compute_bitwise<T>();

/// Converts only to types with a bitwise encoding: `T{bitwise_field{}...}` checks the
/// brace-elided leaves of an aggregate that cannot be reflected field by field.
struct bitwise_field {
  template <class U>
  requires is_bitwise<U>
  operator U() const noexcept;  // NOLINT(google-explicit-constructor)
};

template <class T>
consteval bool fields_all_bitwise() {
  return []<class... F>(type_list<F...>) {
    return (is_bitwise<std::remove_cv_t<F>> && ...);
  }(field_types<T>{});
}

template <class T>
consteval bool fields_all_serializable() {
  return []<class... F>(type_list<F...>) {
    return (serializable_impl<std::remove_cv_t<F>>() && ...);
  }(field_types<T>{});
}

template <class T>
consteval bool compute_bitwise() {
  if constexpr (has_specialization<T>) {
    if constexpr (requires { serializer<T>::bitwise; }) {
      return specialization_enabled<T>() && serializer<T>::bitwise;
    } else {
      return false;
    }
  } else if constexpr (std::is_same_v<T, bool>) {
    return false;  // a loaded byte must be checked: anything but 0/1 is not a bool
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return true;
  } else if constexpr (std::is_bounded_array_v<T>) {
    return is_bitwise<std::remove_cv_t<std::remove_extent_t<T>>>;
  } else if constexpr (!std::is_class_v<T> && !std::is_union_v<T>) {
    return false;  // pointers, functions, void, unbounded arrays
  } else if constexpr (has_member_serialize<T> || is_view<T>::value ||
                       !std::is_trivially_copyable_v<T> || std::is_const_v<T>) {
    return false;
  } else if constexpr (std::is_union_v<T> || !std::is_aggregate_v<T>) {
    return true;  // cannot be looked into: copied as it is (documented at the top)
  } else if constexpr (reflectable<T>) {
    return fields_all_bitwise<T>();
  } else if constexpr (leaf_count<T> != no_count) {
    return initializable_with<T, bitwise_field, leaf_count<T>>();
  } else if constexpr (initializable_with<T, any_field, max_counted_leaves + 1>()) {
    // More leaves than we count (a large char buffer): check the first ones.
    return initializable_with<T, bitwise_field, max_counted_leaves + 1>();
  } else {
    return false;  // reference members, or fields that cannot be left out
  }
}

template <class T>
consteval kind kind_of() {
  if constexpr (has_specialization<T>) {
    return specialization_enabled<T>() ? kind::specialized : kind::none;
  } else if constexpr (std::is_pointer_v<T> || std::is_member_pointer_v<T> ||
                       std::is_null_pointer_v<T>) {
    return kind::pointer;
  } else if constexpr (is_view<T>::value) {
    return kind::view;
  } else if constexpr (has_member_serialize<T>) {
    return std::default_initializable<T> ? kind::member : kind::not_loadable;
  } else if constexpr (std::is_same_v<T, bool>) {
    return kind::boolean;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return kind::scalar;
  } else if constexpr (std::is_class_v<T> || std::is_union_v<T>) {
    if constexpr (is_bitwise<T>) {
      return kind::bitwise;
    } else if constexpr (reflectable<T>) {
      return fields_all_serializable<T>() ? kind::aggregate : kind::none;
    } else {
      return kind::none;
    }
  } else {
    return kind::none;  // C arrays (a function cannot return one), functions, void, references
  }
}

/// The fewest bytes T's encoding can take; 0 when it may be empty or is unknown.
template <class T>
consteval std::size_t min_encoded_size();

template <class T>
consteval std::size_t fields_min_size() {
  return []<class... F>(type_list<F...>) {
    return (std::size_t{0} + ... + min_encoded_size<std::remove_cv_t<F>>());
  }(field_types<T>{});
}

template <class T>
consteval std::size_t min_encoded_size() {
  constexpr kind k = kind_of<T>();
  if constexpr (k == kind::specialized) {
    if constexpr (requires { serializer<T>::min_size; }) {
      return serializer<T>::min_size;
    } else {
      return 0;
    }
  } else if constexpr (k == kind::boolean) {
    return 1;
  } else if constexpr (k == kind::scalar || k == kind::bitwise) {
    return sizeof(T);
  } else if constexpr (k == kind::aggregate) {
    return fields_min_size<T>();
  } else {
    return 0;
  }
}

}  // namespace detail

/// True for the types that can cross a process boundary (Python: picklable). See the rules at
/// the top of this file; cv-qualifiers and references are ignored.
template <class T>
concept serializable = detail::serializable_impl<std::remove_cvref_t<T>>();

/// Appends the encoding of values to a contiguous byte buffer (Python: pickle.Pickler). Also
/// collects the file descriptors that travel beside the bytes (SCM_RIGHTS or inheritance).
class Writer {
 public:
  /// Loading flag for member serialize(Archive&): false when saving.
  static constexpr bool is_loading = false;

  Writer() = default;

  /// Appends `size` raw bytes.
  void write_bytes(const void* data, std::size_t size);

  /// Appends a u64 length prefix (the counterpart of Reader::read_length).
  void write_length(std::size_t length);

  /// Saves each value in order; what a member `serialize(Archive& ar) { ar(a, b); }` calls.
  template <class... T>
  Writer& operator()(const T&... values);

  /// Appends the encoding of `value`, without a fingerprint. A T that is not serializable is a
  /// compile error naming T.
  /// @throws SerializationError if the value cannot be encoded (a valueless std::variant).
  template <class T>
  void save(const T& value);

  /// The bytes written so far.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {buffer_.data(), size_}; }

  /// Moves the bytes out; the Writer is left empty (its fds are kept).
  [[nodiscard]] std::vector<std::byte> take() && {
    buffer_.resize(size_);
    size_ = 0;
    return std::move(buffer_);
  }

  /// Records a file descriptor to send beside the bytes and returns its index, to be written in
  /// the payload and resolved with Reader::fd on the other side. The fd is neither owned nor
  /// duplicated: it must stay open until the message is sent. A descriptor attached again gets
  /// its first index (loaders duplicate what they keep, so sharing one is safe).
  std::uint32_t attach_fd(int fd);

  /// The file descriptors attached so far, by index.
  [[nodiscard]] std::span<const int> fds() const noexcept { return fds_; }

  /// Forgets the bytes and descriptors written so far, keeping the memory for the next message.
  void clear() noexcept {
    size_ = 0;
    fds_.clear();
  }

 private:
  /// Makes room for `more` bytes after the first size_.
  void grow(std::size_t more);

  // The first size_ bytes are the message. The vector is kept at its capacity, so that a write
  // is a bounds check and a copy (a resize per write zero-filled every byte once more).
  std::vector<std::byte> buffer_;
  std::size_t size_ = 0;
  std::vector<int> fds_;
};

/// Decodes values from a byte span (Python: pickle.Unpickler). Bounds-checked: it never reads
/// past the end, and throws SerializationError on truncated, corrupt or hostile bytes.
class Reader {
 public:
  /// Loading flag for member serialize(Archive&): true when loading.
  static constexpr bool is_loading = true;

  /// Reads from `bytes`; `fds` are the file descriptors that came with them, by index.
  explicit Reader(std::span<const std::byte> bytes, std::span<const int> fds = {}) noexcept
      : bytes_(bytes), fds_(fds) {}

  /// Copies the next `size` bytes to `out`.
  /// @throws SerializationError if fewer than `size` bytes are left.
  void read_bytes(void* out, std::size_t size);

  /// Loads each value in place, in order; what a member `serialize(Archive& ar) { ar(a, b); }`
  /// calls when loading.
  template <class... T>
  Reader& operator()(T&... values);

  /// Decodes a T saved with Writer::save (no fingerprint).
  /// @throws SerializationError naming T (or the innermost type that failed) and the reason.
  template <class T>
  [[nodiscard]] T load();

  /// Bytes not read yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - position_; }

  /// The file descriptor attached at `index` by Writer::attach_fd (not duplicated, not owned).
  /// @throws SerializationError if no fd has that index.
  [[nodiscard]] int fd(std::uint32_t index) const;

  /// Reads a u64 length prefix and returns it, rejecting one that cannot fit: more than
  /// remaining() / min_element_size elements, or, when min_element_size is 0 (elements that may
  /// encode to nothing), more than max(remaining(), max_empty_elements).
  /// @throws SerializationError on such a prefix or if fewer than 8 bytes are left.
  std::size_t read_length(std::size_t min_element_size = 1);

  /// Throws the SerializationError a serializer uses to reject corrupt bytes; Reader::load
  /// prefixes `reason` with "cannot load <type>: ".
  [[noreturn]] static void fail(const std::string& reason);

 private:
  /// fail() saying that `size` bytes are wanted and fewer are left.
  [[noreturn]] void fail_short(std::size_t size) const;

  std::span<const std::byte> bytes_;
  std::span<const int> fds_;
  std::size_t position_ = 0;
  std::size_t depth_ = 0;
};

namespace detail {

// The static_asserts below put T in the first line of the diagnostic on g++ (the "evaluates to
// false" note) and clang (the "due to requirement" text).
template <class T>
inline constexpr bool cannot_serialize = false;
template <class T>
inline constexpr bool cannot_serialize_raw_pointer = false;
template <class T>
inline constexpr bool cannot_serialize_view = false;
template <class T>
inline constexpr bool cannot_serialize_without_default_constructor = false;

template <class T>
constexpr void require_serializable() noexcept;

/// Explains why the parts of a rejected T (container elements, aggregate fields) fail.
template <class T>
constexpr void diagnose_parts() noexcept {
  if constexpr (has_specialization<T>) {
    if constexpr (requires { typename serializer<T>::parts; }) {
      []<class... P>(type_list<P...>) {
        (require_serializable<std::remove_cv_t<P>>(), ...);
      }(typename serializer<T>::parts{});
    }
  } else if constexpr (reflectable<T>) {
    []<class... F>(type_list<F...>) {
      (require_serializable<std::remove_cv_t<F>>(), ...);
    }(field_types<T>{});
  }
}

template <class T>
constexpr void require_serializable() noexcept {
  constexpr kind k = kind_of<T>();
  if constexpr (k == kind::pointer) {
    static_assert(cannot_serialize_raw_pointer<T>,
                  "multiprocessing: cannot serialize a raw pointer (an address means nothing in "
                  "another process): send the value it points to, or an index");
  } else if constexpr (k == kind::view) {
    static_assert(cannot_serialize_view<T>,
                  "multiprocessing: cannot serialize a view (std::string_view, std::span, ...): "
                  "it points into this process's memory; send a std::string or std::vector");
  } else if constexpr (k == kind::not_loadable) {
    static_assert(cannot_serialize_without_default_constructor<T>,
                  "multiprocessing: cannot serialize a type whose member serialize() needs a "
                  "default constructor to load into; add one or specialize mp::serializer<T>");
  } else if constexpr (k == kind::none) {
    static_assert(cannot_serialize<T>,
                  "multiprocessing: cannot serialize this type: give it a member `template <class "
                  "Archive> void serialize(Archive& ar)`, specialize mp::serializer<T>, or make it "
                  "an aggregate of serializable fields without pointers");
    diagnose_parts<T>();
  }
}

template <class T>
std::string type_name() {
  std::string name(strip_local_scope(raw_type_name<T>()));
  const auto replace_all = [&name](std::string_view from, std::string_view to) {
    for (std::size_t at = name.find(from); at != std::string::npos; at = name.find(from, at)) {
      name.replace(at, from.size(), to);
      at += to.size();
    }
  };
  replace_all("__cxx11::", "");
  replace_all("{anonymous}", "(anonymous namespace)");
  replace_all("> >", ">>");
  replace_all("std::basic_string<char>", "std::string");
  replace_all("std::basic_string_view<char>", "std::string_view");
  return name;
}

template <class T>
constexpr void signature_builder::field() noexcept {
  if constexpr (std::is_array_v<T>) {
    tag("carray");
    number(std::extent_v<T>);
    field<std::remove_cv_t<std::remove_extent_t<T>>>();
  } else {
    type<T>();
  }
}

template <class T>
constexpr void signature_builder::type() noexcept {
  using U = std::remove_cv_t<T>;
  constexpr kind k = kind_of<U>();
  if constexpr (k == kind::specialized) {
    if constexpr (requires(signature_builder & b) { serializer<U>::signature(b); }) {
      serializer<U>::signature(*this);
    } else if constexpr (requires { std::string_view(serializer<U>::type_name); }) {
      tag("named");
      tag(std::string_view(serializer<U>::type_name));
    } else {
      tag("specialized");
      name(raw_type_name<U>());
    }
  } else if constexpr (k == kind::member) {
    tag("class");
    name(raw_type_name<U>());
  } else if constexpr (k == kind::boolean) {
    tag("b");
  } else if constexpr (std::is_enum_v<U>) {
    tag("enum");
    name(raw_type_name<U>());
    type<std::underlying_type_t<U>>();
  } else if constexpr (k == kind::scalar) {
    if constexpr (std::is_same_v<U, char> || std::is_same_v<U, wchar_t> ||
                  std::is_same_v<U, char8_t> || std::is_same_v<U, char16_t> ||
                  std::is_same_v<U, char32_t>) {
      tag("c");
    } else if constexpr (std::is_floating_point_v<U>) {
      tag("f");
    } else if constexpr (std::is_signed_v<U>) {
      tag("i");
    } else {
      tag("u");
    }
    number(sizeof(U));
  } else if constexpr (k == kind::bitwise) {
    tag("pod");
    name(raw_type_name<U>());
    number(sizeof(U));
    if constexpr (reflectable<U>) {
      number(field_count<U>);
      []<class... F>(signature_builder& self, type_list<F...>) {
        (self.field<std::remove_cv_t<F>>(), ...);
      }(*this, field_types<U>{});
    } else {
      tag("opaque");
    }
  } else if constexpr (k == kind::aggregate) {
    tag("struct");
    name(raw_type_name<U>());
    number(field_count<U>);
    []<class... F>(signature_builder& self, type_list<F...>) {
      (self.field<std::remove_cv_t<F>>(), ...);
    }(*this, field_types<U>{});
  } else {
    require_serializable<U>();
  }
}

/// Counts nesting on a Reader; see max_depth.
class depth_guard {
 public:
  explicit depth_guard(std::size_t& depth) : depth_(depth) {
    if (++depth_ > max_depth) {
      --depth_;
      Reader::fail("values nested deeper than " + std::to_string(max_depth) + " levels");
    }
  }
  ~depth_guard() { --depth_; }
  depth_guard(const depth_guard&) = delete;
  depth_guard& operator=(const depth_guard&) = delete;

 private:
  std::size_t& depth_;
};

}  // namespace detail
}  // namespace serialize

/// The primary template: the built-in rules 2-5 (see the top of this file). Specializations
/// replace it entirely.
template <class T, class Enable>
struct serializer {
  /// Marks the primary template, so that detail::has_specialization can tell it apart.
  using is_primary_template_ = void;

  /// Appends value's encoding.
  static void save(serialize::Writer& writer, const T& value);
  /// Decodes a T.
  /// @throws SerializationError on truncated or corrupt bytes.
  static T load(serialize::Reader& reader);
};

template <class T, class Enable>
void serializer<T, Enable>::save(serialize::Writer& writer, const T& value) {
  using serialize::detail::kind;
  constexpr kind k = serialize::detail::kind_of<T>();
  if constexpr (k == kind::member) {
    // serialize() is one non-const member for both directions; saving only reads through it.
    const_cast<T&>(value).serialize(writer);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
  } else if constexpr (k == kind::boolean) {
    const std::uint8_t byte = value ? 1 : 0;
    writer.write_bytes(&byte, 1);
  } else if constexpr (k == kind::scalar || k == kind::bitwise) {
    writer.write_bytes(&value, sizeof(T));
  } else if constexpr (k == kind::aggregate) {
    std::apply([&writer](const auto&... fields) { (writer.save(fields), ...); },
               serialize::tie_fields(value));
  } else {
    serialize::detail::require_serializable<T>();
  }
}

template <class T, class Enable>
T serializer<T, Enable>::load(serialize::Reader& reader) {
  using serialize::detail::kind;
  constexpr kind k = serialize::detail::kind_of<T>();
  if constexpr (k == kind::member) {
    T value{};
    value.serialize(reader);
    return value;
  } else if constexpr (k == kind::boolean) {
    std::uint8_t byte = 0;
    reader.read_bytes(&byte, 1);
    if (byte > 1) {
      serialize::Reader::fail("a bool must be the byte 0 or 1, not " + std::to_string(byte));
    }
    return byte == 1;
  } else if constexpr (k == kind::scalar || k == kind::bitwise) {
    std::array<std::byte, sizeof(T)> raw;
    reader.read_bytes(raw.data(), sizeof(T));
    return std::bit_cast<T>(raw);
  } else if constexpr (k == kind::aggregate) {
    // Braced initialization evaluates left to right: fields load in declaration order.
    return [&reader]<class... F>(serialize::detail::type_list<F...>) {
      return T{reader.load<std::remove_cv_t<F>>()...};
    }(serialize::field_types<T>{});
  } else {
    serialize::detail::require_serializable<T>();
    throw SerializationError("unreachable");
  }
}

namespace serialize {

inline void Writer::write_bytes(const void* data, std::size_t size) {
  if (size == 0) return;
  if (buffer_.size() - size_ < size) grow(size);
  std::memcpy(buffer_.data() + size_, data, size);
  size_ += size;
}

inline void Writer::grow(std::size_t more) {
  // Geometrically, into the vector's capacity. (vector::insert of a range in write_bytes trips
  // g++ 12's false -Wstringop-overflow at -O3 in every program that includes this header.)
  if (more > std::numeric_limits<std::size_t>::max() / 2 - size_) {
    throw SerializationError("a message of more than " + std::to_string(size_) + " + " +
                             std::to_string(more) + " bytes cannot be built");
  }
  buffer_.resize(std::max({size_ + more, 2 * buffer_.size(), std::size_t{64}}));
  buffer_.resize(buffer_.capacity());
}

inline void Writer::write_length(std::size_t length) {
  const auto prefix = static_cast<std::uint64_t>(length);
  write_bytes(&prefix, sizeof prefix);
}

template <class... T>
Writer& Writer::operator()(const T&... values) {
  (save(values), ...);
  return *this;
}

template <class T>
void Writer::save(const T& value) {
  using U = std::remove_cv_t<T>;
  if constexpr (serializable<U>) {
    serializer<U>::save(*this, value);
  } else {
    detail::require_serializable<U>();
  }
}

inline std::uint32_t Writer::attach_fd(int fd) {
  // One descriptor attached twice travels once: a vector of handles to one object (proxies of
  // one Manager, copies of one Queue) costs one descriptor, not one per element.
  if (const auto it = std::find(fds_.begin(), fds_.end(), fd); it != fds_.end()) {
    return static_cast<std::uint32_t>(it - fds_.begin());
  }
  if (fds_.size() >= std::numeric_limits<std::uint32_t>::max()) {
    throw SerializationError("cannot attach more than 2^32 - 1 file descriptors to one message");
  }
  fds_.push_back(fd);
  return static_cast<std::uint32_t>(fds_.size() - 1);
}

inline void Reader::fail(const std::string& reason) { throw detail::unattributed_error(reason); }

inline void Reader::read_bytes(void* out, std::size_t size) {
  // Short enough to be inlined into every scalar load; the message is built out of line.
  if (size > remaining()) [[unlikely]] fail_short(size);
  if (size != 0) std::memcpy(out, bytes_.data() + position_, size);
  position_ += size;
}

template <class... T>
Reader& Reader::operator()(T&... values) {
  ((values = load<T>()), ...);
  return *this;
}

template <class T>
T Reader::load() {
  static_assert(!std::is_reference_v<T>, "Reader::load<T>: T must be a value type");
  using U = std::remove_cv_t<T>;
  if constexpr (!serializable<U>) {
    detail::require_serializable<U>();
    throw SerializationError("unreachable");
  } else {
    try {
      if constexpr (detail::kind_of<U>() == detail::kind::scalar ||
                    detail::kind_of<U>() == detail::kind::boolean) {
        return serializer<U>::load(*this);
      } else {
        const detail::depth_guard guard(depth_);
        return serializer<U>::load(*this);
      }
    } catch (const detail::unattributed_error& error) {
      throw SerializationError("cannot load " + detail::type_name<U>() + ": " + error.what());
    }
  }
}

[[gnu::noinline, gnu::cold]] inline void Reader::fail_short(std::size_t size) const {
  fail("needs " + std::to_string(size) + " more bytes but only " + std::to_string(remaining()) +
       " are left");
}

inline int Reader::fd(std::uint32_t index) const {
  if (index >= fds_.size()) {
    fail("file descriptor index " + std::to_string(index) + " is out of range (" +
         std::to_string(fds_.size()) + " attached)");
  }
  return fds_[index];
}

inline std::size_t Reader::read_length(std::size_t min_element_size) {
  std::uint64_t prefix = 0;
  read_bytes(&prefix, sizeof prefix);
  const std::size_t left = remaining();
  if (min_element_size == 0) {
    const std::size_t cap = left > max_empty_elements ? left : max_empty_elements;
    if (prefix > cap) {
      fail("length prefix " + std::to_string(prefix) + " exceeds the limit of " +
           std::to_string(cap) + " elements that may encode to nothing");
    }
  } else if (prefix > left / min_element_size) {
    if (min_element_size == 1) {
      fail("length prefix " + std::to_string(prefix) + " exceeds the " + std::to_string(left) +
           " bytes left");
    }
    fail("length prefix " + std::to_string(prefix) + " (elements of at least " +
         std::to_string(min_element_size) + " bytes) exceeds the " + std::to_string(left) +
         " bytes left");
  }
  return static_cast<std::size_t>(prefix);
}

namespace detail {

/// Writes a length prefix and each element of a range.
template <class Range>
void save_range(Writer& writer, const Range& range) {
  writer.write_length(static_cast<std::size_t>(std::size(range)));
  for (const auto& element : range) writer.save(element);
}

/// Reads the length prefix of a container of T, bounded by T's minimum encoded size.
template <class T>
std::size_t read_count(Reader& reader) {
  return reader.read_length(min_encoded_size<T>());
}

/// The serializer of a sequence container (std::deque, std::list, and std::vector's element-wise
/// path): u64 length, then the elements one by one. Every sequence shares the fingerprint tag
/// "seq", so one side may send a vector and the other receive a deque or a list.
template <class Sequence>
struct sequence_serializer {
  using value_type = Sequence;
  using element_type = typename Sequence::value_type;
  using parts = type_list<element_type>;
  static constexpr bool enabled = serializable<element_type>;
  static constexpr std::size_t min_size = 8;

  static constexpr void signature(signature_builder& builder) noexcept {
    builder.tag("seq");
    builder.template type<element_type>();
  }

  static void save(Writer& writer, const value_type& elements) { save_range(writer, elements); }

  static value_type load(Reader& reader) {
    const std::size_t length = read_count<element_type>(reader);
    value_type elements;
    // The length is bounded by the bytes left; without a known minimum element size, grow as
    // elements arrive instead.
    if constexpr (requires { elements.reserve(length); }) {
      if constexpr (min_encoded_size<element_type>() > 0) elements.reserve(length);
    }
    for (std::size_t i = 0; i < length; ++i) elements.push_back(reader.load<element_type>());
    return elements;
  }
};

}  // namespace detail
}  // namespace serialize

using serialize::Reader;
using serialize::serializable;
using serialize::Writer;

}  // namespace multiprocessing

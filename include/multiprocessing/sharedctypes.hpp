// SPDX-License-Identifier: MIT
// multiprocessing/sharedctypes.hpp
//
// Defines Value<T>, Array<T>, RawValue<T> and RawArray<T>: plain data in shared memory, seen and
// changed by every process that has a handle (Python: multiprocessing.Value / multiprocessing.Array
// and multiprocessing.sharedctypes.RawValue / RawArray).
//
//   mp::Value<int> counter(0);       // with a fresh RLock: counter.get_lock()
//   {
//     std::lock_guard g(counter.get_lock());   // Python: with counter.get_lock():
//     counter.value() += 1;
//   }
//   mp::Array<double> a(10);         // zeroed;  mp::Array<int> b{1, 2, 3};
//   mp::Process p(f, counter, a);    // the child's writes are visible here
//   p.start();
//
// T is any trivially copyable type (numbers, enums, std::array, user structs without pointers).
// The data lives in an anonymous memfd segment (detail/shm.hpp): nothing ever appears in /dev/shm,
// and it is freed when the last process holding a handle ends, however it ends. Handles are cheap
// and copyable (copies share the data, like Python references) and cross fork, spawn and
// forkserver as Process arguments: the segment's descriptor travels with them, and with the lock.
//
// Differences from Python:
// - value() returns a T& into shared memory and indexing returns T&: neither takes the lock
//   (Python's synchronized wrappers lock around each single read or write, which never made
//   `v.value += 1` atomic anyway). Compound updates need the lock in both languages. The setter value(x) takes
//   the lock, as Python's `v.value = x` does.
// - The lock's type is a template parameter: Value<T> and Array<T> use an RLock, as Python's
//   lock=True does; to share an existing mp::Lock, write Value<T, mp::Lock>(init, lock) (class
//   template argument deduction does it for `mp::Value v(0.0, lock)`).
// - lock=false still gives a Value (not Python's bare ctypes object): get_lock() then throws
//   AttributeError, as Python's "'c_int' object has no attribute 'get_lock'".
// - Out-of-range at(i) throws std::out_of_range (Python: IndexError, which mp:: does not define);
//   operator[] is unchecked, as for std::vector.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <mutex>
#include <new>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/shm.hpp"
#include "errors.hpp"
#include "serialize/core.hpp"
#include "synchronize.hpp"
#include "timeout.hpp"

namespace multiprocessing {

namespace detail {

/// Why T cannot live in a Value/Array, as a compile error naming T.
template <class T>
constexpr void check_shared_ctype() {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::Value<T> / mp::Array<T>: T must be trivially copyable (numbers, enums, "
                "std::array, plain structs): shared memory holds bytes, and no constructor or "
                "destructor runs in the other processes");
  static_assert(!std::is_pointer_v<T> && !std::is_member_pointer_v<T>,
                "mp::Value<T> / mp::Array<T>: a pointer means nothing in another process");
  static_assert(!std::is_array_v<T>, "mp::Value<T[N]>: use mp::Array<T> or std::array<T, N>");
  static_assert(!std::is_const_v<T> && !std::is_volatile_v<T> && !std::is_reference_v<T>,
                "mp::Value<T> / mp::Array<T>: T must be a plain object type");
}

/// The start of an Array's segment; the elements follow, suitably aligned.
template <class T>
struct alignas(alignof(T) > alignof(std::uint64_t) ? alignof(T)
                                                   : alignof(std::uint64_t)) shared_array_header {
  std::uint64_t size;
};

/// The lock of a synchronized Value/Array: none, or a handle shared with other objects.
template <class L>
class ctype_lock {
 public:
  explicit ctype_lock(bool create) {
    if (create) lock_.emplace();
  }
  explicit ctype_lock(L lock) : lock_(std::move(lock)) {}
  explicit ctype_lock(std::optional<L> lock) : lock_(std::move(lock)) {}

  [[nodiscard]] L& get(const char* owner) const {
    if (!lock_) {
      throw AttributeError(std::string("this ") + owner +
                           " was created with lock=false: it has no get_lock() (Python: "
                           "'c_int' object has no attribute 'get_lock')");
    }
    return *lock_;
  }
  [[nodiscard]] const std::optional<L>& optional() const noexcept { return lock_; }

 private:
  mutable std::optional<L> lock_;
};

/// The lock half of Value and Array: get_lock() and the forwarding that makes them Lockable
/// (Python: `with v:` and v.acquire()/v.release() on a synchronized wrapper).
template <class Derived, class L>
class synchronized_ctype {
 public:
  /// The lock. Python: v.get_lock().
  /// @throws AttributeError when created with lock = false.
  [[nodiscard]] L& get_lock() const { return self().lock_.get(Derived::kind); }

  /// get_lock().acquire(block, timeout) (Python: v.acquire(), so that `with v:` works). Blocks
  /// up to `timeout` while the lock is held elsewhere; returns whether it was acquired.
  /// @throws AttributeError when created with lock = false.
  /// Memory ordering and peer death: as the lock's acquire() (synchronize.hpp).
  bool acquire(bool block = true, Timeout timeout = {}) const {
    return get_lock().acquire(block, timeout);
  }
  /// get_lock().release(). @throws as the lock's release(), or AttributeError without a lock.
  void release() const { get_lock().release(); }
  /// Lockable: std::lock_guard g(v) holds the object's lock (Python: `with v:`).
  void lock() const { get_lock().lock(); }
  void unlock() const { get_lock().unlock(); }
  [[nodiscard]] bool try_lock() const { return get_lock().try_lock(); }
  /// TimedLockable: std::unique_lock u(v, 100ms) waits up to 100 ms for the object's lock.
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(const std::chrono::duration<Rep, Period>& d) const {
    return get_lock().try_lock_for(d);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& tp) const {
    return get_lock().try_lock_until(tp);
  }

 private:
  [[nodiscard]] const Derived& self() const noexcept { return static_cast<const Derived&>(*this); }
};

template <class L>
inline constexpr bool is_lock_handle_v =
    std::is_same_v<L, multiprocessing::Lock> || std::is_same_v<L, multiprocessing::RLock>;

template <class T>
inline constexpr bool always_false_v = false;

}  // namespace detail

template <class T, class L>
class Value;
template <class T, class L>
class Array;

// --------------------------------------------------------------------------------------------------

/// Python: multiprocessing.sharedctypes.RawValue(typecode, *args). One T in shared memory, no lock.
/// A handle: copies share the value.
template <class T>
class RawValue {
 public:
  using value_type = T;

  /// A new shared T, initialized from `init` (value-initialized, i.e. zero for plain types, when
  /// omitted). Python: RawValue(typecode, init).
  explicit RawValue(const T& init = T{}) : RawValue(init, "RawValue") {}

  /// The shared T. No lock is taken. Python: v.value.
  [[nodiscard]] T& value() const noexcept { return *object_; }
  /// Stores `v`. Python: v.value = v.
  void value(const T& v) const { *object_ = v; }
  /// The shared T (Python: the ctypes object itself).
  [[nodiscard]] T& get_obj() const noexcept { return *object_; }

 private:
  template <class, class>
  friend struct multiprocessing::serializer;
  template <class, class>
  friend class Value;
  RawValue(const T& init, const char* what)
      : object_(detail::shared_object<T>::create(what, 0, init)) {}
  explicit RawValue(detail::shared_object<T> object) : object_(std::move(object)) {}
  static_assert((detail::check_shared_ctype<T>(), true));

  detail::shared_object<T> object_;
};

/// Python: multiprocessing.sharedctypes.RawArray(typecode, size_or_initializer). A fixed number of
/// T in shared memory, no lock. A handle: copies share the elements.
template <class T>
class RawArray {
  static_assert((detail::check_shared_ctype<T>(), true));
  using header = detail::shared_array_header<T>;

 public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  /// `n` value-initialized elements (zero for plain types, as Python's).
  /// @throws ValueError when n * sizeof(T) does not fit in memory addresses.
  explicit RawArray(std::size_t n) : RawArray(n, "RawArray") {
    for (std::size_t i = 0; i < n; ++i) ::new (data() + i) T{};
  }
  /// The elements of `init`. Python: RawArray('i', [1, 2, 3]).
  RawArray(std::initializer_list<T> init)
      : RawArray(std::span<const T>(init.begin(), init.size())) {}
  /// The elements of any sized or unsized input range (a std::vector, a view, ...).
  template <std::ranges::input_range R>
  requires(std::convertible_to<std::ranges::range_reference_t<R>, T> &&
           !std::is_same_v<std::remove_cvref_t<R>, RawArray>) explicit RawArray(R&& range)
      : RawArray(from_range(std::forward<R>(range))) {}

  /// Element i, unchecked (as std::vector). Python: a[i].
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return data()[i]; }
  /// Element i. @throws std::out_of_range when i >= size() (Python: IndexError).
  [[nodiscard]] T& at(std::size_t i) const {
    if (i >= size()) {
      throw std::out_of_range("Array index " + std::to_string(i) + " out of range (size " +
                              std::to_string(size()) + ")");
    }
    return data()[i];
  }
  /// The number of elements (fixed). Python: len(a).
  [[nodiscard]] std::size_t size() const noexcept {
    return static_cast<std::size_t>(object_->size);
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] T* data() const noexcept {
    return std::launder(reinterpret_cast<T*>(object_.tail()));
  }
  [[nodiscard]] T* begin() const noexcept { return data(); }
  [[nodiscard]] T* end() const noexcept { return data() + size(); }
  /// Every element, as a span into shared memory (Python: the ctypes array; a[:] copies it).
  [[nodiscard]] std::span<T> get_obj() const noexcept { return {data(), size()}; }

 private:
  template <class, class>
  friend struct multiprocessing::serializer;
  template <class, class>
  friend class Array;

  RawArray(std::size_t n, const char* what)
      : object_(detail::shared_object<header>::create(what, bytes_for(n), header{n})) {}
  explicit RawArray(detail::shared_object<header> object) : object_(std::move(object)) {}
  RawArray(std::span<const T> init, const char* what = "RawArray") : RawArray(init.size(), what) {
    for (std::size_t i = 0; i < init.size(); ++i) ::new (data() + i) T(init[i]);
  }

  template <class R>
  static RawArray from_range(R&& range, const char* what = "RawArray") {
    if constexpr (std::ranges::sized_range<R> && std::ranges::forward_range<R>) {
      RawArray a(static_cast<std::size_t>(std::ranges::size(range)), what);
      std::size_t i = 0;
      for (auto&& x : range) ::new (a.data() + i++) T(static_cast<T>(x));
      return a;
    } else {
      std::vector<T> copy;
      for (auto&& x : range) copy.push_back(static_cast<T>(x));
      return RawArray(std::span<const T>(copy), what);
    }
  }

  static std::size_t bytes_for(std::size_t n) {
    if (n > (std::numeric_limits<std::size_t>::max() - sizeof(header)) / sizeof(T)) {
      throw ValueError("an Array of " + std::to_string(n) + " elements of " +
                       std::to_string(sizeof(T)) + " bytes is too large");
    }
    return n * sizeof(T);
  }

  /// A loaded segment must hold as many elements as its header says.
  void check_loaded() const {
    if (object_->size > object_.tail_size() / sizeof(T)) {
      throw SerializationError("an Array segment of " + std::to_string(object_.tail_size()) +
                               " bytes cannot hold " + std::to_string(object_->size) + " elements");
    }
  }

  detail::shared_object<header> object_;
};

// --------------------------------------------------------------------------------------------------

/// Python: multiprocessing.Value(typecode, *args, lock=True). A RawValue with a lock (an RLock
/// unless L says otherwise). A handle: copies share the value and the lock.
template <class T, class L = RLock>
class Value : public detail::synchronized_ctype<Value<T, L>, L> {
  static_assert(detail::is_lock_handle_v<L>, "mp::Value<T, L>: L must be mp::Lock or mp::RLock");

 public:
  using value_type = T;
  using lock_type = L;

  /// A new shared T initialized from `init` (zero for plain types when omitted), with a fresh lock
  /// when `lock` (Python: lock=True), none otherwise (lock=False).
  explicit Value(const T& init = T{}, bool lock = true) : raw_(init, "Value"), lock_(lock) {}
  /// A new shared T synchronized by an existing lock (Python: Value('i', 0, lock=l)).
  Value(const T& init, L lock) : raw_(init, "Value"), lock_(std::move(lock)) {}
  /// Rejects the other lock type with a message saying what to write instead.
  template <class Other>
  requires(detail::is_lock_handle_v<Other> && !std::is_same_v<Other, L>) Value(const T&, Other)
      : raw_(T{}), lock_(false) {
    static_assert(
        detail::always_false_v<Other>,
        "mp::Value<T> is synchronized by an mp::RLock: to share an mp::Lock, write "
        "mp::Value<T, mp::Lock>(init, lock) (or let CTAD deduce it: mp::Value v(init, lock))");
  }

  /// The shared T. No lock is taken: hold get_lock() for compound updates. Python: v.value.
  [[nodiscard]] T& value() const noexcept { return raw_.value(); }
  /// Stores `v`, under the lock when there is one (Python: v.value = v). Blocks while another
  /// thread or process holds the lock.
  /// Peer death: a holder that died is taken over (see synchronize.hpp), so this never hangs on it.
  void value(const T& v) const {
    if (lock_.optional()) {
      std::lock_guard guard(this->get_lock());
      raw_.value(v);
    } else {
      raw_.value(v);
    }
  }
  /// The shared T (Python: v.get_obj(), the unsynchronized object).
  [[nodiscard]] T& get_obj() const noexcept { return raw_.get_obj(); }

 private:
  friend class detail::synchronized_ctype<Value, L>;
  static constexpr const char* kind = "Value";
  template <class, class>
  friend struct multiprocessing::serializer;
  Value(RawValue<T> raw, std::optional<L> lock) : raw_(std::move(raw)), lock_(std::move(lock)) {}

  RawValue<T> raw_;
  detail::ctype_lock<L> lock_;
};

/// Python: multiprocessing.Array(typecode, size_or_initializer, lock=True). A RawArray with a lock
/// (an RLock unless L says otherwise). A handle: copies share the elements and the lock.
template <class T, class L = RLock>
class Array : public detail::synchronized_ctype<Array<T, L>, L> {
  static_assert(detail::is_lock_handle_v<L>, "mp::Array<T, L>: L must be mp::Lock or mp::RLock");

 public:
  using value_type = T;
  using lock_type = L;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  /// `n` zeroed (value-initialized) elements, with a fresh lock when `lock`. Python: Array('d', n).
  explicit Array(std::size_t n, bool lock = true) : raw_(make_zeroed(n)), lock_(lock) {}
  /// `n` zeroed elements synchronized by an existing lock.
  Array(std::size_t n, L lock) : raw_(make_zeroed(n)), lock_(std::move(lock)) {}
  /// The elements of `init`. Python: Array('i', [1, 2, 3]). As for std::vector, Array<int>{5}
  /// holds one element 5 and Array<int>(5) five zeros.
  Array(std::initializer_list<T> init, bool lock = true)
      : raw_(std::span<const T>(init.begin(), init.size()), "Array"), lock_(lock) {}
  Array(std::initializer_list<T> init, L lock)
      : raw_(std::span<const T>(init.begin(), init.size()), "Array"), lock_(std::move(lock)) {}
  /// The elements of any input range (a std::vector, a view, ...).
  template <std::ranges::input_range R>
  requires(std::convertible_to<std::ranges::range_reference_t<R>, T> &&
           !std::is_same_v<std::remove_cvref_t<R>, Array>) explicit Array(R&& range,
                                                                          bool lock = true)
      : raw_(RawArray<T>::from_range(std::forward<R>(range), "Array")), lock_(lock) {}
  template <std::ranges::input_range R>
  requires(std::convertible_to<std::ranges::range_reference_t<R>, T> &&
           !std::is_same_v<std::remove_cvref_t<R>, Array>) Array(R&& range, L lock)
      : raw_(RawArray<T>::from_range(std::forward<R>(range), "Array")), lock_(std::move(lock)) {}

  /// Element i, unchecked and without the lock. Python: a[i].
  [[nodiscard]] T& operator[](std::size_t i) const noexcept { return raw_[i]; }
  /// Element i. @throws std::out_of_range when i >= size() (Python: IndexError).
  [[nodiscard]] T& at(std::size_t i) const { return raw_.at(i); }
  /// The number of elements (fixed). Python: len(a).
  [[nodiscard]] std::size_t size() const noexcept { return raw_.size(); }
  [[nodiscard]] bool empty() const noexcept { return raw_.empty(); }
  [[nodiscard]] T* data() const noexcept { return raw_.data(); }
  [[nodiscard]] T* begin() const noexcept { return raw_.begin(); }
  [[nodiscard]] T* end() const noexcept { return raw_.end(); }
  /// Every element, as a span into shared memory (Python: a.get_obj()).
  [[nodiscard]] std::span<T> get_obj() const noexcept { return raw_.get_obj(); }

 private:
  friend class detail::synchronized_ctype<Array, L>;
  static constexpr const char* kind = "Array";
  template <class, class>
  friend struct multiprocessing::serializer;
  Array(RawArray<T> raw, std::optional<L> lock) : raw_(std::move(raw)), lock_(std::move(lock)) {}
  static RawArray<T> make_zeroed(std::size_t n) {
    RawArray<T> raw(n, "Array");
    for (std::size_t i = 0; i < n; ++i) ::new (raw.data() + i) T{};
    return raw;
  }

  RawArray<T> raw_;
  detail::ctype_lock<L> lock_;
};

// Deduction: mp::Value v(0.5, lock) is a Value<double, mp::Lock> when `lock` is an mp::Lock;
// mp::Array a(std::vector<long>{...}) is an Array<long>.
template <class T, class L>
requires detail::is_lock_handle_v<L> Value(T, L)
->Value<T, L>;
template <std::ranges::input_range R>
Array(R&&, bool = true) -> Array<std::ranges::range_value_t<R>>;
template <std::ranges::input_range R, class L>
requires detail::is_lock_handle_v<L> Array(R&&, L)
->Array<std::ranges::range_value_t<R>, L>;
template <std::ranges::input_range R>
RawArray(R&&) -> RawArray<std::ranges::range_value_t<R>>;

// --------------------------------------------------------------------------------------------------
// Serialization: the memfd travels beside the bytes (and the lock's, when there is one).

template <class T>
struct serializer<RawValue<T>> {
  static void save(serialize::Writer& out, const RawValue<T>& v) { v.object_.save(out); }
  static RawValue<T> load(serialize::Reader& in) {
    return RawValue<T>(detail::shared_object<T>::load(in, "RawValue"));
  }
};

template <class T>
struct serializer<RawArray<T>> {
  static void save(serialize::Writer& out, const RawArray<T>& a) { a.object_.save(out); }
  static RawArray<T> load(serialize::Reader& in) {
    RawArray<T> a(detail::shared_object<detail::shared_array_header<T>>::load(in, "RawArray"));
    a.check_loaded();
    return a;
  }
};

template <class T, class L>
struct serializer<Value<T, L>> {
  static void save(serialize::Writer& out, const Value<T, L>& v) {
    out.save(v.raw_);
    const auto& lock = v.lock_.optional();
    out.save(lock.has_value());
    if (lock) out.save(*lock);
  }
  static Value<T, L> load(serialize::Reader& in) {
    auto raw = in.load<RawValue<T>>();
    std::optional<L> lock;
    if (in.load<bool>()) lock.emplace(in.load<L>());
    return Value<T, L>(std::move(raw), std::move(lock));
  }
};

template <class T, class L>
struct serializer<Array<T, L>> {
  static void save(serialize::Writer& out, const Array<T, L>& a) {
    out.save(a.raw_);
    const auto& lock = a.lock_.optional();
    out.save(lock.has_value());
    if (lock) out.save(*lock);
  }
  static Array<T, L> load(serialize::Reader& in) {
    auto raw = in.load<RawArray<T>>();
    std::optional<L> lock;
    if (in.load<bool>()) lock.emplace(in.load<L>());
    return Array<T, L>(std::move(raw), std::move(lock));
  }
};

}  // namespace multiprocessing

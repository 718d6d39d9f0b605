// SPDX-License-Identifier: MIT
// multiprocessing/managers.hpp
//
// Python: multiprocessing.managers. A Manager holds containers (dict, list, Namespace, Value,
// Array) that every process can use through proxies, and hands out the library's process-shared
// Queue, Lock, Event, ... objects.
//
//   mp::Manager mgr;
//   auto d = mgr.dict<std::string, int>();
//   mp::Process p([](auto d) { d.set("x", 1); }, d);   // a proxy is a handle: pass it anywhere
//
// How it differs from Python, and why:
//   * No server process. The containers live in one shared memory store (memfd) that each process
//     holding a proxy maps; a proxy operation takes the store's robust lock and applies itself
//     (detail/manager_heap.hpp), which is 50-100x faster than Python's socket round trip. Each
//     operation is atomic, also against a process SIGKILLed in its middle: the next operation
//     finishes or rolls back the dead one's (the store's recoveries() counts them).
//   * Queue(), Lock(), Event(), ... return the library's process-shared objects themselves
//     (mp::Queue<T>, mp::Lock, ...): they already are handles that work in every process.
//   * Keys compare by their encoding: two keys are the same key when they serialize to the same
//     bytes. For strings, integers, enums, tuples, vectors and ordered maps of those this is
//     ordinary equality; floating-point keys distinguish 0.0 from -0.0, and unordered containers
//     as keys are not supported.
//   * Values that carry file descriptors (queues, locks, pipes) cannot be stored in containers
//     (TypeError); pass them to processes directly.
//   * A container's memory is returned when the Manager shuts down, not when its last proxy is
//     dropped (clear() returns what it held at once).
//   * After shutdown(), or once the Manager's process has died, proxies throw ProcessError.
#pragma once

#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "detail/manager_heap.hpp"
#include "detail/manager_objects.hpp"
#include "errors.hpp"
#include "queues.hpp"
#include "serialize.hpp"
#include "synchronize.hpp"

namespace multiprocessing {

class Manager;

/// Options of a Manager.
struct ManagerOptions {
  /// Bytes the store may grow to. Reserved as address space only: memory is taken as the
  /// containers grow, and an operation that would pass the capacity throws OSError.
  std::uint64_t capacity = std::uint64_t{64} << 30;
};

namespace managers {

namespace detail {
namespace mgr = multiprocessing::detail::mgr;

/// The encoding of `value` (no fingerprint: the container records its types).
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& value, const char* where) {
  serialize::Writer w;
  w.save(value);
  if (!w.fds().empty()) {
    throw TypeError(std::string(where) + ": a " + serialize::detail::type_name<T>() +
                    " carries file descriptors (a queue, lock or pipe) and cannot be stored in a "
                    "Manager's container; pass it to the processes directly");
  }
  return std::move(w).take();
}

/// The encodings of a range's items, each as a T.
template <class T, class R>
[[nodiscard]] std::vector<std::vector<std::byte>> encode_each(const R& values, const char* where) {
  std::vector<std::vector<std::byte>> out;
  for (const auto& v : values) out.push_back(encode(static_cast<const T&>(v), where));
  return out;
}

template <class T>
[[nodiscard]] T decode(std::span<const std::byte> bytes) {
  serialize::Reader r(bytes);
  T value = r.load<T>();
  if (r.remaining() != 0) {
    throw SerializationError("a Manager's stored " + serialize::detail::type_name<T>() + " has " +
                             std::to_string(r.remaining()) + " bytes left over");
  }
  return value;
}

/// Python's repr of a key in a KeyError, for the types that have an obvious one.
template <class K>
[[nodiscard]] std::string repr(const K& key) {
  if constexpr (std::is_convertible_v<const K&, std::string_view>) {
    return "'" + std::string(std::string_view(key)) + "'";
  } else if constexpr (std::is_same_v<K, bool>) {
    return key ? "True" : "False";
  } else if constexpr (std::is_arithmetic_v<K>) {
    return std::to_string(key);
  } else {
    return "a key of type " + serialize::detail::type_name<K>();
  }
}

/// What every proxy holds: the store and the object's offset in it.
class proxy_base {
 public:
  /// Operations finished or rolled back after their process died, over the whole store.
  [[nodiscard]] std::uint64_t recoveries() const {
    mgr::txn t = open("recoveries");
    return t.read(mgr::meta_at(mgr::meta_recoveries));
  }

  /// Two proxies are equal when they refer to the same object of the same store (also when one
  /// came from another process: a process has one heap object per store).
  [[nodiscard]] friend bool operator==(const proxy_base& a, const proxy_base& b) noexcept {
    return a.heap_ == b.heap_ && a.obj_ == b.obj_;
  }

 protected:
  proxy_base() = default;
  proxy_base(std::shared_ptr<mgr::heap> h, mgr::offset obj) : heap_(std::move(h)), obj_(obj) {}

  /// Starts an operation named `what` (for errors): checks the Manager is open, takes the lock.
  [[nodiscard]] mgr::txn open(const char* what) const {
    if (!heap_) throw ValueError(std::string(what) + ": the proxy refers to no Manager object");
    heap_->check_open(what);
    return mgr::txn(*heap_);
  }

  [[nodiscard]] const mgr::heap& store() const noexcept { return *heap_; }
  [[nodiscard]] mgr::offset object() const noexcept { return obj_; }

  void save_ref(serialize::Writer& out) const {
    if (!heap_) throw SerializationError("cannot send a proxy that refers to no Manager object");
    heap_->save(out);
    out.save(obj_);
  }

  /// Maps the store another process saved and checks that the object is what the proxy expects.
  [[nodiscard]] static std::pair<std::shared_ptr<mgr::heap>, mgr::offset> load_ref(
      serialize::Reader& in, mgr::kind k, std::uint64_t key_fp, std::uint64_t value_fp,
      const std::string& proxy) {
    auto h = mgr::heap::load_from(in);
    const auto obj = in.load<mgr::offset>();
    if (auto why = mgr::check_object(*h, obj, k, key_fp, value_fp)) {
      throw TypeError("cannot load " + proxy + ": " + *why);
    }
    return {std::move(h), obj};
  }

 private:
  std::shared_ptr<mgr::heap> heap_;
  mgr::offset obj_ = 0;
};

template <class R>
concept pair_range = std::ranges::input_range<R> && requires(std::ranges::range_reference_t<R> p) {
  p.first;
  p.second;
};

}  // namespace detail

// --- DictProxy
// -------------------------------------------------------------------------------------

/// Python: DictProxy, what Manager().dict() returns. Every operation is atomic; iteration-like
/// calls (keys, values, items, copy) return snapshots in insertion order.
template <class K, class V>
class DictProxy : public detail::proxy_base {
  using ops = detail::mgr::dict_ops;

 public:
  using key_type = K;
  using mapped_type = V;

  DictProxy() = default;  // refers to nothing; operations throw ValueError

  /// d[k] = v
  void set(const K& key, const V& value) {
    const auto kb = detail::encode(key, "dict.set");
    const auto vb = detail::encode(value, "dict.set");
    auto t = open("dict.set");
    ops(t, object()).set(kb, vb);
    t.commit();
  }

  /// d[k]
  /// @throws KeyError when `key` is absent.
  [[nodiscard]] V get(const K& key) const {
    const auto kb = detail::encode(key, "dict.get");
    auto t = open("dict.get");
    if (const auto v = ops(t, object()).find(kb)) return detail::decode<V>(bytes_at(store(), *v));
    throw KeyError(detail::repr(key));
  }

  /// d.get(k, default)
  [[nodiscard]] V get(const K& key, V default_value) const {
    const auto kb = detail::encode(key, "dict.get");
    auto t = open("dict.get");
    if (const auto v = ops(t, object()).find(kb)) return detail::decode<V>(bytes_at(store(), *v));
    return default_value;
  }

  /// k in d
  [[nodiscard]] bool contains(const K& key) const {
    const auto kb = detail::encode(key, "dict.contains");
    auto t = open("dict.contains");
    return ops(t, object()).find(kb).has_value();
  }

  /// d.pop(k)
  /// @throws KeyError when `key` is absent.
  V pop(const K& key) {
    if (auto v = pop_bytes(key)) return detail::decode<V>(*v);
    throw KeyError(detail::repr(key));
  }

  /// d.pop(k, default)
  V pop(const K& key, V default_value) {
    if (auto v = pop_bytes(key)) return detail::decode<V>(*v);
    return default_value;
  }

  /// del d[k]
  /// @throws KeyError when `key` is absent.
  void del(const K& key) {
    if (!pop_bytes(key)) throw KeyError(detail::repr(key));
  }

  /// d.popitem(): the last inserted pair, removed.
  /// @throws KeyError when the dict is empty.
  std::pair<K, V> popitem() {
    auto t = open("dict.popitem");
    auto kv = ops(t, object()).popitem();
    if (!kv) throw KeyError("popitem(): dictionary is empty");
    t.commit();
    return {detail::decode<K>(kv->first), detail::decode<V>(kv->second)};
  }

  /// d.setdefault(k, default): the stored value, `default_value` stored first when absent.
  V setdefault(const K& key, V default_value = V{}) {
    const auto kb = detail::encode(key, "dict.setdefault");
    const auto vb = detail::encode(default_value, "dict.setdefault");
    auto t = open("dict.setdefault");
    const auto v = ops(t, object()).setdefault(kb, vb);
    V out = detail::decode<V>(bytes_at(store(), v));
    t.commit();
    return out;
  }

  /// d.update(other): every pair of a range of pairs (a std::map, a vector of pairs, ...), in one
  /// atomic operation.
  template <detail::pair_range R>
  void update(const R& pairs) {
    std::vector<std::pair<std::vector<std::byte>, std::vector<std::byte>>> enc;
    for (const auto& [k, v] : pairs) {
      enc.emplace_back(detail::encode(static_cast<const K&>(k), "dict.update"),
                       detail::encode(static_cast<const V&>(v), "dict.update"));
    }
    auto t = open("dict.update");
    ops d(t, object());
    if (enc.size() > 16) d.reserve(enc.size());
    for (const auto& [k, v] : enc) d.set(k, v);
    t.commit();
  }
  void update(std::initializer_list<std::pair<K, V>> pairs) {
    update(std::span<const std::pair<K, V>>(pairs.begin(), pairs.size()));
  }
  /// d.update(other_proxy): a snapshot of `other` taken first.
  void update(const DictProxy& other) { update(other.items()); }

  /// len(d)
  [[nodiscard]] std::size_t size() const {
    auto t = open("dict.size");
    return static_cast<std::size_t>(ops(t, object()).size());
  }
  [[nodiscard]] bool empty() const { return size() == 0; }

  /// list(d.keys()), in insertion order.
  [[nodiscard]] std::vector<K> keys() const {
    std::vector<K> out;
    each("dict.keys",
         [&](const auto& e) { out.push_back(detail::decode<K>(bytes_at(store(), e.key))); });
    return out;
  }

  /// list(d.values()), in insertion order.
  [[nodiscard]] std::vector<V> values() const {
    std::vector<V> out;
    each("dict.values",
         [&](const auto& e) { out.push_back(detail::decode<V>(bytes_at(store(), e.value))); });
    return out;
  }

  /// list(d.items()), in insertion order.
  [[nodiscard]] std::vector<std::pair<K, V>> items() const {
    std::vector<std::pair<K, V>> out;
    each("dict.items", [&](const auto& e) {
      out.emplace_back(detail::decode<K>(bytes_at(store(), e.key)),
                       detail::decode<V>(bytes_at(store(), e.value)));
    });
    return out;
  }

  /// d.copy(): a snapshot as a local map; std::map when K is ordered, else std::unordered_map.
  template <class Map = std::conditional_t<std::totally_ordered<K>, std::map<K, V>,
                                           std::unordered_map<K, V>>>
  [[nodiscard]] Map copy() const {
    Map out;
    for (auto& [k, v] : items()) out.insert_or_assign(std::move(k), std::move(v));
    return out;
  }

  /// d.clear()
  void clear() {
    auto t = open("dict.clear");
    ops(t, object()).clear();
    t.commit();
  }

  void save(serialize::Writer& out) const { save_ref(out); }
  static DictProxy load(serialize::Reader& in) {
    auto [h, obj] = load_ref(in, detail::mgr::kind::dict, serialize::type_fingerprint<K>(),
                             serialize::type_fingerprint<V>(), "DictProxy");
    return DictProxy(std::move(h), obj);
  }

 private:
  friend class multiprocessing::Manager;
  using proxy_base::proxy_base;

  std::optional<std::vector<std::byte>> pop_bytes(const K& key) {
    const auto kb = detail::encode(key, "dict.pop");
    auto t = open("dict.pop");
    auto v = ops(t, object()).pop(kb);
    if (v) t.commit();
    return v;
  }

  template <class F>
  void each(const char* what, F&& f) const {
    auto t = open(what);
    ops(t, object()).for_each(std::forward<F>(f));
  }
};

// --- ListProxy
// -------------------------------------------------------------------------------------

/// Python: ListProxy, what Manager().list() returns. Indices may be negative, as in Python.
namespace detail {

/// What ListProxy and ArrayProxy share: Python's indexing (negative from the end), len and a
/// snapshot, over a list object of the store.
template <class T>
class sequence_proxy : public proxy_base {
 protected:
  using ops = mgr::list_ops;

  sequence_proxy() = default;
  sequence_proxy(std::shared_ptr<mgr::heap> h, mgr::offset obj) : proxy_base(std::move(h), obj) {}

  /// Index `i` of a sequence of `n` items as a position. @throws IndexError(`error`).
  static std::uint64_t position(std::uint64_t n, std::int64_t i, const char* error) {
    const auto size = static_cast<std::int64_t>(n);
    if (i < 0) i += size;
    if (i < 0 || i >= size) throw IndexError(error);
    return static_cast<std::uint64_t>(i);
  }

  /// s[i], as operation `what`; IndexError(`error`) when out of range.
  [[nodiscard]] T get_at(const char* what, std::int64_t i, const char* error) const {
    auto t = open(what);
    ops l(t, object());
    return decode<T>(bytes_at(store(), l.at(position(l.size(), i, error))));
  }

  /// s[i] = x, as operation `what`; IndexError(`error`) when out of range.
  void set_at(const char* what, std::int64_t i, const T& value, const char* error) {
    const auto vb = encode(value, what);
    auto t = open(what);
    ops l(t, object());
    l.set(position(l.size(), i, error), vb);
    t.commit();
  }

  /// len(s), as operation `what`.
  [[nodiscard]] std::size_t size_of(const char* what) const {
    auto t = open(what);
    return static_cast<std::size_t>(ops(t, object()).size());
  }

  /// list(s), as operation `what`.
  [[nodiscard]] std::vector<T> snapshot(const char* what) const {
    auto t = open(what);
    ops l(t, object());
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(l.size()));
    for (std::uint64_t i = 0; i < l.size(); ++i)
      out.push_back(decode<T>(bytes_at(store(), l.at(i))));
    return out;
  }
};

}  // namespace detail

template <class T>
class ListProxy : public detail::sequence_proxy<T> {
  using base = detail::sequence_proxy<T>;
  using base::object;
  using base::open;
  using base::position;
  using base::store;
  using typename base::ops;

 public:
  using value_type = T;

  ListProxy() = default;  // refers to nothing; operations throw ValueError

  /// l.append(x)
  void append(const T& value) {
    const auto vb = detail::encode(value, "list.append");
    auto t = open("list.append");
    ops(t, object()).append(vb);
    t.commit();
  }

  /// l.extend(range), in one atomic operation.
  template <std::ranges::input_range R>
  requires(std::convertible_to<std::ranges::range_reference_t<R>, const T&>) void extend(
      const R& values) {
    const auto enc = detail::encode_each<T>(values, "list.extend");
    auto t = open("list.extend");
    ops(t, object()).extend(enc);
    t.commit();
  }
  void extend(std::initializer_list<T> values) {
    extend(std::span<const T>(values.begin(), values.size()));
  }

  /// l[i]
  /// @throws IndexError when `i` is out of range.
  [[nodiscard]] T get(std::int64_t i) const {
    return this->get_at("list.get", i, "list index out of range");
  }

  /// l[i] = x
  /// @throws IndexError when `i` is out of range.
  void set(std::int64_t i, const T& value) {
    this->set_at("list.set", i, value, "list assignment index out of range");
  }

  /// l.insert(i, x): before position i, clamped to the list as Python does.
  void insert(std::int64_t i, const T& value) {
    const auto vb = detail::encode(value, "list.insert");
    auto t = open("list.insert");
    ops l(t, object());
    const auto n = static_cast<std::int64_t>(l.size());
    if (i < 0) i = std::max<std::int64_t>(0, i + n);
    l.insert(static_cast<std::uint64_t>(std::min(i, n)), vb);
    t.commit();
  }

  /// l.pop(i), by default the last item.
  /// @throws IndexError when the list is empty or `i` is out of range.
  T pop(std::int64_t i = -1) {
    auto t = open("list.pop");
    ops l(t, object());
    if (l.size() == 0) throw IndexError("pop from empty list");
    auto v = l.pop(position(l.size(), i, "pop index out of range"));
    t.commit();
    return detail::decode<T>(v);
  }

  /// l.remove(x): the first item equal to x.
  /// @throws ValueError when there is none.
  void remove(const T& value) {
    const auto vb = detail::encode(value, "list.remove");
    auto t = open("list.remove");
    ops l(t, object());
    const auto i = find(l, vb, 0);
    if (!i) throw ValueError("list.remove(x): x not in list");
    (void)l.pop(*i);
    t.commit();
  }

  /// l.index(x, start): the position of the first item equal to x at or after `start`.
  /// @throws ValueError when there is none.
  [[nodiscard]] std::size_t index(const T& value, std::int64_t start = 0) const {
    const auto vb = detail::encode(value, "list.index");
    auto t = open("list.index");
    ops l(t, object());
    const auto n = static_cast<std::int64_t>(l.size());
    if (start < 0) start = std::max<std::int64_t>(0, start + n);
    if (const auto i = find(l, vb, static_cast<std::uint64_t>(start)))
      return static_cast<std::size_t>(*i);
    throw ValueError("list.index(x): x not in list");
  }

  /// l.count(x)
  [[nodiscard]] std::size_t count(const T& value) const {
    const auto vb = detail::encode(value, "list.count");
    auto t = open("list.count");
    ops l(t, object());
    std::size_t c = 0;
    for (std::uint64_t i = 0; i < l.size(); ++i) c += same(l, i, vb) ? 1u : 0u;
    return c;
  }

  /// l.reverse()
  void reverse() {
    auto t = open("list.reverse");
    ops(t, object()).reverse();
    t.commit();
  }

  /// len(l)
  [[nodiscard]] std::size_t size() const { return this->size_of("list.size"); }
  [[nodiscard]] bool empty() const { return size() == 0; }

  /// l.clear()
  void clear() {
    auto t = open("list.clear");
    ops(t, object()).clear();
    t.commit();
  }

  /// list(l): a snapshot.
  [[nodiscard]] std::vector<T> to_vector() const { return this->snapshot("list.to_vector"); }

  void save(serialize::Writer& out) const { this->save_ref(out); }
  static ListProxy load(serialize::Reader& in) {
    auto [h, obj] = base::load_ref(in, detail::mgr::kind::list, 0, serialize::type_fingerprint<T>(),
                                   "ListProxy");
    return ListProxy(std::move(h), obj);
  }

 private:
  friend class multiprocessing::Manager;
  using base::base;

  [[nodiscard]] bool same(const ops& l, std::uint64_t i, std::span<const std::byte> vb) const {
    const auto b = bytes_at(store(), l.at(i));
    return b.size() == vb.size() && std::equal(b.begin(), b.end(), vb.begin());
  }

  [[nodiscard]] std::optional<std::uint64_t> find(const ops& l, std::span<const std::byte> vb,
                                                  std::uint64_t from) const {
    for (std::uint64_t i = from; i < l.size(); ++i) {
      if (same(l, i, vb)) return i;
    }
    return std::nullopt;
  }
};

// --- ArrayProxy
// ------------------------------------------------------------------------------------

/// Python: ArrayProxy, what Manager().Array(typecode, sequence) returns: a fixed-size sequence.
template <class T>
class ArrayProxy : public detail::sequence_proxy<T> {
  using base = detail::sequence_proxy<T>;

 public:
  using value_type = T;

  ArrayProxy() = default;  // refers to nothing; operations throw ValueError

  /// a[i]
  /// @throws IndexError when `i` is out of range.
  [[nodiscard]] T get(std::int64_t i) const {
    return this->get_at("Array.get", i, "array index out of range");
  }

  /// a[i] = x
  /// @throws IndexError when `i` is out of range.
  void set(std::int64_t i, const T& value) {
    this->set_at("Array.set", i, value, "array index out of range");
  }

  /// len(a)
  [[nodiscard]] std::size_t size() const { return this->size_of("Array.size"); }

  /// a[:]
  [[nodiscard]] std::vector<T> to_vector() const { return this->snapshot("Array.to_vector"); }

  void save(serialize::Writer& out) const { this->save_ref(out); }
  static ArrayProxy load(serialize::Reader& in) {
    auto [h, obj] = base::load_ref(in, detail::mgr::kind::array, 0,
                                   serialize::type_fingerprint<T>(), "ArrayProxy");
    return ArrayProxy(std::move(h), obj);
  }

 private:
  friend class multiprocessing::Manager;
  using base::base;
};

// --- ValueProxy
// ------------------------------------------------------------------------------------

/// Python: ValueProxy, what Manager().Value(typecode, value) returns: get()/set() and the
/// `value` attribute. Any serializable T.
template <class T>
class ValueProxy : public detail::proxy_base {
 public:
  using value_type = T;

  ValueProxy() = default;  // refers to nothing; operations throw ValueError

  [[nodiscard]] T get() const {
    auto t = open("Value.get");
    return detail::decode<T>(bytes_at(store(), t.read(object() + detail::mgr::cell_layout::value)));
  }
  void set(const T& value) {
    const auto vb = detail::encode(value, "Value.set");
    auto t = open("Value.set");
    detail::mgr::set_cell(t, object(), vb);
    t.commit();
  }
  /// Python: v.value (read) and v.value = x.
  [[nodiscard]] T value() const { return get(); }
  void value(const T& v) { set(v); }

  void save(serialize::Writer& out) const { save_ref(out); }
  static ValueProxy load(serialize::Reader& in) {
    auto [h, obj] =
        load_ref(in, detail::mgr::kind::cell, 0, serialize::type_fingerprint<T>(), "ValueProxy");
    return ValueProxy(std::move(h), obj);
  }

 private:
  friend class multiprocessing::Manager;
  using proxy_base::proxy_base;
};

// --- NamespaceProxy
// --------------------------------------------------------------------------------

/// Python: NamespaceProxy, what Manager().Namespace() returns: named attributes of any
/// serializable types (each remembers its type).
class NamespaceProxy : public detail::proxy_base {
  using ops = detail::mgr::dict_ops;

 public:
  NamespaceProxy() = default;  // refers to nothing; operations throw ValueError

  /// ns.name = value
  template <class T>
  void set(const std::string& name, const T& value) {
    const auto kb = detail::encode(name, "Namespace.set");
    serialize::Writer w;
    serialize::save_message(w, value);
    if (!w.fds().empty()) {
      throw TypeError("Namespace.set: attribute '" + name +
                      "' carries file descriptors and cannot be stored in a Manager");
    }
    auto t = open("Namespace.set");
    ops(t, object()).set(kb, w.bytes());
    t.commit();
  }

  /// ns.name
  /// @throws AttributeError when there is no such attribute; TypeError when it holds another type.
  template <class T>
  [[nodiscard]] T get(const std::string& name) const {
    const auto kb = detail::encode(name, "Namespace.get");
    auto t = open("Namespace.get");
    const auto v = ops(t, object()).find(kb);
    if (!v) throw AttributeError("'Namespace' object has no attribute '" + name + "'");
    try {
      return serialize::loads<T>(bytes_at(store(), *v));
    } catch (const TypeError& e) {
      throw TypeError("Namespace attribute '" + name + "': " + e.what());
    }
  }

  /// hasattr(ns, name)
  [[nodiscard]] bool has(const std::string& name) const {
    const auto kb = detail::encode(name, "Namespace.has");
    auto t = open("Namespace.has");
    return ops(t, object()).find(kb).has_value();
  }

  /// del ns.name
  /// @throws AttributeError when there is no such attribute.
  void del(const std::string& name) {
    const auto kb = detail::encode(name, "Namespace.del");
    auto t = open("Namespace.del");
    if (!ops(t, object()).pop(kb))
      throw AttributeError("'Namespace' object has no attribute '" + name + "'");
    t.commit();
  }

  /// The attribute names, in the order they were first set.
  [[nodiscard]] std::vector<std::string> names() const {
    auto t = open("Namespace.names");
    std::vector<std::string> out;
    ops(t, object()).for_each([&](const auto& e) {
      out.push_back(detail::decode<std::string>(bytes_at(store(), e.key)));
    });
    return out;
  }

  void save(serialize::Writer& out) const { save_ref(out); }
  static NamespaceProxy load(serialize::Reader& in) {
    auto [h, obj] = load_ref(in, detail::mgr::kind::name_space,
                             serialize::type_fingerprint<std::string>(), 0, "NamespaceProxy");
    return NamespaceProxy(std::move(h), obj);
  }

 private:
  friend class multiprocessing::Manager;
  using proxy_base::proxy_base;
};

}  // namespace managers

/// Proxies cross exec: the store's memfd travels beside the bytes.
template <class T>
struct serializer<T, std::enable_if_t<std::is_base_of_v<managers::detail::proxy_base, T>>> {
  static void save(serialize::Writer& out, const T& proxy) { proxy.save(out); }
  static T load(serialize::Reader& in) { return T::load(in); }
};

using managers::ArrayProxy;
using managers::DictProxy;
using managers::ListProxy;
using managers::NamespaceProxy;
using managers::ValueProxy;

// --- Manager
// ---------------------------------------------------------------------------------------

/// Python: multiprocessing.Manager() (a SyncManager). Owns the store of its containers; shuts
/// down when destroyed (Python's `with Manager() as m:`). Move-only.
class Manager {
  using heap = detail::mgr::heap;

 public:
  Manager() : Manager(ManagerOptions{}) {}
  explicit Manager(const ManagerOptions& options) : heap_(heap::create(options.capacity)) {}
  Manager(Manager&&) noexcept = default;
  Manager& operator=(Manager&& other) noexcept {
    if (this != &other) {
      shutdown();
      heap_ = std::move(other.heap_);
    }
    return *this;
  }
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;
  ~Manager() { shutdown(); }

  /// Ends the Manager: every proxy of it throws ProcessError from now on, in every process. Only
  /// the process that created the Manager shuts it down (a forked copy's destructor does not).
  void shutdown() noexcept {
    if (heap_ && heap_->header().owner_pid == detail::self_pid()) {
      heap_->header().shut_down.store(1, std::memory_order_release);
    }
    heap_.reset();
  }

  /// Python: Manager().dict(), empty or from a range of pairs.
  template <class K, class V>
  [[nodiscard]] DictProxy<K, V> dict() {
    return DictProxy<K, V>(store("Manager.dict"), create([](auto& t) {
                             return detail::mgr::dict_ops::create(t, detail::mgr::kind::dict,
                                                                  serialize::type_fingerprint<K>(),
                                                                  serialize::type_fingerprint<V>());
                           }));
  }
  template <class K, class V, managers::detail::pair_range R>
  [[nodiscard]] DictProxy<K, V> dict(const R& pairs) {
    auto d = dict<K, V>();
    d.update(pairs);
    return d;
  }

  /// Python: Manager().list(), empty or from a range.
  template <class T>
  [[nodiscard]] ListProxy<T> list() {
    return ListProxy<T>(store("Manager.list"), create_list<T>(detail::mgr::kind::list, {}));
  }
  template <class T, std::ranges::input_range R>
  [[nodiscard]] ListProxy<T> list(const R& values) {
    return ListProxy<T>(store("Manager.list"),
                        create_list<T>(detail::mgr::kind::list,
                                       managers::detail::encode_each<T>(values, "Manager.list")));
  }
  template <class T>
  [[nodiscard]] ListProxy<T> list(std::initializer_list<T> values) {
    return list<T>(std::span<const T>(values.begin(), values.size()));
  }

  /// Python: Manager().Namespace()
  [[nodiscard]] NamespaceProxy Namespace() {
    return NamespaceProxy(store("Manager.Namespace"), create([](auto& t) {
                            return detail::mgr::dict_ops::create(
                                t, detail::mgr::kind::name_space,
                                serialize::type_fingerprint<std::string>(), 0);
                          }));
  }

  /// Python: Manager().Value(typecode, value): any serializable T.
  template <class T>
  [[nodiscard]] ValueProxy<T> Value(const T& value = T{}) {
    const auto vb = managers::detail::encode(value, "Manager.Value");
    return ValueProxy<T>(store("Manager.Value"), create([&](auto& t) {
                           return detail::mgr::create_cell(t, serialize::type_fingerprint<T>(), vb);
                         }));
  }

  /// Python: Manager().Array(typecode, sequence): `n` value-initialised items, or a range's.
  template <class T>
  [[nodiscard]] ArrayProxy<T> Array(std::size_t n) {
    return Array<T>(std::vector<T>(n));
  }
  template <class T, std::ranges::input_range R>
  [[nodiscard]] ArrayProxy<T> Array(const R& values) {
    return ArrayProxy<T>(store("Manager.Array"),
                         create_list<T>(detail::mgr::kind::array,
                                        managers::detail::encode_each<T>(values, "Manager.Array")));
  }
  template <class T>
  [[nodiscard]] ArrayProxy<T> Array(std::initializer_list<T> values) {
    return Array<T>(std::span<const T>(values.begin(), values.size()));
  }

  /// Python: Manager().Queue(maxsize) and JoinableQueue(maxsize): the library's process-shared
  /// queues, usable from every process and every Pool task.
  template <class T>
  [[nodiscard]] multiprocessing::Queue<T> Queue(std::int64_t maxsize = 0) {
    (void)store("Manager.Queue");
    return multiprocessing::Queue<T>(maxsize);
  }
  template <class T>
  [[nodiscard]] multiprocessing::JoinableQueue<T> JoinableQueue(std::int64_t maxsize = 0) {
    (void)store("Manager.JoinableQueue");
    return multiprocessing::JoinableQueue<T>(maxsize);
  }

  /// Python: Manager().Lock(), RLock(), Semaphore(), ...: the library's process-shared objects.
  [[nodiscard]] multiprocessing::Lock Lock() { return made<multiprocessing::Lock>("Manager.Lock"); }
  [[nodiscard]] multiprocessing::RLock RLock() {
    return made<multiprocessing::RLock>("Manager.RLock");
  }
  [[nodiscard]] multiprocessing::Semaphore Semaphore(int value = 1) {
    return made<multiprocessing::Semaphore>("Manager.Semaphore", value);
  }
  [[nodiscard]] multiprocessing::BoundedSemaphore BoundedSemaphore(int value = 1) {
    return made<multiprocessing::BoundedSemaphore>("Manager.BoundedSemaphore", value);
  }
  template <class... L>
  [[nodiscard]] multiprocessing::Condition Condition(L&&... lock) {
    return made<multiprocessing::Condition>("Manager.Condition", std::forward<L>(lock)...);
  }
  [[nodiscard]] multiprocessing::Event Event() {
    return made<multiprocessing::Event>("Manager.Event");
  }
  template <class... Args>
  [[nodiscard]] multiprocessing::Barrier Barrier(Args&&... args) {
    return made<multiprocessing::Barrier>("Manager.Barrier", std::forward<Args>(args)...);
  }

  /// Bytes the store has taken so far (its high-water mark; freed blocks are reused).
  [[nodiscard]] std::uint64_t store_size() {
    const auto& h = *store("Manager.store_size");
    detail::mgr::txn t(h);
    return t.read(detail::mgr::meta_at(detail::mgr::meta_top));
  }

 private:
  [[nodiscard]] const std::shared_ptr<heap>& store(const char* what) const {
    if (!heap_) throw ProcessError(std::string(what) + ": the Manager has shut down");
    return heap_;
  }

  template <class F>
  [[nodiscard]] detail::mgr::offset create(F&& make) {
    detail::mgr::txn t(*store("Manager"));
    const auto obj = make(t);
    t.commit();
    return obj;
  }

  template <class T>
  [[nodiscard]] detail::mgr::offset create_list(detail::mgr::kind k,
                                                const std::vector<std::vector<std::byte>>& items) {
    return create([&](auto& t) {
      return detail::mgr::list_ops::create(t, k, serialize::type_fingerprint<T>(), items);
    });
  }

  template <class Object, class... Args>
  [[nodiscard]] Object made(const char* what, Args&&... args) {
    (void)store(what);
    return Object(std::forward<Args>(args)...);
  }

  std::shared_ptr<heap> heap_;
};

// --- BaseManager: objects served by name to other programs
// -----------------------------------------

namespace managers {

class BaseManager;

/// Python: the Server of BaseManager.get_server(): serve_forever() answers clients until the
/// manager shuts down.
class Server {
 public:
  /// Answers clients in the calling thread until BaseManager::shutdown() (from another thread).
  void serve_forever();
  /// The address clients connect to (for TCP port 0, the port the kernel picked).
  [[nodiscard]] const connection::Address& address() const noexcept;

 private:
  friend class BaseManager;
  struct state;
  Server(state& st, connection::Listener& listener) : st_(&st), listener_(&listener) {}
  state* st_;
  connection::Listener* listener_;
};

struct Server::state {
  std::mutex mutex;  // guards registry and the listeners' creation
  // name -> makes the object (a copy, or the callable's result) and returns what sends it
  std::map<std::string, std::function<std::function<void(Connection&)>()>> registry;
  std::optional<connection::Listener> listener, relay;
  std::optional<Connection> wake_r, wake_w;
  std::optional<connection::Address> bound;
  std::atomic<bool> stopping{false};
  std::atomic<bool> serving{false};
  std::thread thread;

  void close_listeners() noexcept {
    std::lock_guard guard(mutex);
    listener.reset();
    relay.reset();
  }
};

/// Python: multiprocessing.managers.BaseManager(address, authkey). A server program registers
/// handles (Manager proxies, queues, locks, ...) under names and serves them; an unrelated program
/// connects with the same authkey and gets them by name:
///
///   // server                                      // client (another program)
///   mp::Manager store;                             mp::managers::BaseManager m(address, key);
///   auto q = store.Queue<std::string>();           m.connect();
///   mp::managers::BaseManager m(address, key);     auto q =
///   m.get<mp::Queue<std::string>>("get_queue"); m.register_("get_queue", q); q.put("hello");
///   m.get_server().serve_forever();  // or m.start()
///
/// The objects are the library's shared-memory handles, so the client maps them and uses them at
/// full speed, not through the server. That works for programs on the manager's machine: over an
/// AF_UNIX path the handles travel with the answer (SCM_RIGHTS); a TCP client is sent on to a
/// socket in the abstract namespace, authenticated with the same key. A client on another machine
/// gets OSError saying so (for many machines, see the MPI executor). `register` is a C++ keyword:
/// the method is `register_`. start() serves from a thread of this process (Python starts a server
/// process), so nothing outlives the program that owns the objects.
class BaseManager {
 public:
  using authkey_type = std::vector<unsigned char>;

  /// A manager at `address`; `authkey` authenticates both ways (HMAC, see connection::Listener).
  /// Nothing is bound or connected yet.
  explicit BaseManager(connection::Address address,
                       std::optional<authkey_type> authkey = std::nullopt)
      : address_(std::move(address)),
        authkey_(std::move(authkey)),
        st_(std::make_unique<Server::state>()) {}
  /// The same with the key as text (Python: authkey=b'abracadabra').
  BaseManager(connection::Address address, std::string_view authkey)
      : BaseManager(std::move(address), authkey_type(authkey.begin(), authkey.end())) {}
  BaseManager(const BaseManager&) = delete;
  BaseManager& operator=(const BaseManager&) = delete;
  ~BaseManager() { shutdown(); }

  /// Python: BaseManager.register(typeid, callable=lambda: obj). Serves a copy of `object` (a
  /// handle: every client shares the one object) under `typeid_`.
  template <class T>
  requires(!std::invocable<T> && serializable<T>) void register_(const std::string& typeid_,
                                                                 T object) {
    std::lock_guard guard(st_->mutex);
    st_->registry[typeid_] = [object] {
      return std::function<void(Connection&)>([object](Connection& c) { c.send(object); });
    };
  }
  /// Python: BaseManager.register(typeid, callable): `make()` is called for every request.
  template <class F>
  requires std::invocable<F&> && serializable<std::invoke_result_t<F&>>
  void register_(const std::string& typeid_, F make) {
    std::lock_guard guard(st_->mutex);
    st_->registry[typeid_] = [make = std::move(make)]() mutable {
      return std::function<void(Connection&)>([obj = make()](Connection& c) { c.send(obj); });
    };
  }

  /// Python: BaseManager.get_server(). Binds the address (once).
  /// @throws OSError when the address is in use or invalid.
  [[nodiscard]] Server get_server() {
    bind();
    return Server(*st_, *st_->listener);
  }

  /// Python: BaseManager.start(): serves in a background thread until shutdown().
  void start() {
    bind();
    if (st_->thread.joinable()) throw ProcessError("BaseManager.start: already started");
    st_->thread =
        std::thread([srv = Server(*st_, *st_->listener)]() mutable { srv.serve_forever(); });
  }

  /// Stops serving (a serve_forever() in any thread returns), closes the listening sockets and
  /// the client connection. Idempotent. Handles already given out keep working.
  void shutdown() noexcept {
    if (!st_) return;
    st_->stopping.store(true);
    if (st_->wake_w) {
      try {
        st_->wake_w->send_bytes(std::string_view("x"));
      } catch (...) {  // the serving thread is gone already
      }
    }
    if (st_->thread.joinable() && st_->thread.get_id() != std::this_thread::get_id())
      st_->thread.join();
    if (!st_->serving.load()) st_->close_listeners();  // else serve_forever() closes them
    std::lock_guard guard(client_mutex_);
    client_.reset();
  }

  /// The address: the bound one (with the actual TCP port) once serving, else the one given.
  [[nodiscard]] const connection::Address& address() const noexcept {
    return st_->bound ? *st_->bound : address_;
  }

  /// Python: BaseManager.connect(). Connects and authenticates.
  /// @throws AuthenticationError on a wrong key; OSError when nothing listens there, or when the
  ///   manager runs on another machine; TimeoutError when it does not answer within `timeout`.
  void connect(Timeout timeout = std::chrono::seconds(30)) {
    std::lock_guard guard(client_mutex_);
    auto first = connection::Client(address_, authkey_, timeout);
    first.send(std::pair<std::string, std::string>("hello", ""));
    const auto [status, text] = receive<reply>(
        first, timeout, "BaseManager.connect: " + address_.to_string() + " did not answer");
    if (status == reply_relay) {
      try {
        client_ = connection::Client(connection::Address(text), authkey_, timeout);
      } catch (const OSError& e) {
        throw OSError("BaseManager.connect: the manager at " + address_.to_string() +
                          " serves shared memory, which only programs on its machine can use (" +
                          e.what() + ")",
                      e.error_number());
      }
    } else {
      client_ = std::move(first);
    }
  }

  /// Python: m.<typeid>() on a connected manager: the object registered as `typeid_`.
  /// @throws KeyError when nothing is registered under that name; TypeError when it is not a T;
  ///   RemoteError when the server's callable threw; ProcessError before connect().
  template <class T>
  [[nodiscard]] T get(const std::string& typeid_, Timeout timeout = std::chrono::seconds(30)) {
    std::lock_guard guard(client_mutex_);
    if (!client_)
      throw ProcessError("BaseManager.get('" + typeid_ + "'): not connected (call connect())");
    client_->send(std::pair<std::string, std::string>("get", typeid_));
    const std::string no_answer = "BaseManager.get('" + typeid_ + "'): no answer";
    const auto [status, text] = receive<reply>(*client_, timeout, no_answer);
    if (status == reply_key_error) throw KeyError("'" + typeid_ + "' is not registered");
    if (status == reply_error) throw RemoteError("BaseManager callable", text, 0);
    try {
      return receive<T>(*client_, timeout, no_answer);
    } catch (const TypeError& e) {
      throw TypeError("BaseManager.get('" + typeid_ + "'): " + e.what());
    }
  }

 private:
  friend class Server;
  static constexpr int reply_ok = 0, reply_relay = 1, reply_key_error = 2, reply_error = 3;
  using reply = std::pair<int, std::string>;  // status, text

  /// The next message on `c` as a T, waiting at most `timeout`. @throws TimeoutError(`late`).
  template <class T>
  static T receive(Connection& c, Timeout timeout, const std::string& late) {
    if (!c.poll(timeout)) throw TimeoutError(late);
    return c.recv<T>();
  }

  void bind() {
    std::lock_guard guard(st_->mutex);
    if (st_->listener) return;
    if (st_->stopping.load()) throw ProcessError("BaseManager: it has shut down");
    st_->listener.emplace(address_, authkey_, 16);
    st_->bound = st_->listener->address();
    if (address_.is_tcp()) {
      // Where TCP clients on this machine get the handles: an abstract socket, random name.
      unsigned char r[12];
      if (RAND_bytes(r, sizeof r) != 1)
        throw OSError("BaseManager: no random bytes for the relay socket");
      std::string name(1, '\0');
      name += "mp-manager-" + std::to_string(::getpid()) + "-";
      for (unsigned char c : r)
        name += "0123456789abcdef"[c >> 4], name += "0123456789abcdef"[c & 15];
      st_->relay.emplace(connection::Address(name), authkey_, 16);
    }
    auto [r, w] = Pipe(false);
    st_->wake_r.emplace(std::move(r));
    st_->wake_w.emplace(std::move(w));
  }

  connection::Address address_;
  std::optional<authkey_type> authkey_;
  std::unique_ptr<Server::state> st_;
  std::mutex client_mutex_;
  std::optional<Connection> client_;
};

inline const connection::Address& Server::address() const noexcept { return *st_->bound; }

inline void Server::serve_forever() {
  struct client {
    Connection conn;
    bool tcp;
  };
  if (st_->serving.exchange(true)) throw ProcessError("Server.serve_forever: already serving");
  struct done_serving {
    state* st;
    ~done_serving() {
      if (st->stopping.load()) st->close_listeners();
      st->serving.store(false);
    }
  } done{st_};
  std::vector<client> clients;
  const auto accept = [&clients](connection::Listener& l, bool tcp) {
    try {
      clients.push_back({l.accept(std::chrono::seconds(0)), tcp});
    } catch (const Error&) {  // a wrong key, a peer gone or silent: that peer only
    }
  };
  const auto answer = [this](client& c) {
    const auto [op, name] = c.conn.recv<std::pair<std::string, std::string>>();
    if (op == "hello") {
      c.conn.send(c.tcp ? BaseManager::reply(BaseManager::reply_relay, st_->relay->address().path())
                        : BaseManager::reply(BaseManager::reply_ok, ""));
      return;
    }
    std::function<std::function<void(Connection&)>()> prepare;
    {
      std::lock_guard guard(st_->mutex);
      if (auto it = st_->registry.find(name); it != st_->registry.end()) prepare = it->second;
    }
    if (op != "get" || !prepare || c.tcp) {  // handles never travel over TCP
      c.conn.send(BaseManager::reply(BaseManager::reply_key_error, name));
      return;
    }
    std::function<void(Connection&)> send;
    try {
      send = prepare();  // a callable runs (and may throw) before anything is sent
    } catch (const std::exception& e) {
      c.conn.send(BaseManager::reply(BaseManager::reply_error, e.what()));
      return;
    }
    c.conn.send(BaseManager::reply(BaseManager::reply_ok, ""));
    send(c.conn);
  };
  while (!st_->stopping.load()) {
    std::vector<connection::wait_object> watch{&*st_->wake_r, listener_->fileno()};
    if (st_->relay) watch.emplace_back(st_->relay->fileno());
    for (auto& c : clients) watch.emplace_back(&c.conn);
    const auto ready = connection::wait(watch);
    for (const auto& w : ready) {
      if (w.connection() == &*st_->wake_r) return;
      if (w.connection() == nullptr) {
        accept(w.fd() == listener_->fileno() ? *listener_ : *st_->relay,
               w.fd() == listener_->fileno() && listener_->address().is_tcp());
      }
    }
    std::erase_if(clients, [&](client& c) {
      if (std::find(ready.begin(), ready.end(), connection::wait_object(&c.conn)) == ready.end()) {
        return false;
      }
      try {
        answer(c);
        return false;
      } catch (const std::exception&) {  // the client left (EOFError) or spoke garbage: drop it
        return true;
      }
    });
  }
}

}  // namespace managers

}  // namespace multiprocessing

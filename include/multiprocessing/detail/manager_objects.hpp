// SPDX-License-Identifier: MIT
// multiprocessing/detail/manager_objects.hpp
//
// The containers a Manager stores, as operations on encoded bytes inside a txn (manager_heap.hpp):
// the typed proxies of managers.hpp encode keys and values and call these, and so would a server
// acting for a remote client. Keys compare by their encoding (equal values of the built-in types
// encode equally; see managers.hpp).
//
// dict (also Namespace and the registry): CPython's compact layout, so iteration follows insertion
// order as in Python. An entries array {hash, key, value} in insertion order (a removed entry keeps
// its place with key 0) and an open-addressed index of entry numbers (0 empty, `tombstone` for a
// removed one, else number + 1) at most half full. An insert appends an entry beyond the used
// count (not reachable: a direct write) and stages the index slot and the counts; growing or
// compacting builds new arrays (direct writes) and stages the three words that point at them.
//
// list (also Array): a slots array of value blocks; writes beyond the size are direct, a set or a
// short shift is staged word by word, anything longer copies the slots into a new array.
//
// cell (Value): one word pointing at the value's block.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "manager_heap.hpp"

namespace multiprocessing::detail::mgr {

enum class kind : std::uint64_t {
  dict = 0x6d70'6469'6374ULL,  // tags, so that a stale or foreign offset is recognised
  list = 0x6d70'6c69'7374ULL,
  array = 0x6d70'6172'7279ULL,
  cell = 0x6d70'6365'6c6cULL,
  name_space = 0x6d70'6e73'7063ULL,
  registry = 0x6d70'7265'6769ULL,
};

/// Words of every object's block: what it is and the fingerprints of its key and value types.
enum object_word : std::uint64_t { ow_kind = 0, ow_key_fp = 8, ow_value_fp = 16, ow_first = 24 };

[[nodiscard]] inline const char* kind_name(kind k) noexcept {
  switch (k) {
    case kind::dict:
      return "dict";
    case kind::list:
      return "list";
    case kind::array:
      return "Array";
    case kind::cell:
      return "Value";
    case kind::name_space:
      return "Namespace";
    case kind::registry:
      return "registry";
  }
  return "object";
}

/// Whether `obj` (from another process's message) is an object of kind `k` with those
/// fingerprints; a reason when it is not. Reads under the lock.
[[nodiscard]] inline std::optional<std::string> check_object(const heap& h, offset obj, kind k,
                                                             std::uint64_t key_fp,
                                                             std::uint64_t value_fp) {
  txn t(h);
  if (obj < heap_start || obj % 8 != 0 || obj + ow_first > t.read(meta_at(meta_top))) {
    return "offset " + std::to_string(obj) + " is not an object of this Manager";
  }
  if (h.load(obj + ow_kind) != static_cast<std::uint64_t>(k)) {
    return std::string("the object is not a ") + kind_name(k);
  }
  if (h.load(obj + ow_key_fp) != key_fp || h.load(obj + ow_value_fp) != value_fp) {
    return std::string("the ") + kind_name(k) + " holds other key or value types";
  }
  return std::nullopt;
}

// --- dict
// ------------------------------------------------------------------------------------------

struct dict_layout {
  static constexpr offset used = ow_first;       // live entries
  static constexpr offset count = ow_first + 8;  // entries appended, removed ones included
  static constexpr offset index = ow_first + 16;
  static constexpr offset index_cap = ow_first + 24;
  static constexpr offset entries = ow_first + 32;
  static constexpr offset entries_cap = ow_first + 40;
  static constexpr offset words = ow_first + 48;
  static constexpr std::uint64_t tombstone = ~std::uint64_t{0};
  static constexpr std::uint64_t min_entries = 8;
  static constexpr std::uint64_t entry_bytes = 24;  // hash, key block, value block
};

/// A live entry's blocks.
struct dict_entry {
  std::uint64_t number;
  offset key;
  offset value;
};

class dict_ops {
  using L = dict_layout;

 public:
  dict_ops(txn& t, offset obj) : t_(t), h_(t.store()), obj_(obj) {}

  /// A new empty container of kind `k` (dict, Namespace or registry).
  [[nodiscard]] static offset create(txn& t, kind k, std::uint64_t key_fp, std::uint64_t value_fp) {
    const heap& h = t.store();
    const offset obj = t.alloc(L::words);
    h.store(obj + ow_kind, static_cast<std::uint64_t>(k));
    h.store(obj + ow_key_fp, key_fp);
    h.store(obj + ow_value_fp, value_fp);
    h.store(obj + L::used, 0);
    h.store(obj + L::count, 0);
    const auto [index, entries] = fresh_arrays(t, L::min_entries);
    h.store(obj + L::index, index);
    h.store(obj + L::index_cap, 2 * L::min_entries);
    h.store(obj + L::entries, entries);
    h.store(obj + L::entries_cap, L::min_entries);
    return obj;
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return t_.read(obj_ + L::used); }

  /// The value block of `key`, if present.
  [[nodiscard]] std::optional<offset> find(std::span<const std::byte> key) const {
    const auto [slot, number] = lookup(key, hash_bytes(key));
    if (number == npos) return std::nullopt;
    return t_.read(entry_at(number) + 16);
  }

  /// Sets `key` to a new block holding `value`. Returns whether the key was new.
  bool set(std::span<const std::byte> key, std::span<const std::byte> value) {
    const std::uint64_t hash = hash_bytes(key);
    auto [slot, number] = lookup(key, hash);
    if (number != npos) {
      const offset at = entry_at(number) + 16;
      const offset old = t_.read(at);
      write(at, t_.alloc_bytes(value));
      t_.free(old);
      return false;
    }
    insert(hash, slot, t_.alloc_bytes(key), t_.alloc_bytes(value));
    return true;
  }

  /// Adds `key` with `value` unless present. Returns the value block now stored.
  offset setdefault(std::span<const std::byte> key, std::span<const std::byte> value) {
    const std::uint64_t hash = hash_bytes(key);
    auto [slot, number] = lookup(key, hash);
    if (number != npos) return t_.read(entry_at(number) + 16);
    const offset v = t_.alloc_bytes(value);
    insert(hash, slot, t_.alloc_bytes(key), v);
    return v;
  }

  /// Removes `key`; returns its value's bytes (copied before the blocks are freed).
  std::optional<std::vector<std::byte>> pop(std::span<const std::byte> key) {
    const auto [slot, number] = lookup(key, hash_bytes(key));
    if (number == npos) return std::nullopt;
    return remove(slot, number);
  }

  /// Removes the last inserted entry; its key's and value's bytes.
  std::optional<std::pair<std::vector<std::byte>, std::vector<std::byte>>> popitem() {
    for (std::uint64_t n = t_.read(obj_ + L::count); n-- > 0;) {
      const offset e = entry_at(n);
      const offset key = t_.read(e + 8);
      if (key == 0) continue;
      const auto kb = bytes_at(h_, key);
      std::vector<std::byte> k(kb.begin(), kb.end());
      const auto [slot, number] = lookup(kb, t_.read(e));
      auto v = remove(slot, number);
      return std::pair{std::move(k), std::move(v)};
    }
    return std::nullopt;
  }

  /// Makes room for `extra` more keys without growing again; afterwards every entry and index
  /// write of this txn goes to fresh arrays (bulk updates stage only the counts).
  void reserve(std::uint64_t extra) { rebuild(size() + extra); }

  /// Removes everything.
  void clear() {
    for_each([this](const dict_entry& e) {
      t_.free(e.key);
      t_.free(e.value);
    });
    t_.free(t_.read(obj_ + L::index));
    t_.free(t_.read(obj_ + L::entries));
    const auto [index, entries] = fresh_arrays(t_, L::min_entries);
    write(obj_ + L::index, index);
    write(obj_ + L::index_cap, 2 * L::min_entries);
    write(obj_ + L::entries, entries);
    write(obj_ + L::entries_cap, L::min_entries);
    write(obj_ + L::used, 0);
    write(obj_ + L::count, 0);
  }

  /// Calls f(dict_entry) for each live entry in insertion order.
  template <class F>
  void for_each(F&& f) const {
    const std::uint64_t count = t_.read(obj_ + L::count);
    for (std::uint64_t n = 0; n < count; ++n) {
      const offset e = entry_at(n);
      const offset key = t_.read(e + 8);
      if (key != 0) f(dict_entry{n, key, t_.read(e + 16)});
    }
  }

 private:
  static constexpr std::uint64_t npos = ~std::uint64_t{0};

  struct found {
    offset slot;           // where the key is, or the slot an insert should use
    std::uint64_t number;  // entry number, npos when absent
  };

  [[nodiscard]] offset entry_at(std::uint64_t number) const noexcept {
    return t_.read(obj_ + L::entries) + number * L::entry_bytes;
  }

  void write(offset o, std::uint64_t v) {
    if (fresh(o)) {
      t_.write_fresh(o, v);
    } else {
      t_.write(o, v);
    }
  }

  /// Whether `o` lies in an array this op built (not reachable until its pointer is staged).
  [[nodiscard]] bool fresh(offset o) const noexcept {
    return (o >= fresh_index_ && o < fresh_index_end_) ||
           (o >= fresh_entries_ && o < fresh_entries_end_);
  }

  [[nodiscard]] found lookup(std::span<const std::byte> key, std::uint64_t hash) const {
    const offset index = t_.read(obj_ + L::index);
    const std::uint64_t mask = t_.read(obj_ + L::index_cap) - 1;
    offset insert_at = 0;
    for (std::uint64_t i = hash & mask;; i = (i + 1) & mask) {
      const offset slot = index + 8 * i;
      const std::uint64_t s = t_.read(slot);
      if (s == 0) return {insert_at != 0 ? insert_at : slot, npos};
      if (s == L::tombstone) {
        if (insert_at == 0) insert_at = slot;
        continue;
      }
      const offset e = entry_at(s - 1);
      if (t_.read(e) != hash) continue;
      const auto k = bytes_at(h_, t_.read(e + 8));
      if (k.size() == key.size() && std::memcmp(k.data(), key.data(), key.size()) == 0) {
        return {slot, s - 1};
      }
    }
  }

  void insert(std::uint64_t hash, offset slot, offset key, offset value) {
    std::uint64_t count = t_.read(obj_ + L::count);
    if (count == t_.read(obj_ + L::entries_cap)) {
      rebuild(size() + 1);
      count = t_.read(obj_ + L::count);
      slot = lookup(bytes_at(h_, key), hash).slot;
    }
    const offset e = entry_at(count);  // beyond the count: not reachable yet
    t_.write_fresh(e, hash);
    t_.write_fresh(e + 8, key);
    t_.write_fresh(e + 16, value);
    write(slot, count + 1);
    write(obj_ + L::count, count + 1);
    write(obj_ + L::used, size() + 1);
  }

  std::vector<std::byte> remove(offset slot, std::uint64_t number) {
    const offset e = entry_at(number);
    const offset key = t_.read(e + 8);
    const offset value = t_.read(e + 16);
    const auto vb = bytes_at(h_, value);
    std::vector<std::byte> out(vb.begin(), vb.end());
    write(slot, L::tombstone);
    write(e + 8, 0);
    write(obj_ + L::used, size() - 1);
    t_.free(key);
    t_.free(value);
    return out;
  }

  [[nodiscard]] static std::pair<offset, offset> fresh_arrays(txn& t, std::uint64_t entries_cap) {
    const offset index = t.alloc(16 * entries_cap);
    std::memset(t.store().at(index), 0, 16 * entries_cap);
    const offset entries = t.alloc(L::entry_bytes * entries_cap);
    return {index, entries};
  }

  /// New arrays for at least `keys` live keys (removed entries dropped), staged in place of the
  /// old.
  void rebuild(std::uint64_t keys) {
    const std::uint64_t cap = std::bit_ceil(std::max(L::min_entries, keys + keys / 2 + 1));
    const auto arrays = fresh_arrays(t_, cap);  // not a structured binding: the lambda uses them
    const offset index = arrays.first;
    const offset entries = arrays.second;
    const std::uint64_t mask = 2 * cap - 1;
    std::uint64_t n = 0;
    for_each([&](const dict_entry& old) {
      const offset from = entry_at(old.number);
      const std::uint64_t hash = t_.read(from);
      const offset to = entries + n * L::entry_bytes;
      t_.write_fresh(to, hash);
      t_.write_fresh(to + 8, old.key);
      t_.write_fresh(to + 16, old.value);
      std::uint64_t i = hash & mask;
      while (h_.load(index + 8 * i) != 0) i = (i + 1) & mask;
      t_.write_fresh(index + 8 * i, n + 1);
      ++n;
    });
    t_.free(t_.read(obj_ + L::index));
    t_.free(t_.read(obj_ + L::entries));
    t_.write(obj_ + L::index, index);
    t_.write(obj_ + L::index_cap, 2 * cap);
    t_.write(obj_ + L::entries, entries);
    t_.write(obj_ + L::entries_cap, cap);
    t_.write(obj_ + L::count, n);
    fresh_index_ = index;
    fresh_index_end_ = index + 16 * cap;
    fresh_entries_ = entries;
    fresh_entries_end_ = entries + L::entry_bytes * cap;
  }

  txn& t_;
  const heap& h_;
  offset obj_;
  offset fresh_index_ = 0, fresh_index_end_ = 0, fresh_entries_ = 0, fresh_entries_end_ = 0;
};

// --- list
// ------------------------------------------------------------------------------------------

struct list_layout {
  static constexpr offset size = ow_first;
  static constexpr offset slots = ow_first + 8;
  static constexpr offset cap = ow_first + 16;
  static constexpr offset words = ow_first + 24;
  static constexpr std::uint64_t min_cap = 4;
  static constexpr std::uint64_t max_staged_shift = 32;
};

class list_ops {
  using L = list_layout;

 public:
  list_ops(txn& t, offset obj) : t_(t), h_(t.store()), obj_(obj) {}

  /// A new list (or Array) holding `items`.
  [[nodiscard]] static offset create(txn& t, kind k, std::uint64_t value_fp,
                                     std::span<const std::vector<std::byte>> items) {
    const heap& h = t.store();
    const offset obj = t.alloc(L::words);
    h.store(obj + ow_kind, static_cast<std::uint64_t>(k));
    h.store(obj + ow_key_fp, 0);
    h.store(obj + ow_value_fp, value_fp);
    const std::uint64_t cap = std::max<std::uint64_t>(L::min_cap, items.size());
    const offset slots = t.alloc(8 * cap);
    for (std::size_t i = 0; i < items.size(); ++i) h.store(slots + 8 * i, t.alloc_bytes(items[i]));
    h.store(obj + L::size, items.size());
    h.store(obj + L::slots, slots);
    h.store(obj + L::cap, cap);
    return obj;
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return t_.read(obj_ + L::size); }
  [[nodiscard]] offset at(std::uint64_t i) const noexcept { return t_.read(slot(i)); }

  void append(std::span<const std::byte> value) {
    const std::uint64_t n = size();
    if (n == t_.read(obj_ + L::cap)) regrow(n + 1);
    t_.write_fresh(slot(n), t_.alloc_bytes(value));  // beyond the size
    t_.write(obj_ + L::size, n + 1);
  }

  void extend(std::span<const std::vector<std::byte>> values) {
    const std::uint64_t n = size();
    if (n + values.size() > t_.read(obj_ + L::cap)) regrow(n + values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      t_.write_fresh(slot(n + i), t_.alloc_bytes(values[i]));
    }
    t_.write(obj_ + L::size, n + values.size());
  }

  void set(std::uint64_t i, std::span<const std::byte> value) {
    const offset old = at(i);
    t_.write(slot(i), t_.alloc_bytes(value));
    t_.free(old);
  }

  /// Inserts before position `i` (0 <= i <= size).
  void insert(std::uint64_t i, std::span<const std::byte> value) {
    const std::uint64_t n = size();
    const offset v = t_.alloc_bytes(value);
    if (n < t_.read(obj_ + L::cap) && n - i <= L::max_staged_shift) {
      if (i < n) t_.write_fresh(slot(n), at(n - 1));  // beyond the size
      for (std::uint64_t j = n; j-- > i + 1;) t_.write(slot(j), at(j - 1));
      if (i < n) {
        t_.write(slot(i), v);
      } else {
        t_.write_fresh(slot(i), v);
      }
    } else {
      const offset old = t_.read(obj_ + L::slots);
      const std::uint64_t old_cap = t_.read(obj_ + L::cap);
      const std::uint64_t cap = n < old_cap ? old_cap : 2 * old_cap;
      const offset slots = t_.alloc(8 * cap);
      std::memcpy(h_.at(slots), h_.at(old), 8 * i);
      h_.store(slots + 8 * i, v);
      std::memcpy(h_.at(slots + 8 * (i + 1)), h_.at(old + 8 * i), 8 * (n - i));
      stage_slots(old, slots, cap);
    }
    t_.write(obj_ + L::size, n + 1);
  }

  /// Removes position `i` (< size); returns its bytes (copied before the block is freed).
  std::vector<std::byte> pop(std::uint64_t i) {
    const std::uint64_t n = size();
    const offset v = at(i);
    const auto b = bytes_at(h_, v);
    std::vector<std::byte> out(b.begin(), b.end());
    if (n - 1 - i <= L::max_staged_shift) {
      for (std::uint64_t j = i; j + 1 < n; ++j) t_.write(slot(j), at(j + 1));
    } else {
      const offset old = t_.read(obj_ + L::slots);
      const std::uint64_t cap = t_.read(obj_ + L::cap);
      const offset slots = t_.alloc(8 * cap);
      std::memcpy(h_.at(slots), h_.at(old), 8 * i);
      std::memcpy(h_.at(slots + 8 * i), h_.at(old + 8 * (i + 1)), 8 * (n - 1 - i));
      stage_slots(old, slots, cap);
    }
    t_.write(obj_ + L::size, n - 1);
    t_.free(v);
    return out;
  }

  void reverse() {
    const std::uint64_t n = size();
    const offset old = t_.read(obj_ + L::slots);
    const std::uint64_t cap = t_.read(obj_ + L::cap);
    const offset slots = t_.alloc(8 * cap);
    for (std::uint64_t j = 0; j < n; ++j) h_.store(slots + 8 * j, h_.load(old + 8 * (n - 1 - j)));
    stage_slots(old, slots, cap);
  }

  void clear() {
    const std::uint64_t n = size();
    for (std::uint64_t j = 0; j < n; ++j) t_.free(at(j));
    const offset old = t_.read(obj_ + L::slots);
    stage_slots(old, t_.alloc(8 * L::min_cap), L::min_cap);
    t_.write(obj_ + L::size, 0);
  }

 private:
  [[nodiscard]] offset slot(std::uint64_t i) const noexcept {
    return t_.read(obj_ + L::slots) + 8 * i;
  }

  void stage_slots(offset old, offset slots, std::uint64_t cap) {
    t_.write(obj_ + L::slots, slots);
    t_.write(obj_ + L::cap, cap);
    t_.free(old);
  }

  /// Copies the slots into a new array with room for `need` (doubling).
  void regrow(std::uint64_t need) {
    const std::uint64_t n = size();
    const std::uint64_t cap = std::max(need, 2 * t_.read(obj_ + L::cap));
    const offset old = t_.read(obj_ + L::slots);
    const offset slots = t_.alloc(8 * cap);
    std::memcpy(h_.at(slots), h_.at(old), 8 * n);
    stage_slots(old, slots, cap);
  }

  txn& t_;
  const heap& h_;
  offset obj_;
};

// --- cell
// ------------------------------------------------------------------------------------------

struct cell_layout {
  static constexpr offset value = ow_first;
  static constexpr offset words = ow_first + 8;
};

[[nodiscard]] inline offset create_cell(txn& t, std::uint64_t value_fp,
                                        std::span<const std::byte> value) {
  const heap& h = t.store();
  const offset obj = t.alloc(cell_layout::words);
  h.store(obj + ow_kind, static_cast<std::uint64_t>(kind::cell));
  h.store(obj + ow_key_fp, 0);
  h.store(obj + ow_value_fp, value_fp);
  h.store(obj + cell_layout::value, t.alloc_bytes(value));
  return obj;
}

inline void set_cell(txn& t, offset obj, std::span<const std::byte> value) {
  const offset old = t.read(obj + cell_layout::value);
  t.write(obj + cell_layout::value, t.alloc_bytes(value));
  t.free(old);
}

}  // namespace multiprocessing::detail::mgr

// SPDX-License-Identifier: MIT
// multiprocessing/shared_memory.hpp
//
// Defines shared_memory::SharedMemory, a named POSIX shared memory block, and
// shared_memory::ShareableList<T>, a fixed-length list stored in one (Python 3.13:
// multiprocessing.shared_memory). The name is the point of these objects: any process that knows it
// can attach, so they live in /dev/shm (shm_open, mode 0600). The library's own objects (Value,
// Array, locks, queues) never use a name: they live in memfd segments (detail/shm.hpp).
//
//   namespace shm = mp::shared_memory;
//   shm::SharedMemory a("block", /*create=*/true, 4096);   // FileExistsError if taken
//   shm::SharedMemory b("block");                          // attach; FileNotFoundError if missing
//   b.buf()[0] = std::byte{42};                            // visible through `a`
//   b.close(); a.close(); a.unlink();
//
// Handles are cheap and copyable: copies share one mapping, like Python references. They cross
// process boundaries as Process arguments under every start method (see the serializer below).
//
// Lifetime and `track` (how this differs from Python's resource_tracker):
// - Python registers a block with a resource-tracker process and unlinks it when the program ends
//   if nobody called unlink(), warning about a "leaked shared_memory object".
// - Here, with track=true (the default), a block *created* by this process is unlinked when the
//   last handle to it in the creating process is destroyed, unless unlink() was called first.
//   Handles held by other processes (attached by name, or received as a Process argument) never
//   unlink on destruction, whatever their `track`. Before unlinking, the destructor checks that the
//   name still refers to the block it created (same inode): a name unlinked by someone else and
//   reused for a new block is left alone.
// - With track=false nothing is unlinked automatically: call unlink() (Python: the same).
// - If the creating process is SIGKILLed while holding the block, nothing runs: the entry stays in
//   /dev/shm until someone unlinks it (Python's tracker process would clean it up). Either unlink()
//   as soon as every party has attached (the mapping and received handles stay valid), or keep the
//   creator alive. Processes that attached and die, SIGKILLed or not, never leave anything behind.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/posix.hpp"
#include "errors.hpp"
#include "serialize/core.hpp"
#include "serialize/types/string.hpp"

namespace multiprocessing::shared_memory {

template <class T>
class ShareableList;

/// Python: multiprocessing.shared_memory.SharedMemory. A named block of memory shared between
/// processes; a handle (copies share it).
class SharedMemory {
 public:
  /// Creates (`create` = true) or attaches to the block called `name`.
  /// Python: SharedMemory(name=None, create=False, size=0, *, track=True).
  /// @param name  the block's name, without the leading '/' (as Python shows it). Omitted with
  ///              create = true: a fresh random name "psm_XXXXXXXX", as Python's.
  /// @param create  create a new block (O_CREAT | O_EXCL, mode 0600) instead of attaching.
  /// @param size  bytes to create (> 0). Ignored when attaching, as in Python: size() is then the
  ///              existing block's size.
  /// @param track  see the file comment: a block this process created is unlinked when its last
  ///              handle here is destroyed, unless unlink() was called.
  /// @throws ValueError for create with size 0, or no name without create.
  /// @throws FileExistsError when creating a name that exists.
  /// @throws FileNotFoundError when attaching to a name that does not exist.
  /// @throws OSError for any other failure (an invalid name, permissions), carrying errno.
  explicit SharedMemory(std::optional<std::string> name = std::nullopt, bool create = false,
                        std::size_t size = 0, bool track = true);

  /// The block's name, without the leading '/'. Python: SharedMemory.name.
  [[nodiscard]] const std::string& name() const noexcept { return state_->name; }

  /// The mapped size in bytes (still known after close()). Python: SharedMemory.size.
  [[nodiscard]] std::size_t size() const noexcept { return state_->size; }

  /// The mapped bytes, shared with every process that attached. Python: SharedMemory.buf.
  /// @throws ValueError after close() (Python's buf is None then).
  [[nodiscard]] std::span<std::byte> buf() const;

  /// Unmaps the block and closes its descriptor, for every copy of this handle in this process.
  /// The block itself stays for the others. Repeated calls do nothing. Python: close().
  void close() noexcept;

  /// Removes the name, so no one else can attach; mappings (here and elsewhere) stay valid until
  /// closed. Call it once, from one process. Python: unlink().
  /// @throws FileNotFoundError when the name no longer exists.
  void unlink();

  /// True after close().
  [[nodiscard]] bool closed() const noexcept { return state_->data == nullptr; }

 private:
  struct state {
    std::string name;  // without '/'
    std::string path;  // what shm_open sees: "/" + name
    detail::unique_fd fd;
    void* data = nullptr;
    std::size_t size = 0;
    bool track = false;  // unlink on destruction in the creating process
    bool unlinked = false;
    pid_t creator = 0;  // the process that created it (0: attached)
    dev_t dev = 0;
    ino_t ino = 0;

    state() = default;
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state();
    void unmap() noexcept;
    void map(const std::string& what);
  };

  struct empty_tag {};
  explicit SharedMemory(empty_tag) {}  // no block; only as a member about to be assigned
  friend struct multiprocessing::serializer<SharedMemory>;
  template <class>
  friend class ShareableList;

  std::shared_ptr<state> state_;
};

/// Byte strings stored in a ShareableList (Python: bytes).
using bytes = std::vector<std::byte>;

/// Python: multiprocessing.shared_memory.ShareableList. A list with a fixed number of items,
/// stored in a SharedMemory block so that every process attaching by name sees (and may change)
/// the same items. A handle: copies share the list.
///
/// T is any arithmetic type, std::string or shared_memory::bytes. Unlike Python's, a list holds
/// items of one type (T), checked when attaching; None items are not supported.
///
/// As in Python, every item's storage is fixed at creation: a number takes sizeof(T); a string or
/// byte string of n bytes gets a slot of 8 * (n / 8 + 1) bytes, and assigning a longer one later
/// throws ValueError. Improvement over CPython: strings and byte strings keep trailing NUL bytes
/// (CPython strips them), because each slot records its length.
///
/// No synchronization, as in Python: a read racing with a write of the same item in another
/// process may see a mix of old and new bytes (never out-of-bounds ones). Use a Lock around it.
template <class T>
class ShareableList {
 public:
  using value_type = T;

 private:
  static constexpr bool is_string_ = !std::is_arithmetic_v<T>;
  static_assert(std::is_arithmetic_v<T> || std::is_same_v<T, std::string> ||
                    std::is_same_v<T, bytes>,
                "ShareableList<T>: T must be an arithmetic type, std::string or "
                "multiprocessing::shared_memory::bytes (std::vector<std::byte>)");

 public:
  /// Creates a list holding `init` in a new block called `name` (random "psm_..." when omitted).
  /// Python: ShareableList(sequence, name=name).
  /// @throws FileExistsError when `name` exists; nothing is left behind (no block, mapping, fd).
  explicit ShareableList(std::vector<T> init, std::optional<std::string> name = std::nullopt);
  /// The same, from a braced list: ShareableList<int64_t> sl({1, 2, 3}, "name").
  ShareableList(std::initializer_list<T> init, std::optional<std::string> name = std::nullopt)
      : ShareableList(std::vector<T>(init), std::move(name)) {}

  /// Attaches to the list created under `name`. Python: ShareableList(name=name).
  /// @throws FileNotFoundError when `name` does not exist.
  /// @throws ValueError when the block is not a ShareableList; TypeError when it holds another T.
  /// (No `const char*` overload on purpose: ShareableList<std::string>({"a"}) must create.)
  explicit ShareableList(std::string name);

  /// Wraps an attached block (as the serializer does).
  /// @throws ValueError / TypeError as the attaching constructor.
  explicit ShareableList(SharedMemory shm);

  /// The number of items (fixed). Python: len(sl).
  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  /// Item `i`. Python: sl[i].
  /// @throws std::out_of_range when i >= size() (Python: IndexError).
  [[nodiscard]] T get(std::size_t i) const;

  /// Replaces item `i`. Python: sl[i] = value.
  /// @throws std::out_of_range when i >= size().
  /// @throws ValueError "bytes/str item exceeds available storage" when a string is longer than
  ///         the slot it got at creation.
  void set(std::size_t i, const T& value) const;

  /// Reads as get(i), assigns as set(i, value). Refers to the list handle it came from: use it
  /// while that handle lives (as an iterator).
  class reference {
   public:
    operator T() const { return list_->get(i_); }  // NOLINT(google-explicit-constructor)
    const reference& operator=(const T& value) const {
      list_->set(i_, value);
      return *this;
    }
    const reference& operator=(const reference& other) const {
      return *this = static_cast<T>(other);
    }
    reference(const reference&) = default;
    /// sl[i] == "text" for strings (numbers compare through the conversion to T).
    friend bool operator==(const reference& r, const T& value) requires is_string_ {
      return r.list_->get(r.i_) == value;
    }

   private:
    friend class ShareableList;
    reference(const ShareableList* list, std::size_t i) : list_(list), i_(i) {}
    const ShareableList* list_;
    std::size_t i_;
  };

  /// Python: sl[i] and sl[i] = value (bounds-checked, see get/set).
  [[nodiscard]] reference operator[](std::size_t i) const { return reference(this, i); }

  /// How many items equal `value`. Python: sl.count(value).
  [[nodiscard]] std::size_t count(const T& value) const;

  /// The position of the first item equal to `value`. Python: sl.index(value).
  /// @throws ValueError when no item equals it.
  [[nodiscard]] std::size_t index(const T& value) const;

  /// Every item, in order (Python: list(sl)).
  [[nodiscard]] std::vector<T> to_vector() const;

  /// The block holding the items. Python: sl.shm.
  [[nodiscard]] SharedMemory& shm() noexcept { return shm_; }
  [[nodiscard]] const SharedMemory& shm() const noexcept { return shm_; }

  /// A struct-module-like description of the storage, one code per item: "qqq" for three int64
  /// items, "8s16s" for strings with 8- and 16-byte slots. Python: sl.format.
  [[nodiscard]] std::string format() const;

 private:
  // The block: a header, one slot record per item, then the items (8-byte aligned offsets).
  struct header_t {
    std::uint64_t magic;
    std::uint32_t code;       // type_code()
    std::uint32_t item_size;  // sizeof(T) for numbers, 0 for strings
    std::uint64_t count;
  };
  struct slot_t {
    std::uint64_t offset;    // from the start of the block
    std::uint64_t capacity;  // bytes reserved
    std::uint64_t length;    // bytes used (strings)
  };
  static constexpr std::uint64_t magic_ = 0x31'4c'53'2d'70'6d'00'00ULL;  // identifies our layout
  static constexpr std::size_t align_ = 8;

  [[nodiscard]] static constexpr std::uint32_t type_code() noexcept;
  [[nodiscard]] static std::string type_label();
  [[nodiscard]] static std::size_t slot_for(const T& value) noexcept;
  [[nodiscard]] static std::size_t round_up(std::size_t n) noexcept {
    return (n + align_ - 1) / align_ * align_;
  }
  // A slot's bounds, read once from the block and checked, and where its length lives.
  struct slot_view {
    std::size_t offset;
    std::size_t capacity;
    std::uint64_t* length;
  };
  [[nodiscard]] slot_view slot(std::size_t i) const;
  void check_layout();
  static void store(const slot_view& s, std::byte* base, const T& value);

  SharedMemory shm_;
  std::size_t count_ = 0;  // checked against the block when attaching; the count never changes
};

}  // namespace multiprocessing::shared_memory

namespace multiprocessing {

/// A SharedMemory crosses a process boundary as its name and its descriptor: the receiver maps the
/// same block even if the name was unlinked meanwhile (Python would fail to attach then). The
/// received handle never unlinks on destruction.
template <>
struct serializer<shared_memory::SharedMemory> {
  static constexpr std::string_view type_name = "multiprocessing::shared_memory::SharedMemory";
  static void save(serialize::Writer& out, const shared_memory::SharedMemory& shm);
  static shared_memory::SharedMemory load(serialize::Reader& in);
};

/// A ShareableList crosses a process boundary as its SharedMemory.
template <class T>
struct serializer<shared_memory::ShareableList<T>> {
  static void save(serialize::Writer& out, const shared_memory::ShareableList<T>& list) {
    out.save(list.shm());
  }
  static shared_memory::ShareableList<T> load(serialize::Reader& in) {
    return shared_memory::ShareableList<T>(in.load<shared_memory::SharedMemory>());
  }
};

}  // namespace multiprocessing

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace multiprocessing::shared_memory {
namespace detail_shm {

/// Python's OSError text: "[Errno 2] No such file or directory: '/name'", as the matching mp::
/// exception (FileExistsError, FileNotFoundError, OSError).
[[noreturn]] inline void throw_os_error(int err, const std::string& path) {
  const std::string text =
      "[Errno " + std::to_string(err) + "] " + std::strerror(err) + ": '" + path + "'";
  if (err == EEXIST) throw FileExistsError(text);
  if (err == ENOENT) throw FileNotFoundError(text);
  throw OSError(text, err);
}

/// "psm_" and 8 random hex digits, as Python's _make_filename.
inline std::string random_name() {
  std::array<unsigned char, 4> raw{};
  std::size_t got = 0;
  while (got < raw.size()) {
    const ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
    if (n == -1) {
      if (errno == EINTR) continue;
      multiprocessing::detail::throw_errno("getrandom for a shared memory name");
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string name = "psm_";
  for (const unsigned char b : raw) {
    name += hex[b >> 4];
    name += hex[b & 0xF];
  }
  return name;
}

}  // namespace detail_shm

inline SharedMemory::state::~state() {
  unmap();
  if (track && !unlinked && creator == ::getpid()) {
    // Unlink only the block we created: the name may have been unlinked and reused by now.
    detail::unique_fd current(::shm_open(path.c_str(), O_RDONLY, 0));
    struct stat st {};
    if (current && ::fstat(current.get(), &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
      ::shm_unlink(path.c_str());
    }
  }
}

inline void SharedMemory::state::unmap() noexcept {
  if (data != nullptr) ::munmap(data, size);
  data = nullptr;
  fd.reset();
}

inline void SharedMemory::state::map(const std::string& what) {
  struct stat st {};
  if (::fstat(fd.get(), &st) == -1) detail_shm::throw_os_error(errno, what);
  if (st.st_size <= 0) throw ValueError("cannot map the empty shared memory block '" + what + "'");
  size = static_cast<std::size_t>(st.st_size);
  dev = st.st_dev;
  ino = st.st_ino;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) detail_shm::throw_os_error(errno, what);
  data = p;
}

inline SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::size_t size,
                                  bool track)
    : state_(std::make_shared<state>()) {
  if (create && size == 0) {
    throw ValueError("'size' must be a positive number different from zero");
  }
  if (!name && !create) throw ValueError("'name' can only be None if create=True");
  auto& st = *state_;
  if (!create) {
    st.name = std::move(*name);
    st.path = "/" + st.name;
    st.fd.reset(::shm_open(st.path.c_str(), O_RDWR, 0600));
    if (!st.fd) detail_shm::throw_os_error(errno, st.path);
    st.map(st.path);  // Python ignores `size` when attaching
    return;
  }
  for (;;) {
    st.name = name ? *name : detail_shm::random_name();
    st.path = "/" + st.name;
    st.fd.reset(::shm_open(st.path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
    if (st.fd) break;
    if (errno == EEXIST && !name) continue;  // a random name that is taken: draw another
    detail_shm::throw_os_error(errno, st.path);
  }
  try {
    if (::ftruncate(st.fd.get(), static_cast<off_t>(size)) == -1) {
      detail_shm::throw_os_error(errno, st.path);
    }
    st.map(st.path);
  } catch (...) {
    ::shm_unlink(st.path.c_str());  // as Python: a block that could not be set up is removed
    st.unlinked = true;
    throw;
  }
  st.track = track;
  st.creator = ::getpid();
}

inline std::span<std::byte> SharedMemory::buf() const {
  if (state_->data == nullptr) {
    throw ValueError("SharedMemory '" + state_->name + "' is closed: buf() is not available");
  }
  return {static_cast<std::byte*>(state_->data), state_->size};
}

inline void SharedMemory::close() noexcept { state_->unmap(); }

inline void SharedMemory::unlink() {
  if (::shm_unlink(state_->path.c_str()) == -1) {
    const int err = errno;
    if (err == ENOENT) state_->unlinked = true;
    detail_shm::throw_os_error(err, state_->path);
  }
  state_->unlinked = true;
}

// -- ShareableList -----------------------------------------------------------------------------

template <class T>
constexpr std::uint32_t ShareableList<T>::type_code() noexcept {
  if constexpr (std::is_same_v<T, std::string>) {
    return 's';
  } else if constexpr (std::is_same_v<T, bytes>) {
    return 'y';
  } else if constexpr (std::is_same_v<T, bool>) {
    return '?';
  } else if constexpr (std::is_same_v<T, char>) {
    return 'c';
  } else if constexpr (std::is_floating_point_v<T>) {
    return sizeof(T) == 4 ? 'f' : sizeof(T) == 8 ? 'd' : 'g';
  } else {
    constexpr bool s = std::is_signed_v<T>;
    switch (sizeof(T)) {
      case 1:
        return s ? 'b' : 'B';
      case 2:
        return s ? 'h' : 'H';
      case 4:
        return s ? 'i' : 'I';
      default:
        return s ? 'q' : 'Q';
    }
  }
}

template <class T>
std::string ShareableList<T>::type_label() {
  if constexpr (std::is_same_v<T, std::string>) {
    return "str";
  } else if constexpr (std::is_same_v<T, bytes>) {
    return "bytes";
  } else {
    return std::string(1, static_cast<char>(type_code())) + " (" + std::to_string(sizeof(T)) +
           " bytes)";
  }
}

template <class T>
std::size_t ShareableList<T>::slot_for(const T& value) noexcept {
  if constexpr (is_string_) {
    return align_ * (value.size() / align_ + 1);  // Python's rule for str and bytes
  } else {
    return sizeof(T);
  }
}

template <class T>
ShareableList<T>::ShareableList(std::vector<T> init, std::optional<std::string> name)
    : shm_(SharedMemory::empty_tag{}) {
  // Everything is computed before the block exists: once created, nothing below can throw.
  const std::size_t n = init.size();
  std::size_t offset = round_up(sizeof(header_t) + n * sizeof(slot_t));
  std::vector<slot_t> slots(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t capacity = slot_for(init[i]);
    slots[i] = slot_t{offset, capacity, is_string_ ? 0 : capacity};
    offset += round_up(capacity);
  }
  shm_ = SharedMemory(std::move(name), true, offset);
  std::byte* base = shm_.buf().data();
  const header_t h{magic_, type_code(), is_string_ ? 0U : static_cast<std::uint32_t>(sizeof(T)), n};
  std::memcpy(base, &h, sizeof h);
  if (n != 0) std::memcpy(base + sizeof(header_t), slots.data(), n * sizeof(slot_t));
  count_ = n;
  for (std::size_t i = 0; i < n; ++i) store(slot(i), base, init[i]);
}

template <class T>
ShareableList<T>::ShareableList(std::string name) : shm_(std::move(name)) {
  check_layout();
}

template <class T>
ShareableList<T>::ShareableList(SharedMemory shm) : shm_(std::move(shm)) {
  check_layout();
}

template <class T>
void ShareableList<T>::check_layout() {
  const auto block = shm_.buf();
  header_t h{};
  if (block.size() < sizeof h) {
    throw ValueError("shared memory block '" + shm_.name() + "' does not hold a ShareableList");
  }
  std::memcpy(&h, block.data(), sizeof h);
  if (h.magic != magic_) {
    throw ValueError("shared memory block '" + shm_.name() + "' does not hold a ShareableList");
  }
  if (h.code != type_code() || h.item_size != (is_string_ ? 0U : sizeof(T))) {
    throw TypeError("ShareableList '" + shm_.name() + "' does not hold items of type " +
                    type_label());
  }
  const std::size_t table_end = sizeof(header_t) + h.count * sizeof(slot_t);
  if (h.count > block.size() / sizeof(slot_t) || table_end > block.size()) {
    throw ValueError("ShareableList '" + shm_.name() + "' is corrupt: " + std::to_string(h.count) +
                     " items do not fit in " + std::to_string(block.size()) + " bytes");
  }
  for (std::size_t i = 0; i < h.count; ++i) {
    slot_t s{};
    std::memcpy(&s, block.data() + sizeof(header_t) + i * sizeof(slot_t), sizeof s);
    if (s.offset < table_end || s.offset > block.size() || s.capacity > block.size() - s.offset ||
        s.offset % alignof(T) != 0 || (!is_string_ && s.capacity != sizeof(T))) {
      throw ValueError("ShareableList '" + shm_.name() + "' is corrupt: item " + std::to_string(i) +
                       " is out of bounds");
    }
  }
  count_ = static_cast<std::size_t>(h.count);
}

template <class T>
typename ShareableList<T>::slot_view ShareableList<T>::slot(std::size_t i) const {
  const auto block = shm_.buf();
  if (i >= count_) {
    throw std::out_of_range("ShareableList index " + std::to_string(i) + " out of range (size " +
                            std::to_string(count_) + ")");
  }
  slot_t& s = *std::launder(
      reinterpret_cast<slot_t*>(block.data() + sizeof(header_t) + i * sizeof(slot_t)));
  // Read once and checked on every access: another process scribbling over the table must not
  // make us read or write outside the block.
  const slot_view v{static_cast<std::size_t>(s.offset), static_cast<std::size_t>(s.capacity),
                    &s.length};
  if (v.offset > block.size() || v.capacity > block.size() - v.offset ||
      (!is_string_ && v.capacity != sizeof(T))) {
    throw ValueError("ShareableList '" + shm_.name() + "' is corrupt: item " + std::to_string(i) +
                     " is out of bounds");
  }
  return v;
}

template <class T>
void ShareableList<T>::store(const slot_view& s, std::byte* base, const T& value) {
  if constexpr (is_string_) {
    if (value.size() > s.capacity) throw ValueError("bytes/str item exceeds available storage");
    if (!value.empty()) std::memcpy(base + s.offset, value.data(), value.size());
    // The length is published after the bytes, so a reader never sees it ahead of them.
    std::atomic_ref<std::uint64_t>(*s.length).store(value.size(), std::memory_order_release);
  } else {
    std::memcpy(base + s.offset, &value, sizeof(T));
  }
}

template <class T>
T ShareableList<T>::get(std::size_t i) const {
  const slot_view s = slot(i);
  const std::byte* base = shm_.buf().data();
  if constexpr (is_string_) {
    // Clamped: a corrupt or concurrently changing length never reads outside the slot.
    const auto length = static_cast<std::size_t>(std::min<std::uint64_t>(
        std::atomic_ref<std::uint64_t>(*s.length).load(std::memory_order_acquire), s.capacity));
    T value(length, typename T::value_type{});
    if (length != 0) std::memcpy(value.data(), base + s.offset, length);
    return value;
  } else {
    T value{};
    std::memcpy(&value, base + s.offset, sizeof(T));
    return value;
  }
}

template <class T>
void ShareableList<T>::set(std::size_t i, const T& value) const {
  store(slot(i), shm_.buf().data(), value);
}

template <class T>
std::size_t ShareableList<T>::count(const T& value) const {
  std::size_t n = 0;
  for (std::size_t i = 0, end = size(); i < end; ++i) n += get(i) == value ? 1U : 0U;
  return n;
}

template <class T>
std::size_t ShareableList<T>::index(const T& value) const {
  for (std::size_t i = 0, end = size(); i < end; ++i) {
    if (get(i) == value) return i;
  }
  throw ValueError("value not in this ShareableList");
}

template <class T>
std::vector<T> ShareableList<T>::to_vector() const {
  std::vector<T> items;
  const std::size_t n = size();
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) items.push_back(get(i));
  return items;
}

template <class T>
std::string ShareableList<T>::format() const {
  std::string f;
  const std::size_t n = size();
  for (std::size_t i = 0; i < n; ++i) {
    if constexpr (is_string_) {
      f += std::to_string(slot(i).capacity) + "s";
    } else {
      f += static_cast<char>(type_code());
    }
  }
  return f;
}

}  // namespace multiprocessing::shared_memory

namespace multiprocessing {

inline void serializer<shared_memory::SharedMemory>::save(serialize::Writer& out,
                                                          const shared_memory::SharedMemory& shm) {
  if (shm.closed()) {
    throw ValueError("cannot pass the closed SharedMemory '" + shm.name() + "' to another process");
  }
  out.save(shm.name());
  out.save(out.attach_fd(shm.state_->fd.get()));
}

inline shared_memory::SharedMemory serializer<shared_memory::SharedMemory>::load(
    serialize::Reader& in) {
  shared_memory::SharedMemory shm(shared_memory::SharedMemory::empty_tag{});
  shm.state_ = std::make_shared<shared_memory::SharedMemory::state>();
  auto& st = *shm.state_;
  st.name = in.load<std::string>();
  st.path = "/" + st.name;
  const int passed = in.fd(in.load<std::uint32_t>());
  st.fd.reset(::fcntl(passed, F_DUPFD_CLOEXEC, 0));  // the passed fd is only valid while loading
  if (!st.fd) detail::throw_errno("dup the descriptor of SharedMemory " + st.path);
  st.map(st.path);
  return shm;
}

}  // namespace multiprocessing

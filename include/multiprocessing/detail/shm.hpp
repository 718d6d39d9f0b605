// SPDX-License-Identifier: MIT
// multiprocessing/detail/shm.hpp
//
// Shared memory segments for the library's own objects (locks, values, queues): an anonymous
// memfd mapped MAP_SHARED. Nothing ever appears in /dev/shm, so nothing can leak there, even when
// every process using a segment is killed. A forked child shares the parent's mappings; a spawned
// child receives the memfd through the handshake (serialize::Writer::attach_fd) and maps it.
//
// shared_object<T> places one T in its own segment and is what handles hold: copying it shares the
// object, like a Python reference. T lives as long as some process maps it and its destructor is
// never run, so T must be trivially destructible and hold no pointers (only offsets, futex words,
// plain data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../errors.hpp"
#include "../serialize/core.hpp"
#include "posix.hpp"

namespace multiprocessing::detail {

/// A memfd and its MAP_SHARED mapping. Owned through std::shared_ptr by the handles using it.
class shm_segment {
 public:
  /// A new zero-filled segment of `size` bytes. `what` names it in errors and in /proc/<pid>/maps
  /// ("memfd:mp-<what>").
  [[nodiscard]] static std::shared_ptr<shm_segment> create(std::size_t size, const std::string& what) {
    if (size == 0) size = 1;
    const std::string name = "mp-" + what;
    unique_fd fd(::memfd_create(name.c_str(), MFD_CLOEXEC));
    if (!fd) throw_errno("memfd_create " + name);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) == -1) {
      throw_errno("ftruncate " + name + " to " + std::to_string(size) + " bytes");
    }
    return std::shared_ptr<shm_segment>(new shm_segment(std::move(fd), size, name));
  }

  /// Maps the segment behind `fd` (duplicated; the caller keeps its own). Its size is the file's.
  /// @throws SerializationError when `fd` is not a segment of at least `min_size` bytes.
  [[nodiscard]] static std::shared_ptr<shm_segment> attach(int fd, std::size_t min_size,
                                                           const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) == -1) throw_errno("fstat shared segment " + what);
    if (!S_ISREG(st.st_mode) || static_cast<std::size_t>(st.st_size) < min_size) {
      throw SerializationError("descriptor " + std::to_string(fd) + " is not a shared segment of " +
                               std::to_string(min_size) + "+ bytes for " + what);
    }
    unique_fd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own) throw_errno("dup shared segment " + what);
    return std::shared_ptr<shm_segment>(
        new shm_segment(std::move(own), static_cast<std::size_t>(st.st_size), what));
  }

  shm_segment(const shm_segment&) = delete;
  shm_segment& operator=(const shm_segment&) = delete;
  ~shm_segment() { ::munmap(data_, size_); }

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  shm_segment(unique_fd fd, std::size_t size, const std::string& what) : fd_(std::move(fd)), size_(size) {
    data_ = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (data_ == MAP_FAILED) throw_errno("mmap " + what + " (" + std::to_string(size_) + " bytes)");
  }

  unique_fd fd_;
  std::size_t size_;
  void* data_ = nullptr;
};

/// One T in a shared segment of its own (plus `extra` bytes after it, for arrays).
template <class T>
class shared_object {
  static_assert(std::is_trivially_destructible_v<T>,
                "a shared object outlives every destructor call: T must be trivially destructible");

 public:
  shared_object() = default;

  /// Creates the segment and constructs T(args...) at its start.
  template <class... Args>
  [[nodiscard]] static shared_object create(const std::string& what, std::size_t extra, Args&&... args) {
    shared_object o;
    o.segment_ = shm_segment::create(sizeof(T) + extra, what);
    o.object_ = ::new (o.segment_->data()) T(std::forward<Args>(args)...);
    return o;
  }

  [[nodiscard]] T* get() const noexcept { return object_; }
  [[nodiscard]] T* operator->() const noexcept { return object_; }
  [[nodiscard]] T& operator*() const noexcept { return *object_; }
  [[nodiscard]] explicit operator bool() const noexcept { return object_ != nullptr; }
  [[nodiscard]] const shm_segment& segment() const noexcept { return *segment_; }
  /// The bytes after T (the `extra` of create()).
  [[nodiscard]] std::byte* tail() const noexcept {
    return static_cast<std::byte*>(segment_->data()) + sizeof(T);
  }
  [[nodiscard]] std::size_t tail_size() const noexcept { return segment_->size() - sizeof(T); }

  /// Writes a reference for another process: the memfd travels beside the bytes.
  void save(serialize::Writer& out) const { out.save(out.attach_fd(segment_->fd())); }

  /// Maps the segment another process saved. T is already constructed there.
  [[nodiscard]] static shared_object load(serialize::Reader& in, const std::string& what) {
    shared_object o;
    o.segment_ = shm_segment::attach(in.fd(in.load<std::uint32_t>()), sizeof(T), what);
    o.object_ = std::launder(static_cast<T*>(o.segment_->data()));
    return o;
  }

 private:
  std::shared_ptr<shm_segment> segment_;
  T* object_ = nullptr;
};

}  // namespace multiprocessing::detail

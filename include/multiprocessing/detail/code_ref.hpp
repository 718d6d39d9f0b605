// SPDX-License-Identifier: MIT
// multiprocessing/detail/code_ref.hpp
//
// Names a function so that a fresh execution of the same program can find it again: the loaded
// object holding it (the main program, or a shared library by path) and the offset from that
// object's load address. ASLR moves each object as a whole, so the offset is stable across exec.
// Each object is identified by its ELF build-id (or, without one, by the file's device, inode, size
// and mtime), so a child that is not running the same binary says so instead of jumping into the
// wrong code.
//
// A reference also carries the absolute address and a token of the program image it was made in
// (see exec_token()): a process forked from that image, with no exec in between, uses the address
// as it is. Such a child must not walk the loaded objects at all: dl_iterate_phdr() takes the
// loader's lock, and a fork copies that lock held when another thread of the parent was inside
// it (glibc resets only its own loader lock in the child, not this one) — the child then waits
// forever. Our own walks in the parent take loader_mutex(), which Process::start holds across
// fork(), so none of ours is ever caught mid-walk.
#pragma once

#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <sys/auxv.h>
#endif

#include "../errors.hpp"

namespace multiprocessing::detail {

/// A function's location: object path ("" for the main program), its identity and the offset;
/// and, for processes forked from the same image, the image's token and the absolute address.
struct code_ref {
  std::string object;
  std::string identity;
  std::uint64_t offset = 0;
  std::uint64_t image = 0;  // exec_token() of the process that made it; 0: unknown
  std::uint64_t address = 0;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(object, identity, offset, image, address);
  }
};

/// Names the program image this process runs: 8 of the 16 random bytes the kernel places in every
/// new image at exec (AT_RANDOM). fork() copies them, exec() draws new ones, so two processes with
/// the same token have the same code at the same addresses. 0 where the platform has no such bytes.
[[nodiscard]] inline std::uint64_t exec_token() noexcept {
  std::uint64_t token = 0;
#if defined(__linux__)
  if (const unsigned long at = ::getauxval(AT_RANDOM); at != 0) {
    std::memcpy(&token, reinterpret_cast<const void*>(at), sizeof token);
  }
#endif
  return token;
}

/// Serializes this library's walks over the loaded objects with its fork()s (see above).
[[nodiscard]] inline std::mutex& loader_mutex() noexcept {
  static std::mutex mu;
  return mu;
}

namespace code_ref_impl {

inline std::string hex(const unsigned char* p, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 0xf];
  }
  return s;
}

/// The GNU build-id note of a loaded object, as hex, or "" when it has none.
inline std::string build_id(const dl_phdr_info& info) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const auto& ph = info.dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const auto* p = reinterpret_cast<const unsigned char*>(info.dlpi_addr + ph.p_vaddr);
    const unsigned char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      ElfW(Nhdr) note;
      std::memcpy(&note, p, sizeof note);
      const unsigned char* name = p + sizeof note;
      const unsigned char* desc = name + ((note.n_namesz + 3u) & ~3u);
      const unsigned char* next = desc + ((note.n_descsz + 3u) & ~3u);
      if (next > end) break;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        return hex(desc, note.n_descsz);
      }
      p = next;
    }
  }
  return {};
}

/// The identity of a loaded object: "build-id:<hex>", or "file:<dev>:<ino>:<size>:<mtime>".
inline std::string identity(const dl_phdr_info& info, const std::string& object) {
  if (std::string id = build_id(info); !id.empty()) return "build-id:" + id;
  struct stat st {};
  const std::string path = object.empty() ? "/proc/self/exe" : object;
  if (::stat(path.c_str(), &st) != 0) return "unknown:" + path;
  return "file:" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

inline bool contains(const dl_phdr_info& info, std::uintptr_t addr) {
  for (int i = 0; i < info.dlpi_phnum; ++i) {
    const auto& ph = info.dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t start = info.dlpi_addr + ph.p_vaddr;
    if (addr >= start && addr - start < ph.p_memsz) return true;
  }
  return false;
}

/// Calls `visit(info, name)` for each loaded object until it returns true.
template <class Visit>
void for_each_object(Visit&& visit) {
  const std::lock_guard lock(loader_mutex());
  struct context {
    Visit* visit;
    bool first = true;
  } ctx{&visit};
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& c = *static_cast<context*>(data);
        // The first object is always the main program; its dlpi_name is "" (or argv[0] on some
        // libcs): normalise to "".
        std::string name = c.first ? std::string() : std::string(info->dlpi_name ? info->dlpi_name : "");
        c.first = false;
        return (*c.visit)(*info, name) ? 1 : 0;
      },
      &ctx);
}

}  // namespace code_ref_impl

/// Locates the code at `addr` (a function's address) in the loaded objects.
/// @throws ProcessError when no loaded object holds it (e.g. code generated at run time).
inline code_ref make_code_ref(std::uintptr_t addr) {
  code_ref ref;
  ref.image = exec_token();
  ref.address = addr;
  bool found = false;
  code_ref_impl::for_each_object([&](const dl_phdr_info& info, const std::string& name) {
    if (!code_ref_impl::contains(info, addr)) return false;
    ref.object = name;
    ref.identity = code_ref_impl::identity(info, name);
    ref.offset = addr - info.dlpi_addr;
    found = true;
    return true;
  });
  if (!found) {
    throw ProcessError("cannot name the function at address " + std::to_string(addr) +
                       " for a spawned process: it is in no loaded object");
  }
  return ref;
}

/// Where the running main program is loaded, and its identity (see code_ref::identity): looked up
/// once per process (a fork server looks it up before it forks, so its children never do).
struct main_program_t {
  std::string identity;
  std::uintptr_t base = 0;
};
inline const main_program_t& main_program() {
  static const main_program_t program = [] {
    main_program_t found;
    code_ref_impl::for_each_object([&](const dl_phdr_info& info, const std::string& name) {
      found.identity = code_ref_impl::identity(info, name);
      found.base = info.dlpi_addr;
      return true;
    });
    return found;
  }();
  return program;
}

/// The identity of the running main program (see code_ref::identity).
inline std::string main_program_identity() { return main_program().identity; }

/// Finds `ref` in this process (loading the shared library if needed) and checks its identity.
/// @throws ProcessError naming the object when it is missing or is a different build.
inline std::uintptr_t resolve_code_ref(const code_ref& ref) {
  if (ref.image != 0 && ref.image == exec_token()) return static_cast<std::uintptr_t>(ref.address);
  std::uintptr_t addr = 0;
  std::string identity;
  if (ref.object.empty()) {  // the main program: always loaded, looked up once
    identity = main_program().identity;
    addr = main_program().base + ref.offset;
  }
  auto find = [&] {
    code_ref_impl::for_each_object([&](const dl_phdr_info& info, const std::string& name) {
      if (name != ref.object) return false;
      identity = code_ref_impl::identity(info, name);
      addr = info.dlpi_addr + ref.offset;
      return true;
    });
    return !identity.empty();
  };
  if (identity.empty() && !find()) {
    // A library the parent had loaded with dlopen(): load it here too. The handle is kept for the
    // life of the process on purpose (the code we are about to call lives in it).
    const bool loaded = !ref.object.empty() && [&] {
      const std::lock_guard lock(loader_mutex());
      return ::dlopen(ref.object.c_str(), RTLD_NOW | RTLD_GLOBAL) != nullptr;
    }();
    if (!loaded) {
      throw ProcessError("spawned child cannot load '" + ref.object + "'");
    }
    find();
  }
  const std::string what = ref.object.empty() ? "the main program" : "'" + ref.object + "'";
  if (identity != ref.identity) {
    throw ProcessError("spawned child is not running the parent's binary: " + what + " is " +
                       identity + ", the parent's was " + ref.identity);
  }
  return addr;
}

}  // namespace multiprocessing::detail

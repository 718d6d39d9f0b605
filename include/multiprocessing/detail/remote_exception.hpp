// SPDX-License-Identifier: MIT
// multiprocessing/detail/remote_exception.hpp
//
// Exceptions across a boundary (a pool worker's, a manager's): the side that caught one records
// its type, name and message in an exception_record; the other side rethrows the same type when it
// is a standard or mp:: exception, RemoteError (with the original type name) otherwise.
#pragma once

#include <cstdint>
#include <cxxabi.h>
#include <exception>
#include <functional>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <typeinfo>
#include <variant>

#include <sys/types.h>

#include "../errors.hpp"
#include "child.hpp"

namespace multiprocessing::detail {

struct exception_record {
  std::uint16_t kind = 0;  // index in known_exceptions + 1; 0: unknown type
  std::string type_name;   // demangled
  std::string what;
  std::int64_t code = 0;   // errno, system_error value, or RemoteError's pid
  std::uint8_t category = 0;  // system_error: 0 generic, 1 system, 2 other

  template <class Archive>
  void serialize(Archive& ar) {
    ar(kind, type_name, what, code, category);
  }
};

template <class... E>
struct exception_list {};

using known_exceptions = exception_list<
    std::exception, std::logic_error, std::invalid_argument, std::domain_error, std::length_error,
    std::out_of_range, std::runtime_error, std::range_error, std::overflow_error,
    std::underflow_error, std::system_error, std::bad_alloc, std::bad_cast, std::bad_typeid,
    std::bad_variant_access, std::bad_optional_access, std::bad_function_call,
    std::bad_array_new_length, Error, ProcessError, BufferTooShort, AuthenticationError,
    TimeoutError, Empty, Full, BrokenBarrierError, EOFError, ValueError, TypeError, KeyError,
    AttributeError, OSError, FileExistsError, FileNotFoundError, SerializationError, RemoteError,
    BrokenProcessPool, CancelledError, BrokenExecutor, BrokenThreadPool, IndexError>;

template <class... E>
std::uint16_t exception_kind(const std::type_info& type, exception_list<E...>) noexcept {
  std::uint16_t kind = 0;
  std::uint16_t index = 0;
  ((++index, kind == 0 && type == typeid(E) ? void(kind = index) : void()), ...);
  return kind;
}

/// Records the exception being handled (call inside a catch block).
[[nodiscard]] inline exception_record record_current_exception() noexcept {
  exception_record rec;
  try {
    try {
      throw;
    } catch (const std::exception& e) {
      rec.what = e.what();
      rec.type_name = demangle(typeid(e).name());
      rec.kind = exception_kind(typeid(e), known_exceptions{});
      if (const auto* se = dynamic_cast<const std::system_error*>(&e)) {
        rec.code = se->code().value();
        rec.category = se->code().category() == std::generic_category() ? 0
                       : se->code().category() == std::system_category() ? 1
                                                                           : 2;
        if (rec.category == 2 && rec.kind != 0) rec.kind = 0;  // a category we cannot rebuild
      } else if (const auto* oe = dynamic_cast<const OSError*>(&e)) {
        rec.code = oe->error_number();
      } else if (const auto* re = dynamic_cast<const RemoteError*>(&e)) {
        rec.type_name = re->type_name();
        rec.code = re->pid();
      }
    } catch (...) {
      const std::type_info* t = abi::__cxa_current_exception_type();
      rec.type_name = t != nullptr ? demangle(t->name()) : "unknown exception";
    }
  } catch (...) {  // out of memory while recording: keep what we have
  }
  return rec;
}

template <class E>
std::exception_ptr make_known_exception(const exception_record& rec) {
  if constexpr (std::is_same_v<E, std::system_error>) {
    const std::error_code ec(static_cast<int>(rec.code),
                             rec.category == 0 ? std::generic_category() : std::system_category());
    std::string prefix = rec.what;
    const std::string suffix = ": " + ec.message();
    if (prefix == ec.message()) return std::make_exception_ptr(std::system_error(ec));
    if (prefix.size() >= suffix.size() &&
        prefix.compare(prefix.size() - suffix.size(), suffix.size(), suffix) == 0) {
      prefix.resize(prefix.size() - suffix.size());
    }
    return std::make_exception_ptr(std::system_error(ec, prefix));
  } else if constexpr (std::is_same_v<E, OSError>) {
    return std::make_exception_ptr(OSError(rec.what, static_cast<int>(rec.code)));
  } else if constexpr (std::is_same_v<E, RemoteError>) {
    return std::make_exception_ptr(RemoteError(rec.type_name, rec.what, static_cast<pid_t>(rec.code)));
  } else if constexpr (std::is_constructible_v<E, const std::string&>) {
    return std::make_exception_ptr(E(rec.what));
  } else {
    return std::make_exception_ptr(E());  // std::bad_alloc and friends carry no message
  }
}

template <class... E>
std::exception_ptr rebuild_known(const exception_record& rec, exception_list<E...>) {
  std::exception_ptr result;
  std::uint16_t index = 0;
  ((++index, !result && rec.kind == index ? void(result = make_known_exception<E>(rec)) : void()),
   ...);
  return result;
}

/// The exception a parent rethrows for `rec`, raised in process `pid`.
[[nodiscard]] inline std::exception_ptr rebuild_exception(const exception_record& rec, pid_t pid) {
  if (rec.kind != 0) {
    if (auto e = rebuild_known(rec, known_exceptions{})) return e;
  }
  return std::make_exception_ptr(RemoteError(rec.type_name, rec.what, pid));
}

}  // namespace multiprocessing::detail

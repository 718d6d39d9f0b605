// SPDX-License-Identifier: MIT
// multiprocessing/errors.hpp
//
// The exception hierarchy (Python: the exceptions of multiprocessing, queue, concurrent.futures and
// the builtins the API raises). Everything derives from mp::Error, itself a std::runtime_error, so
// `catch (const mp::Error&)` catches all library errors and `catch (const std::exception&)` still
// works. Where Python nests its exceptions (TimeoutError under ProcessError, FileExistsError under
// OSError), the C++ classes nest the same way.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <utility>

namespace multiprocessing {

/// Base class of every exception the library throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Python: multiprocessing.ProcessError. Misuse of a process (started twice, joined before start)
/// and failures to start one (a target that cannot cross exec, a broken spawn handshake).
class ProcessError : public Error {
 public:
  using Error::Error;
};

/// Python: multiprocessing.BufferTooShort. Thrown by Connection::recv_bytes_into when the buffer is
/// too small; the complete message is kept in `message()`.
class BufferTooShort : public ProcessError {
 public:
  explicit BufferTooShort(const std::string& what, std::string message = {})
      : ProcessError(what), message_(std::move(message)) {}
  /// The whole message that did not fit.
  [[nodiscard]] const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

/// Python: multiprocessing.AuthenticationError (wrong authkey on a Listener/Client connection).
class AuthenticationError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};

/// Python: multiprocessing.TimeoutError (AsyncResult::get with a timeout that expired).
class TimeoutError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};

/// Python: queue.Empty.
class Empty : public Error {
 public:
  using Error::Error;
};

/// Python: queue.Full.
class Full : public Error {
 public:
  using Error::Error;
};

/// Python: threading.BrokenBarrierError.
class BrokenBarrierError : public Error {
 public:
  using Error::Error;
};

/// Python: EOFError (a connection whose peer closed and whose data is drained).
class EOFError : public Error {
 public:
  using Error::Error;
};

/// Python: ValueError.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// Python: TypeError. Also thrown when a message is received as a type other than the one sent.
class TypeError : public Error {
 public:
  using Error::Error;
};

/// Python: KeyError.
class KeyError : public Error {
 public:
  using Error::Error;
};

/// Python: IndexError (a manager list's index out of range, pop from an empty list).
class IndexError : public Error {
 public:
  using Error::Error;
};

/// Python: AttributeError.
class AttributeError : public Error {
 public:
  using Error::Error;
};

/// Python: OSError. Carries the errno value (0 when there is none).
class OSError : public Error {
 public:
  explicit OSError(const std::string& what, int error_number = 0)
      : Error(what), errno_(error_number) {}
  /// Python: OSError.errno.
  [[nodiscard]] int error_number() const noexcept { return errno_; }

 private:
  int errno_;
};

/// Python: FileExistsError (EEXIST).
class FileExistsError : public OSError {
 public:
  explicit FileExistsError(const std::string& what) : OSError(what, EEXIST) {}
};

/// Python: FileNotFoundError (ENOENT).
class FileNotFoundError : public OSError {
 public:
  explicit FileNotFoundError(const std::string& what) : OSError(what, ENOENT) {}
};

/// A message that cannot be encoded or decoded: truncated, corrupt or hostile bytes (Python:
/// pickle.PicklingError / UnpicklingError).
class SerializationError : public Error {
 public:
  using Error::Error;
};

/// An exception raised in another process whose type is neither a standard nor an mp:: exception
/// (Python: multiprocessing.managers.RemoteError / pool.RemoteTraceback). Keeps the original type
/// name and message, and the pid of the process that raised it.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, const std::string& message, pid_t pid)
      : Error(message), type_name_(std::move(type_name)), pid_(pid) {}
  /// The demangled type name of the original exception.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  /// The process that raised it.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  std::string type_name_;
  pid_t pid_;
};

/// Python: concurrent.futures.BrokenExecutor. A pool or executor that cannot run a task: one of
/// its workers died while holding it, or its initializer failed.
class BrokenExecutor : public Error {
 public:
  using Error::Error;
};

/// Python: concurrent.futures.process.BrokenProcessPool. A pool or executor worker process died
/// while it held the task (the message names the exit code or signal), or the initializer failed.
class BrokenProcessPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};

/// Python: concurrent.futures.thread.BrokenThreadPool. The initializer of a thread-backed pool or
/// executor (dummy::Pool, ThreadPoolExecutor) failed.
class BrokenThreadPool : public BrokenExecutor {
 public:
  using BrokenExecutor::BrokenExecutor;
};

/// Python: concurrent.futures.CancelledError.
class CancelledError : public Error {
 public:
  using Error::Error;
};

}  // namespace multiprocessing

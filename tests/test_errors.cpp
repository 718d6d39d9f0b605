// SPDX-License-Identifier: MIT
// Tests for multiprocessing/errors.hpp: the hierarchy mirrors Python's.
#include <type_traits>

#include <catch2/catch.hpp>

#include <multiprocessing/errors.hpp>

namespace mp = multiprocessing;

TEMPLATE_TEST_CASE("errors: every exception derives from mp::Error and std::runtime_error",
                   "[errors]", mp::ProcessError, mp::BufferTooShort, mp::AuthenticationError,
                   mp::TimeoutError, mp::Empty, mp::Full, mp::BrokenBarrierError, mp::EOFError,
                   mp::ValueError, mp::TypeError, mp::KeyError, mp::IndexError, mp::AttributeError,
                   mp::OSError, mp::FileExistsError, mp::FileNotFoundError, mp::SerializationError,
                   mp::RemoteError, mp::BrokenExecutor, mp::BrokenProcessPool, mp::BrokenThreadPool,
                   mp::CancelledError) {
  STATIC_REQUIRE(std::is_base_of_v<mp::Error, TestType>);
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, TestType>);
}

TEST_CASE("errors: Python's nesting is kept", "[errors]") {
  STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, mp::TimeoutError>);
  STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, mp::BufferTooShort>);
  STATIC_REQUIRE(std::is_base_of_v<mp::ProcessError, mp::AuthenticationError>);
  STATIC_REQUIRE(std::is_base_of_v<mp::OSError, mp::FileExistsError>);
  STATIC_REQUIRE(std::is_base_of_v<mp::OSError, mp::FileNotFoundError>);
  STATIC_REQUIRE(std::is_base_of_v<mp::BrokenExecutor, mp::BrokenProcessPool>);
  STATIC_REQUIRE(std::is_base_of_v<mp::BrokenExecutor, mp::BrokenThreadPool>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<mp::ProcessError, mp::Empty>);
}

TEST_CASE("errors: payloads survive a throw", "[errors]") {
  try {
    throw mp::RemoteError("my::Oops", "it broke", 4242);
  } catch (const mp::Error& e) {
    const auto& remote = dynamic_cast<const mp::RemoteError&>(e);
    CHECK(remote.type_name() == "my::Oops");
    CHECK(std::string(remote.what()) == "it broke");
    CHECK(remote.pid() == 4242);
  }
  try {
    throw mp::BufferTooShort("buffer of 4 bytes is too short for 10", "0123456789");
  } catch (const mp::ProcessError& e) {
    CHECK(dynamic_cast<const mp::BufferTooShort&>(e).message() == "0123456789");
  }
  CHECK(mp::FileExistsError("shm /x").error_number() == EEXIST);
  CHECK(mp::FileNotFoundError("shm /x").error_number() == ENOENT);
  CHECK(mp::OSError("recv_bytes", EMSGSIZE).error_number() == EMSGSIZE);
}

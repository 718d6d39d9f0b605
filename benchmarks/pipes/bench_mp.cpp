// SPDX-License-Identifier: MIT
// Competitor: multiprocessing-cpp's Pipe() and Connection, used as a Python program uses them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <multiprocessing.hpp>

#include "pipes.hpp"

namespace mp = multiprocessing;

namespace {

using clock_type = std::chrono::steady_clock;

void join_ok(mp::Process& p) {
  p.join();
  if (p.exitcode() != 0) {
    throw std::runtime_error("mp child exited with " + std::to_string(p.exitcode().value_or(-1)));
  }
}

}  // namespace

double bench::mp_round_trip_us(Message kind, std::int64_t trips) {
  auto [here, there] = mp::Pipe();
  mp::Process echo(
      [kind, trips](mp::Connection c) {
        for (std::int64_t i = 0; i < trips; ++i) {
          if (kind == Message::typed) {
            c.send(c.recv<std::int64_t>());
          } else {
            c.send_bytes(c.recv_bytes());
          }
        }
      },
      there);
  echo.start();
  there.close();
  // One untimed trip: the child is running and both sides' buffers are warm.
  here.send(std::int64_t{-1});
  if (here.recv<std::int64_t>() != -1) throw std::runtime_error("mp echo is wrong");
  const std::byte payload[8]{};
  const auto t0 = clock_type::now();
  for (std::int64_t i = 1; i < trips; ++i) {
    if (kind == Message::typed) {
      here.send(i);
      if (here.recv<std::int64_t>() != i) throw std::runtime_error("mp echo is wrong");
    } else {
      here.send_bytes(payload);
      if (here.recv_bytes().size() != sizeof payload) throw std::runtime_error("mp echo is wrong");
    }
  }
  const double us = std::chrono::duration<double, std::micro>(clock_type::now() - t0).count();
  join_ok(echo);
  return us / static_cast<double>(trips - 1);
}

double bench::mp_bandwidth_mb_s(std::size_t size, std::int64_t count) {
  auto [here, there] = mp::Pipe();
  mp::Process sink(
      [size, count](mp::Connection c) {
        for (std::int64_t i = 0; i < count; ++i) {
          if (c.recv_bytes().size() != size) throw std::runtime_error("mp sink: wrong size");
        }
        c.send_bytes("!");
      },
      there);
  sink.start();
  there.close();
  const std::vector<std::byte> message(size, std::byte{0x5a});
  const auto t0 = clock_type::now();
  for (std::int64_t i = 0; i < count; ++i) here.send_bytes(message);
  (void)here.recv_bytes();
  const double s = std::chrono::duration<double>(clock_type::now() - t0).count();
  join_ok(sink);
  return static_cast<double>(size) * static_cast<double>(count) / s / 1e6;
}

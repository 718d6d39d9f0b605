// SPDX-License-Identifier: MIT
// benchmarks/pipes/pipes.hpp
//
// What each competitor file gives main.cpp. Every measurement forks one child that holds the other
// end of a fresh channel (a duplex Pipe, a socketpair):
//   round trip: the parent sends a small message, the child sends it back; µs per round trip;
//   bandwidth:  the parent sends `count` messages of `size` bytes, the child receives them all and
//               answers one byte; MB/s (1e6 bytes per second) from the first send to that answer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bench {

/// How a round trip's message is sent.
enum class Message {
  typed,  ///< ours: send(std::int64_t) / recv<std::int64_t>(); raw: an 8-byte write/read
  bytes,  ///< ours: send_bytes / recv_bytes of 8 bytes; raw: an 8-byte write/read
};

/// bench_mp.cpp: mp::Pipe() (duplex), the child an mp::Process (fork).
double mp_round_trip_us(Message kind, std::int64_t trips);
/// bench_mp.cpp: send_bytes() / recv_bytes(), as Python's Connection.send_bytes / recv_bytes.
double mp_bandwidth_mb_s(std::size_t size, std::int64_t count);

/// raw_posix.cpp: socketpair(AF_UNIX, SOCK_STREAM), blocking write(2)/read(2), fork().
double raw_round_trip_us(std::int64_t trips);
/// raw_posix.cpp: fixed-size messages, so no framing: write(2) all, read(2) all into one buffer.
double raw_bandwidth_mb_s(std::size_t size, std::int64_t count);

}  // namespace bench

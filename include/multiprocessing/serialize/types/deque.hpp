// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/deque.hpp
//
// Serializes std::deque (Python: pickling list): a u64 length, then the elements one by one.
// The encoding and fingerprint are std::vector's, so one side may send a vector and the other
// receive a std::deque.
#pragma once

#include <deque>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::deque<T>: u64 length, then the elements.
template <class T, class Alloc>
struct serializer<std::deque<T, Alloc>>
    : serialize::detail::sequence_serializer<std::deque<T, Alloc>> {};

}  // namespace multiprocessing

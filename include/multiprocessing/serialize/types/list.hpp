// SPDX-License-Identifier: MIT
// multiprocessing/serialize/types/list.hpp
//
// Serializes std::list (Python: pickling list): a u64 length, then the elements one by one.
// The encoding and fingerprint are std::vector's, so one side may send a vector and the other
// receive a std::list.
#pragma once

#include <list>

#include <multiprocessing/serialize/core.hpp>

namespace multiprocessing {

/// std::list<T>: u64 length, then the elements.
template <class T, class Alloc>
struct serializer<std::list<T, Alloc>>
    : serialize::detail::sequence_serializer<std::list<T, Alloc>> {};

}  // namespace multiprocessing

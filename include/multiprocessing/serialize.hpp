// SPDX-License-Identifier: MIT
// multiprocessing/serialize.hpp
//
// The serialization layer in one include (Python: pickle): mp::serializer<T>, mp::Writer,
// mp::Reader, the concept mp::serializable<T>, the std types of serialize/types/ and the
// fingerprinted messages mp::dumps / mp::loads. See serialize/core.hpp for the rules and the
// wire format, serialize/message.hpp for the fingerprint.
#pragma once

#include <multiprocessing/serialize/core.hpp>
#include <multiprocessing/serialize/message.hpp>
#include <multiprocessing/serialize/reflect.hpp>
#include <multiprocessing/serialize/types/array.hpp>
#include <multiprocessing/serialize/types/chrono.hpp>
#include <multiprocessing/serialize/types/deque.hpp>
#include <multiprocessing/serialize/types/list.hpp>
#include <multiprocessing/serialize/types/map.hpp>
#include <multiprocessing/serialize/types/optional.hpp>
#include <multiprocessing/serialize/types/set.hpp>
#include <multiprocessing/serialize/types/string.hpp>
#include <multiprocessing/serialize/types/tuple.hpp>
#include <multiprocessing/serialize/types/utility.hpp>
#include <multiprocessing/serialize/types/variant.hpp>
#include <multiprocessing/serialize/types/vector.hpp>

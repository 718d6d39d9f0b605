// SPDX-License-Identifier: MIT
// multiprocessing/dummy.hpp
//
// The thread twins of the library (Python: multiprocessing.dummy): the same API backed by threads
// of one process, so one line switches a program between processes and threads. They share their
// implementation with the process versions through a backend policy (state on the heap, private
// futexes) and are not serializable. Holder death does not apply to threads (one cannot be killed
// alone): owner_died() is always false and recoveries() 0.
#pragma once

#include "connection.hpp"
#include "queues.hpp"
#include "synchronize.hpp"

namespace multiprocessing::dummy {

// --- primitives (Python: threading.Lock, RLock, Semaphore, ...)
// -------------------------------------
using Lock = detail::basic_lock<detail::thread_backend>;
using RLock = detail::basic_rlock<detail::thread_backend>;
using Semaphore = detail::basic_semaphore<detail::thread_backend, false>;
using BoundedSemaphore = detail::basic_semaphore<detail::thread_backend, true>;
using Condition = detail::basic_condition<detail::thread_backend>;
using Event = detail::basic_event<detail::thread_backend>;
using Barrier = detail::basic_barrier<detail::thread_backend>;

// --- queues (Python: queue.Queue; here with the multiprocessing Queue's API) --------------------
// Items are moved, not serialized: any movable T works.
template <class T>
using Queue = detail::basic_queue<T, detail::thread_backend>;
template <class T>
using JoinableQueue = detail::basic_joinable_queue<T, detail::thread_backend>;
template <class T>
using SimpleQueue = detail::basic_simple_queue<T, detail::thread_backend>;

// --- connections (Python: multiprocessing.dummy.connection) --------------------------------------
// A socketpair serves threads as well as processes: the same Pipe and Connection.
using multiprocessing::Connection;
using multiprocessing::Pipe;

}  // namespace multiprocessing::dummy

// SPDX-License-Identifier: MIT
// multiprocessing.hpp
//
// Everything (Python: `import multiprocessing as mp`). Include the per-module headers under
// multiprocessing/ to pull in less.
//
//   #include <multiprocessing.hpp>
//   namespace mp = multiprocessing;
#pragma once

#include "multiprocessing/connection.hpp"
#include "multiprocessing/context.hpp"
#include "multiprocessing/dummy.hpp"
#include "multiprocessing/errors.hpp"
#include "multiprocessing/futures.hpp"
#include "multiprocessing/managers.hpp"
#include "multiprocessing/pool.hpp"
#include "multiprocessing/process.hpp"
#include "multiprocessing/progress.hpp"
#include "multiprocessing/queues.hpp"
#include "multiprocessing/serialize.hpp"
#include "multiprocessing/shared_memory.hpp"
#include "multiprocessing/sharedctypes.hpp"
#include "multiprocessing/synchronize.hpp"
#include "multiprocessing/timeout.hpp"

// SPDX-License-Identifier: MIT
// Positive control for the compile-fail tests: the same setup with serializable types compiles,
// so a broken include path or flag cannot make the compile-fail tests pass.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <multiprocessing/serialize.hpp>

namespace mp = multiprocessing;

struct Holds {
  int id;
  std::string name;
};

void compile_fail() {
  (void)mp::dumps(Holds{1, "x"});
  (void)mp::loads<std::map<int, std::vector<std::string>>>({});
  static_assert(!mp::serializable<std::unique_ptr<int>>);
}

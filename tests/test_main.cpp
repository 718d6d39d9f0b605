// SPDX-License-Identifier: MIT
// The one main() of every test executable: spawned and forkserver children of a test run their
// work in freeze_support() and never reach Catch2.
#define CATCH_CONFIG_RUNNER
// Forked children inherit signal handlers; Catch2's would report a test child's SIGTERM as a failure.
#define CATCH_CONFIG_NO_POSIX_SIGNALS
#include <catch2/catch.hpp>
#include <multiprocessing/context.hpp>

int main(int argc, char* argv[]) {
  multiprocessing::freeze_support();
  return Catch::Session().run(argc, argv);
}

// SPDX-License-Identifier: MIT
// What every benchmark harness shares: its command line ([SCALE | --smoke]) and running its
// Python competitor, a script that prints "python <workload> <value>" lines.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <multiprocessing/context.hpp>

namespace bench {

/// The run's scale in hundredths: 100 by default, SCALE*100 for a whole SCALE >= 1, 1 for --smoke
/// (the ctest run). nullopt (after printing the usage) for anything else.
inline std::optional<std::int64_t> parse_scale(int argc, char* argv[]) {
  if (argc <= 1) return 100;
  const std::string_view arg(argv[1]);
  std::int64_t whole = 0;
  if (arg == "--smoke") return 1;
  if (std::from_chars(arg.data(), arg.data() + arg.size(), whole).ec == std::errc() && whole >= 1) {
    return whole * 100;
  }
  std::fprintf(stderr, "usage: %s [SCALE >= 1 | --smoke]\n", argv[0]);
  return std::nullopt;
}

/// The whole of a harness's main(): mp::freeze_support() (spawned children run their task there
/// and exit), the scale from the command line (exit status 2 and the usage on a bad one), then
/// `run(scale)`, whose result is the exit status; an exception is printed as "<name>: <what>"
/// (exit status 1).
template <class Run>
int harness_main(int argc, char* argv[], const char* name, Run&& run) {
  multiprocessing::freeze_support();
  const std::optional<std::int64_t> scale = parse_scale(argc, argv);
  if (!scale) return 2;
  try {
    return run(*scale);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

/// Runs `python script args...` and returns its "python <workload> <value>" lines; nullopt when it
/// could not run, failed, or did not report exactly `expected` workloads.
inline std::optional<std::map<std::string, double>> run_python(
    const std::string& python, const std::string& script, const std::vector<std::int64_t>& args,
    std::size_t expected) {
  std::string command = "'" + python + "' '" + script + "'";
  for (const auto a : args) command += " " + std::to_string(a);
  (void)std::fflush(nullptr);  // popen() forks: what is buffered must not be printed twice
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::map<std::string, double> values;
  std::array<char, 512> line{};
  while (std::fgets(line.data(), static_cast<int>(line.size()), pipe) != nullptr) {
    std::istringstream in(line.data());
    std::string who, workload;
    double value = 0;
    if (in >> who >> workload >> value && who == "python") values[workload] = value;
  }
  const int status = ::pclose(pipe);
  if (status != 0 || values.size() != expected) return std::nullopt;
  return values;
}

}  // namespace bench

// SPDX-License-Identifier: MIT
// multiprocessing/timeout.hpp
//
// Defines mp::Timeout, the type of every timeout parameter in the library (Python: the
// `timeout=None` keyword). It converts implicitly from any std::chrono::duration and from
// std::nullopt; a default-constructed Timeout (or nullopt) means "wait forever". Negative durations
// mean "do not wait", as in Python.
#pragma once

#include <chrono>
#include <optional>
#include <type_traits>

namespace multiprocessing {

class Timeout {
 public:
  /// Wait forever (Python: timeout=None).
  constexpr Timeout() noexcept = default;
  /// Wait forever (Python: timeout=None).
  constexpr Timeout(std::nullopt_t) noexcept {}  // NOLINT(google-explicit-constructor)
  /// Wait at most `d` (any representation: 500ms, 2s, duration<double>(0.5)). Negative waits 0;
  /// durations beyond a century are treated as forever instead of overflowing.
  template <class Rep, class Period>
  constexpr Timeout(std::chrono::duration<Rep, Period> d) noexcept {  // NOLINT
    using seconds = std::chrono::duration<double>;
    const double s = std::chrono::duration_cast<seconds>(d).count();
    if (!(s < 3.2e9)) return;  // NaN or more than a century: forever
    value_ = s <= 0.0 ? std::chrono::nanoseconds::zero()
                      : std::chrono::ceil<std::chrono::nanoseconds>(seconds(s));
  }
  /// Wait at most `d` when engaged, forever otherwise.
  template <class Rep, class Period>
  constexpr Timeout(std::optional<std::chrono::duration<Rep, Period>> d) noexcept  // NOLINT
      : Timeout(d ? Timeout(*d) : Timeout()) {}

  /// True when this waits forever.
  [[nodiscard]] constexpr bool forever() const noexcept { return !value_; }
  /// The bound, or nullopt for forever.
  [[nodiscard]] constexpr std::optional<std::chrono::nanoseconds> get() const noexcept {
    return value_;
  }

 private:
  std::optional<std::chrono::nanoseconds> value_;
};

}  // namespace multiprocessing

// SPDX-License-Identifier: MIT
// multiprocessing/progress.hpp
//
// Defines progress::Bar, a terminal progress bar for batches of Pool work (Python: tqdm, which the
// seed programs pair with Pool.apply_async's callback), and progress::format_meter, the pure
// function that renders its line.
//
//   mp::progress::Bar bar({.total = 100, .desc = "work"});   // Python: pbar = tqdm(total=100, desc="work")
//   mp::Pool pool(4);
//   for (int i = 0; i < 100; ++i) pool.apply_async(work, mp::args(i), bar.callback());
//   pool.close(); pool.join(); bar.close();
//   // work:  42%|████▏     | 42/100 [00:02<00:03, 19.80it/s]
//
//   for (auto&& x : pool.imap(work, xs)) { use(x); bar.update(); }   // Python: tqdm(pool.imap(...))
//
// On a terminal the line is redrawn in place (`\r`, the line, clear-to-end-of-line) at most every
// `mininterval`, as wide as the terminal. When the stream is not a terminal (a pipe, a file, a CI
// log) it gets a complete plain line at most every `interval_when_not_tty` (default 5 s) and a
// final line at close(): never `\r` or an escape code.
//
// The line is tqdm's, character for character (format_meter below), including its rate: an
// exponential moving average (smoothing 0.3) of the units per second between redraws.
//
// Differences from tqdm:
//   * Not a terminal: periodic plain lines instead of `\r`-separated redraws, which turn a log
//     into one unreadable line.
//   * update(n) with n < 0 is ValueError (tqdm silently counts backwards).
//   * No monitor thread: the line changes only inside update(), refresh(), write(),
//     set_description() and close(). A batch that stalls shows its last state until it moves.
//   * Widths count East Asian wide characters (CJK descriptions) as two columns, as tqdm does
//     with unicodedata; other combining or zero-width characters count as one.
//   * Not yet: unit_scale, bar_format, postfix, position (nested bars), colour.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "errors.hpp"

namespace multiprocessing::progress {

/// How format_meter draws a line (Python: the keyword arguments of tqdm.format_meter).
struct MeterOptions {
  /// The label before the bar, followed by ": " unless it ends with one (tqdm: prefix).
  std::string_view desc = {};
  /// What is counted: "it" shows "19.80it/s" (tqdm: unit).
  std::string_view unit = "it";
  /// Units per second; default n / elapsed. Zero, negative or not finite shows "?".
  std::optional<double> rate = std::nullopt;
  /// The width of the whole line in columns: the bar takes what the text leaves (at least one
  /// column) and the line is cut to fit; 0 draws no bar (the numbers only). Default: a bar of 10
  /// columns, the line as long as needed.
  std::optional<int> ncols = std::nullopt;
  /// Draw the bar with " 123456789#" instead of Unicode eighth blocks (tqdm: ascii=True).
  bool ascii = false;
};

/// Formats a duration as tqdm does: "MM:SS", or "H:MM:SS" from one hour; whole seconds,
/// truncated. Python: tqdm.format_interval. Negative or NaN shows "00:00".
[[nodiscard]] std::string format_interval(std::chrono::duration<double> t);

/// Renders one progress line (Python: tqdm.format_meter(n, total, elapsed, ...)):
///   with a total:    "desc:  42%|████▏     | 42/100 [00:02<00:03, 19.80it/s]"
///   without one:     "desc: 42it [00:02, 19.80it/s]"
/// Percentages are "{:3.0f}%", rates "{:5.2f}" (tqdm's padding included), and a rate below one
/// unit per second is shown inverted ("2.50s/it"). As in tqdm, a total of 0, or a count past the
/// total, is drawn as an unknown total. A pure function: tests and custom displays call it.
/// @param n units done. @param total units expected, nullopt when unknown. @param elapsed time
///   since the start. @param options label, unit, rate, width, character set.
/// @returns the line, without `\r` or newline.
/// @throws ValueError when n, total or ncols is negative.
[[nodiscard]] std::string format_meter(std::int64_t n, std::optional<std::int64_t> total,
                                       std::chrono::duration<double> elapsed,
                                       const MeterOptions& options = {});

/// The options of a Bar (Python: tqdm's keyword arguments, same names where tqdm has them).
struct BarOptions {
  /// Units expected; nullopt (unknown) shows the count and rate only. tqdm: total.
  std::optional<std::int64_t> total = std::nullopt;
  /// Label before the bar. tqdm: desc.
  std::string desc = {};
  /// What is counted. tqdm: unit.
  std::string unit = "it";
  /// Where the bar goes; not owned (not closed by the Bar). tqdm: file.
  std::FILE* file = stderr;
  /// On a terminal: the least time between two redraws. tqdm: mininterval.
  std::chrono::duration<double> mininterval{0.1};
  /// Not a terminal: the least time between two plain lines (the final one aside). Time, not a
  /// fraction of the total, so that a log grows at a bounded pace whatever the batch's length
  /// and a batch with no total still reports.
  std::chrono::duration<double> interval_when_not_tty{5.0};
  /// true or false forces terminal or plain-line output; nullopt asks isatty(fileno(file)).
  std::optional<bool> tty = std::nullopt;
  /// On a terminal, keep the final line (true) or erase it at close (false). A plain-line stream
  /// always gets its final line: a log cannot be erased. tqdm: leave.
  bool leave = true;
  /// Line width, 0 for no bar (the numbers only); nullopt: the terminal's (ioctl TIOCGWINSZ on
  /// the stream, read at every redraw so a resize is followed), else $COLUMNS, else 80.
  /// tqdm: ncols.
  std::optional<int> ncols = std::nullopt;
  /// ASCII bar characters, for terminals without UTF-8. tqdm: ascii.
  bool ascii = false;
  /// Weight of the latest interval in the rate's moving average: 0 shows the average rate since
  /// the start, 1 the rate of the last interval only. tqdm: smoothing.
  double smoothing = 0.3;
  /// Count, but draw nothing. tqdm: disable.
  bool disable = false;
  /// The time source; default std::chrono::steady_clock::now. For tests and replays; it is
  /// called from every thread that calls update().
  std::function<std::chrono::steady_clock::time_point()> clock = {};
};

/// A progress bar (Python: tqdm.tqdm used by hand, with total= and update()).
///
/// Thread safety: every member may be called from any thread at the same time, as the seeds
/// do: update() from the Pool's result-handler thread while the main thread calls close().
/// update() costs an atomic add and a clock read (vDSO, no system call) when no redraw is due;
/// when one is due it is done by the first thread to get there while the others move on (they
/// never wait for the drawing). The Bar must outlive the callbacks that hold it: declare it
/// before the Pool, or close and join the pool first.
/// Output: best effort; a failing write is ignored (progress never fails the work).
class Bar {
 public:
  /// Starts the clock; on a terminal, draws the first line (0%) at once, as tqdm does.
  /// Python: tqdm(total=..., desc=..., ...).
  /// @throws ValueError when total < 0, mininterval or interval_when_not_tty < 0, smoothing is
  ///   not within [0, 1], ncols < 0, or file is null.
  explicit Bar(BarOptions options = {});
  /// Bar({.total = total}). Python: tqdm(total=total).
  explicit Bar(std::int64_t total) : Bar(BarOptions{.total = total}) {}

  Bar(const Bar&) = delete;
  Bar& operator=(const Bar&) = delete;
  Bar(Bar&&) = delete;  // callbacks hold its address
  Bar& operator=(Bar&&) = delete;
  /// close(); errors are swallowed.
  ~Bar();

  /// Adds `n` units done and redraws when the throttle allows. Python: tqdm.update(n=1).
  /// After close() it still counts (n() stays exact) but draws nothing.
  /// @throws ValueError when n < 0.
  /// Memory ordering: relaxed; n() is exact once the updating threads are joined (for a Pool:
  ///   once join() returned, or the last AsyncResult's get()).
  void update(std::int64_t n = 1);

  /// A callable for Pool::apply_async's `callback` (and map_async's) that counts one unit per
  /// call, whatever the result type, void tasks included. Python: `def update(*a): pbar.update()`.
  ///   pool.apply_async(work, mp::args(i), bar.callback());
  [[nodiscard]] auto callback() noexcept {
    return [this](const auto&...) { update(); };
  }

  /// Units done so far. Python: tqdm.n.
  [[nodiscard]] std::int64_t n() const noexcept { return n_.load(std::memory_order_relaxed); }
  /// Units expected. Python: tqdm.total.
  [[nodiscard]] std::optional<std::int64_t> total() const noexcept { return total_; }
  /// Whether the output is drawn terminal-style (in place) rather than as plain lines.
  [[nodiscard]] bool tty() const noexcept { return tty_; }

  /// Changes the label. Python: tqdm.set_description(desc, refresh=True). On a terminal,
  /// `refresh` redraws at once; a plain-line stream shows it in its next line (a line per call
  /// would flood a log).
  void set_description(std::string desc, bool refresh = true);

  /// Draws the current state now, ignoring the throttle (on a plain-line stream: prints a line).
  /// Python: tqdm.refresh(). Nothing after close().
  void refresh();

  /// Prints `line` and a newline above the bar without breaking it (the bar is cleared, the line
  /// printed, the bar redrawn). Python: tqdm.write(s). After close(), just prints the line.
  void write(std::string_view line);

  /// Draws the final line, with a newline, and stops drawing; on a terminal with leave=false,
  /// erases the bar instead. As in tqdm, the final line shows the average rate since the start
  /// (the moving average describes the last moments only). Idempotent; the destructor calls it.
  /// Python: tqdm.close().
  void close();

 private:
  using clock = std::chrono::steady_clock;
  static constexpr clock::rep never = std::numeric_limits<clock::rep>::max();

  /// tqdm's EMA: an exponential moving average whose first values are not pulled toward 0.
  struct ema {
    double alpha = 0.3;
    double last = 0.0;
    int calls = 0;
    void add(double x) {
      last = alpha * x + (1.0 - alpha) * last;
      ++calls;
    }
    [[nodiscard]] double value() const {
      return calls == 0 ? 0.0 : last / (1.0 - std::pow(1.0 - alpha, calls));
    }
  };

  [[nodiscard]] clock::time_point now() const { return clock_ ? clock_() : clock::now(); }
  /// The stream's width: the terminal's, else $COLUMNS, else 80.
  [[nodiscard]] int screen_columns() const;
  /// Samples the rate and writes the line; `final` for close(). Requires mu_.
  void draw_locked(clock::time_point t, bool final);
  [[nodiscard]] std::string line_locked(clock::time_point t, int columns, bool final);
  void emit(const std::string& text) const;

  // Fixed at construction.
  std::optional<std::int64_t> total_;
  std::string unit_;
  std::FILE* file_;
  bool tty_;
  bool leave_;
  bool ascii_;
  bool disabled_;
  std::optional<int> ncols_;
  int fallback_columns_;  // $COLUMNS or 80
  double smoothing_;
  clock::duration interval_;  // mininterval on a terminal, interval_when_not_tty otherwise
  std::function<clock::time_point()> clock_;
  clock::time_point start_;

  std::atomic<std::int64_t> n_{0};
  std::atomic<clock::rep> next_draw_{never};  // no redraw from update() before this

  std::mutex mu_;  // guards what follows, and the drawing
  std::string desc_;
  bool closed_ = false;
  std::int64_t last_n_ = 0;  // at the last rate sample
  clock::time_point last_t_;
  ema ema_dn_;
  ema ema_dt_;
};

// ------------------------------------------------------------------------------------------------
// Implementation

namespace detail {

/// Display columns of code point `c`: 2 for East Asian wide and fullwidth ones, else 1.
[[nodiscard]] constexpr int char_columns(char32_t c) noexcept {
  constexpr std::pair<char32_t, char32_t> wide[] = {
      {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
      {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
      {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
      {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
  };
  for (const auto& [lo, hi] : wide) {
    if (c >= lo && c <= hi) return 2;
  }
  return 1;
}

/// Decodes the UTF-8 sequence at s[i] (lenient: a stray byte is one character) and advances i.
[[nodiscard]] inline char32_t next_code_point(std::string_view s, std::size_t& i) noexcept {
  const auto b = static_cast<unsigned char>(s[i++]);
  int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : 0;
  if (extra == 0) return b;
  auto c = static_cast<char32_t>(extra == 3 ? b & 0x07u : extra == 2 ? b & 0x0Fu : b & 0x1Fu);
  for (; extra > 0 && i < s.size(); --extra, ++i) {
    const auto cont = static_cast<unsigned char>(s[i]);
    if ((cont & 0xC0u) != 0x80u) break;
    c = (c << 6) | (cont & 0x3Fu);
  }
  return c;
}

/// Display columns of UTF-8 text (tqdm: disp_len).
[[nodiscard]] inline int display_width(std::string_view s) noexcept {
  int width = 0;
  for (std::size_t i = 0; i < s.size();) width += char_columns(next_code_point(s, i));
  return width;
}

/// The longest prefix of `s` that fits in `columns` (tqdm: disp_trim).
[[nodiscard]] inline std::string_view trim_to_width(std::string_view s, int columns) noexcept {
  int width = 0;
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t at = i;
    width += char_columns(next_code_point(s, i));
    if (width > columns) return s.substr(0, at);
  }
  return s;
}

/// "19.80it/s", "2.50s/it" below one unit per second, "?it/s" without a usable rate.
[[nodiscard]] inline std::string format_rate(double rate, std::string_view unit) {
  if (!(rate > 0.0) || !std::isfinite(rate)) return fmt::format("?{}/s", unit);
  const double inverse = 1.0 / rate;
  if (inverse > 1.0) return fmt::format("{:5.2f}s/{}", inverse, unit);
  return fmt::format("{:5.2f}{}/s", rate, unit);
}

/// The terminal's width, or 0 when `file` is not a terminal.
[[nodiscard]] inline int terminal_columns(std::FILE* file) noexcept {
  const int fd = ::fileno(file);
  winsize size{};
  if (fd >= 0 && ::ioctl(fd, TIOCGWINSZ, &size) == 0) return size.ws_col;
  return 0;
}

/// $COLUMNS when it is a positive number, else 80.
[[nodiscard]] inline int columns_from_environment() noexcept {
  const char* env = std::getenv("COLUMNS");  // NOLINT(concurrency-mt-unsafe): read once per Bar
  if (env == nullptr) return 80;
  const std::string_view text(env);
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size() && value > 0 ? value : 80;
}

}  // namespace detail

inline std::string format_interval(std::chrono::duration<double> t) {
  const double seconds = std::min(t.count(), 1e12);  // beyond 30 000 years: saturate, not overflow
  const auto whole = seconds > 0.0 ? static_cast<std::int64_t>(seconds) : std::int64_t{0};
  const std::int64_t h = whole / 3600;
  const std::int64_t m = whole / 60 % 60;
  const std::int64_t s = whole % 60;
  if (h != 0) return fmt::format("{:d}:{:02d}:{:02d}", h, m, s);
  return fmt::format("{:02d}:{:02d}", m, s);
}

inline std::string format_meter(std::int64_t n, std::optional<std::int64_t> total,
                                std::chrono::duration<double> elapsed, const MeterOptions& options) {
  if (n < 0) throw ValueError(fmt::format("format_meter: n must be >= 0, not {}", n));
  if (total && *total < 0) {
    throw ValueError(fmt::format("format_meter: total must be >= 0, not {}", *total));
  }
  if (options.ncols && *options.ncols < 0) {
    throw ValueError(fmt::format("format_meter: ncols must be >= 0, not {}", *options.ncols));
  }
  // tqdm: a total of 0, or a count past it, is unknown from here on (0 below).
  const std::int64_t whole = total && *total > 0 && n <= *total ? *total : 0;

  const double seconds = std::max(0.0, elapsed.count());
  const double rate = options.rate ? *options.rate
                      : seconds > 0.0 ? static_cast<double>(n) / seconds
                                      : 0.0;
  const bool rate_known = rate > 0.0 && std::isfinite(rate);
  const std::string elapsed_text = format_interval(elapsed);
  const std::string rate_text = detail::format_rate(rate, options.unit);
  const std::string prefix = options.desc.empty() || options.desc.ends_with(": ")
                                 ? std::string(options.desc)
                                 : fmt::format("{}: ", options.desc);

  std::string line;
  if (whole == 0) {
    line = fmt::format("{}{}{} [{}, {}]", prefix, n, options.unit, elapsed_text, rate_text);
  } else {
    const double fraction = static_cast<double>(n) / static_cast<double>(whole);
    const std::string remaining =
        rate_known
            ? format_interval(std::chrono::duration<double>(static_cast<double>(whole - n) / rate))
            : std::string("?");
    const std::string left = fmt::format("{}{:3.0f}%|", prefix, fraction * 100.0);
    const std::string right =
        fmt::format("| {}/{} [{}<{}, {}]", n, whole, elapsed_text, remaining, rate_text);
    if (options.ncols == 0) return left.substr(0, left.size() - 1) + right.substr(1);
    const int bars = options.ncols ? std::max(1, *options.ncols - detail::display_width(left) -
                                                     detail::display_width(right))
                                   : 10;

    // tqdm's Bar: whole cells of the last symbol, one partial cell, blanks.
    static constexpr std::string_view unicode[] = {" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"};
    static constexpr std::string_view ascii[] = {" ", "1", "2", "3", "4", "5",
                                                 "6", "7", "8", "9", "#"};
    const std::string_view* symbols = options.ascii ? ascii : unicode;
    const int steps = options.ascii ? 10 : 8;  // symbols beyond the blank
    const auto eighths = static_cast<int>(fraction * bars * steps);
    const int full = eighths / steps;
    std::string bar;
    for (int i = 0; i < full; ++i) bar += symbols[steps];
    if (full < bars) {
      bar += symbols[eighths % steps];
      bar.append(static_cast<std::size_t>(bars - full - 1), ' ');
    }
    line = left + bar + right;
  }
  if (options.ncols && *options.ncols > 0) {
    line = std::string(detail::trim_to_width(line, *options.ncols));
  }
  return line;
}

inline Bar::Bar(BarOptions options)
    : total_(options.total),
      unit_(std::move(options.unit)),
      file_(options.file),
      leave_(options.leave),
      ascii_(options.ascii),
      disabled_(options.disable),
      ncols_(options.ncols),
      fallback_columns_(detail::columns_from_environment()),
      smoothing_(options.smoothing),
      clock_(std::move(options.clock)),
      desc_(std::move(options.desc)),
      ema_dn_{options.smoothing},
      ema_dt_{options.smoothing} {
  if (total_ && *total_ < 0) {
    throw ValueError(fmt::format("progress.Bar: total must be >= 0, not {}", *total_));
  }
  if (options.mininterval.count() < 0 || options.interval_when_not_tty.count() < 0) {
    throw ValueError("progress.Bar: mininterval and interval_when_not_tty must be >= 0");
  }
  if (!(smoothing_ >= 0.0 && smoothing_ <= 1.0)) {
    throw ValueError(fmt::format("progress.Bar: smoothing must be within [0, 1], not {}", smoothing_));
  }
  if (ncols_ && *ncols_ < 0) {
    throw ValueError(fmt::format("progress.Bar: ncols must be >= 0, not {}", *ncols_));
  }
  if (file_ == nullptr) throw ValueError("progress.Bar: file is null");

  tty_ = options.tty.value_or(::isatty(::fileno(file_)) == 1);
  // Beyond a few years is "never" in practice; the cap keeps the arithmetic from overflowing.
  const double interval = std::min(
      (tty_ ? options.mininterval : options.interval_when_not_tty).count(), 1e8);
  interval_ = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(interval));
  start_ = now();
  last_t_ = start_;
  if (disabled_) return;
  std::lock_guard lock(mu_);
  if (tty_) {
    draw_locked(start_, false);
  } else {
    next_draw_.store((start_ + interval_).time_since_epoch().count(), std::memory_order_relaxed);
  }
}

inline Bar::~Bar() {
  try {
    close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
  }
}

inline void Bar::update(std::int64_t n) {
  if (n < 0) throw ValueError(fmt::format("progress.Bar.update(): n must be >= 0, not {}", n));
  n_.fetch_add(n, std::memory_order_relaxed);
  const clock::rep due = next_draw_.load(std::memory_order_relaxed);
  if (due == never) return;  // disabled or closed: not even a clock read
  const clock::time_point t = now();
  if (t.time_since_epoch().count() < due) return;
  std::unique_lock lock(mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // someone is drawing; this unit shows in a later line
  // Another thread may have drawn (or closed) since `due` was read.
  if (t.time_since_epoch().count() < next_draw_.load(std::memory_order_relaxed)) return;
  draw_locked(t, false);
}

inline void Bar::set_description(std::string desc, bool refresh) {
  std::lock_guard lock(mu_);
  desc_ = std::move(desc);
  if (refresh && tty_ && !closed_ && !disabled_) draw_locked(now(), false);
}

inline void Bar::refresh() {
  std::lock_guard lock(mu_);
  if (!closed_ && !disabled_) draw_locked(now(), false);
}

inline void Bar::write(std::string_view line) {
  std::lock_guard lock(mu_);
  const bool redraw = tty_ && !closed_ && !disabled_;
  emit(fmt::format("{}{}\n", redraw ? "\r\x1b[K" : "", line));
  if (redraw) draw_locked(now(), false);
}

inline void Bar::close() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  closed_ = true;
  next_draw_.store(never, std::memory_order_relaxed);
  if (!disabled_) draw_locked(now(), true);
}

inline int Bar::screen_columns() const {
  const int terminal = detail::terminal_columns(file_);
  return terminal > 0 ? terminal : fallback_columns_;
}

inline std::string Bar::line_locked(clock::time_point t, int columns, bool final) {
  const std::int64_t n = n_.load(std::memory_order_relaxed);
  const std::int64_t dn = n - last_n_;
  const std::chrono::duration<double> dt = t - last_t_;
  // As tqdm: a sample per redraw that saw progress; an idle stretch joins the next sample.
  if (smoothing_ > 0.0 && dn > 0 && dt.count() > 0.0) {
    ema_dn_.add(static_cast<double>(dn));
    ema_dt_.add(dt.count());
    last_n_ = n;
    last_t_ = t;
  }
  std::optional<double> rate;  // nullopt: format_meter's average n / elapsed
  if (!final && ema_dt_.value() > 0.0) rate = ema_dn_.value() / ema_dt_.value();
  return format_meter(n, total_, t - start_,
                      {.desc = desc_, .unit = unit_, .rate = rate, .ncols = columns, .ascii = ascii_});
}

inline void Bar::draw_locked(clock::time_point t, bool final) {
  if (!closed_) {
    next_draw_.store((t + interval_).time_since_epoch().count(), std::memory_order_relaxed);
  }
  const int screen = screen_columns();
  const int width = ncols_.value_or(screen);
  if (!tty_) {
    emit(line_locked(t, width, final) + "\n");
    return;
  }
  if (final && !leave_) {
    emit("\r\x1b[K");
    return;
  }
  const std::string line = line_locked(t, width, final);
  // Clear what a longer previous line left, except after a line filling the screen: there the
  // cursor waits in the last column and clearing would erase the last character.
  const bool clear = detail::display_width(line) < screen;
  emit(fmt::format("\r{}{}{}", line, clear ? "\x1b[K" : "", final ? "\n" : ""));
}

inline void Bar::emit(const std::string& text) const {
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fflush(file_);
}

}  // namespace multiprocessing::progress

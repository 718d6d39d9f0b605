// SPDX-License-Identifier: MIT
// Tests for multiprocessing/progress.hpp: format_meter's lines character for character (tqdm's
// format), the smoothed rate and ETA with an injected clock, plain lines on a file, in-place
// redraws and their throttle on a real pseudo-terminal, several threads updating one bar while
// another closes it ([thread], also run under TSan), and a Pool's apply_async callbacks and imap
// loop reaching the exact total. No sleeps: time is the injected clock's, or bounds on the real
// one; every blocking read has a finite timeout.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
namespace progress = multiprocessing::progress;
using namespace std::chrono_literals;
using seconds = std::chrono::duration<double>;
using clk = std::chrono::steady_clock;

namespace {

/// A clock that moves only when told to (thread-safe).
class fake_clock {
 public:
  void advance(std::chrono::nanoseconds d) { ns_.fetch_add(d.count()); }
  [[nodiscard]] std::function<clk::time_point()> source() {
    return [this] { return clk::time_point(std::chrono::nanoseconds(ns_.load())); };
  }

 private:
  std::atomic<std::int64_t> ns_{1'000'000'000'000};  // an arbitrary, non-zero start
};

/// A temporary file (not a terminal) and what was written to it.
class temp_file {
 public:
  temp_file() : file_(std::tmpfile()) { REQUIRE(file_ != nullptr); }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;
  ~temp_file() { std::fclose(file_); }
  [[nodiscard]] std::FILE* get() const { return file_; }
  [[nodiscard]] std::string text() const {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    char buffer[4096];
    for (std::size_t got; (got = std::fread(buffer, 1, sizeof buffer, file_)) > 0;) {
      out.append(buffer, got);
    }
    return out;
  }

 private:
  std::FILE* file_;
};

/// A pseudo-terminal `cols` wide in raw mode (no "\n" -> "\r\n"): the Bar writes to file(), a
/// thread collects what arrives on the master side until the slave is closed.
class pseudo_terminal {
 public:
  explicit pseudo_terminal(unsigned short cols) {
    master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(master_ >= 0);
    REQUIRE(::grantpt(master_) == 0);
    REQUIRE(::unlockpt(master_) == 0);
    char name[128];
    REQUIRE(::ptsname_r(master_, name, sizeof name) == 0);
    const int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    REQUIRE(slave >= 0);
    termios mode{};
    REQUIRE(::tcgetattr(slave, &mode) == 0);
    ::cfmakeraw(&mode);
    REQUIRE(::tcsetattr(slave, TCSANOW, &mode) == 0);
    winsize size{};
    size.ws_col = cols;
    size.ws_row = 24;
    REQUIRE(::ioctl(master_, TIOCSWINSZ, &size) == 0);
    file_ = ::fdopen(slave, "w");
    REQUIRE(file_ != nullptr);
    reader_ = std::thread([this] {
      char buffer[4096];
      for (;;) {
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, 10'000) != 1) return;  // 10 s without output: give up
        const ssize_t got = ::read(master_, buffer, sizeof buffer);
        if (got <= 0) return;  // EIO once the slave is closed and drained
        text_.append(buffer, static_cast<std::size_t>(got));
      }
    });
  }
  pseudo_terminal(const pseudo_terminal&) = delete;
  pseudo_terminal& operator=(const pseudo_terminal&) = delete;
  ~pseudo_terminal() {
    (void)finish();
    ::close(master_);
  }

  [[nodiscard]] std::FILE* file() const { return file_; }

  /// Closes the terminal's slave side and returns everything written to it.
  std::string finish() {
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
    if (reader_.joinable()) reader_.join();
    return text_;
  }

 private:
  int master_ = -1;
  std::FILE* file_ = nullptr;
  std::thread reader_;
  std::string text_;  // the reader's until joined
};

/// The lines drawn in place: what follows each '\r', without clear-to-eol or the final newline.
std::vector<std::string> redraws(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t at = text.find('\r'); at != std::string_view::npos;) {
    const std::size_t next = text.find('\r', at + 1);
    std::string segment(text.substr(at + 1, next == std::string_view::npos ? next : next - at - 1));
    if (segment.ends_with('\n')) segment.pop_back();
    if (segment.ends_with("\x1b[K")) segment.resize(segment.size() - 3);
    out.push_back(std::move(segment));
    at = next;
  }
  return out;
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    out.emplace_back(text.substr(at, end - at));
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return out;
}

int columns(std::string_view s) { return progress::detail::display_width(s); }

int square(int x) { return x * x; }
void nothing(int) {}

}  // namespace

// --- format_interval and format_meter: pure functions -------------------------------------------

TEST_CASE("progress: format_interval is MM:SS, or H:MM:SS from one hour", "[progress]") {
  CHECK(progress::format_interval(0s) == "00:00");
  CHECK(progress::format_interval(seconds(59.99)) == "00:59");  // truncated, as tqdm's int(t)
  CHECK(progress::format_interval(61s) == "01:01");
  CHECK(progress::format_interval(3599s) == "59:59");
  CHECK(progress::format_interval(1h) == "1:00:00");
  CHECK(progress::format_interval(10h + 1min + 2s) == "10:01:02");
  CHECK(progress::format_interval(-5s) == "00:00");
  CHECK(progress::format_interval(seconds(std::numeric_limits<double>::quiet_NaN())) == "00:00");
  CHECK(progress::format_interval(seconds(std::numeric_limits<double>::infinity())) ==
        "277777777:46:40");  // saturated, not overflowed
}

TEST_CASE("progress: format_meter draws tqdm's line: percentage, bar, counts, ETA, rate",
          "[progress]") {
  CHECK(progress::format_meter(42, 100, seconds(2.1), {.desc = "desc", .rate = 19.8}) ==
        "desc:  42%|████▏     | 42/100 [00:02<00:02, 19.80it/s]");
  CHECK(progress::format_meter(100, 100, 5s) == "100%|██████████| 100/100 [00:05<00:00, 20.00it/s]");
  // At the start: no rate, no ETA.
  CHECK(progress::format_meter(0, 100, 0s) == "  0%|          | 0/100 [00:00<?, ?it/s]");
  // Below one unit per second the rate is inverted; ETA = remaining / rate.
  CHECK(progress::format_meter(3, 10, seconds(7.5)) == " 30%|███       | 3/10 [00:07<00:17,  2.50s/it]");
  CHECK(progress::format_meter(1, 2, 1h + 1s, {.unit = "task"}) ==
        " 50%|█████     | 1/2 [1:00:01<1:00:01, 3601.00s/task]");
  CHECK(progress::format_meter(42, 100, seconds(2.1), {.rate = 19.8, .ascii = true}) ==
        " 42%|####2     | 42/100 [00:02<00:02, 19.80it/s]");
  // An explicit rate wins over n / elapsed; zero or infinite shows "?".
  CHECK(progress::format_meter(10, 100, 10s, {.rate = 0.0}) == " 10%|█         | 10/100 [00:10<?, ?it/s]");
  CHECK(progress::format_meter(10, 100, 0s) == " 10%|█         | 10/100 [00:00<?, ?it/s]");
  // A description that already ends in ": " is not given a second one.
  CHECK(progress::format_meter(1, std::nullopt, 1s, {.desc = "x: "}) == "x: 1it [00:01,  1.00it/s]");
}

TEST_CASE("progress: format_meter without a total shows the count and rate only", "[progress]") {
  CHECK(progress::format_meter(42, std::nullopt, 2s, {.desc = "desc"}) == "desc: 42it [00:02, 21.00it/s]");
  CHECK(progress::format_meter(7, std::nullopt, 0s, {.unit = "file"}) == "7file [00:00, ?file/s]");
  // As tqdm: a total of 0, or a count past the total, is drawn as an unknown total.
  CHECK(progress::format_meter(0, 0, 1s) == "0it [00:01, ?it/s]");
  CHECK(progress::format_meter(12, 10, 1s) == "12it [00:01, 12.00it/s]");
}

TEST_CASE("progress: format_meter fits ncols, counting wide characters as two columns",
          "[progress]") {
  const std::string right = "| 42/100 [00:02<00:02, 19.80it/s]";
  const std::string line =
      progress::format_meter(42, 100, seconds(2.1), {.desc = "desc", .rate = 19.8, .ncols = 60});
  CHECK(columns(line) == 60);
  CHECK_THAT(line, Catch::StartsWith("desc:  42%|██████▋") && Catch::EndsWith("         " + right));
  CHECK(columns(line) == static_cast<int>(11 + 16 + right.size()));  // the bar takes 16

  // CJK text is two columns a character (the line is 60 columns, not 60 code points).
  const std::string cjk =
      progress::format_meter(42, 100, seconds(2.1), {.desc = "进度", .rate = 19.8, .ncols = 60});
  CHECK(columns(cjk) == 60);
  CHECK_THAT(cjk, Catch::StartsWith("进度:  42%|") && Catch::EndsWith(right));
  CHECK(progress::detail::display_width("进度") == 4);

  // Narrower than the numbers: a bar of one column, and the line cut to fit.
  const std::string narrow =
      progress::format_meter(42, 100, seconds(2.1), {.desc = "desc", .rate = 19.8, .ncols = 20});
  CHECK(narrow == "desc:  42%|▍| 42/100");
  CHECK(columns(progress::format_meter(42, std::nullopt, 2s, {.desc = "进度进度进度", .ncols = 9})) <= 9);
  // ncols = 0: no bar at all (tqdm's ncols=0).
  CHECK(progress::format_meter(42, 100, seconds(2.1), {.desc = "desc", .rate = 19.8, .ncols = 0}) ==
        "desc:  42% 42/100 [00:02<00:02, 19.80it/s]");
}

TEST_CASE("progress: bad input is ValueError", "[progress]") {
  CHECK_THROWS_AS(progress::format_meter(-1, 10, 1s), mp::ValueError);
  CHECK_THROWS_AS(progress::format_meter(1, -10, 1s), mp::ValueError);
  CHECK_THROWS_AS(progress::format_meter(1, 10, 1s, {.ncols = -1}), mp::ValueError);

  temp_file out;
  CHECK_THROWS_AS(progress::Bar({.total = -1, .file = out.get()}), mp::ValueError);
  CHECK_THROWS_AS(progress::Bar({.file = nullptr}), mp::ValueError);
  CHECK_THROWS_AS(progress::Bar({.file = out.get(), .mininterval = -1s}), mp::ValueError);
  CHECK_THROWS_AS(progress::Bar({.file = out.get(), .interval_when_not_tty = -1s}), mp::ValueError);
  CHECK_THROWS_AS(progress::Bar({.file = out.get(), .ncols = -1}), mp::ValueError);
  CHECK_THROWS_AS(progress::Bar({.file = out.get(), .smoothing = 1.5}), mp::ValueError);
  CHECK_THROWS_WITH(progress::Bar({.total = -3, .file = out.get()}),
                    "progress.Bar: total must be >= 0, not -3");

  progress::Bar bar({.total = 10, .file = out.get()});
  CHECK_THROWS_WITH(bar.update(-1), "progress.Bar.update(): n must be >= 0, not -1");
  CHECK(bar.n() == 0);
  bar.update(0);
  CHECK(bar.n() == 0);
}

// --- Bar on a stream that is not a terminal -----------------------------------------------------

TEST_CASE("progress: not a terminal: a plain line every interval and a final line, no \\r",
          "[progress]") {
  temp_file out;
  fake_clock t;
  {
    progress::Bar bar({.total = 20, .desc = "plain", .file = out.get(), .ncols = 70, .clock = t.source()});
    CHECK_FALSE(bar.tty());
    CHECK(out.text().empty());  // nothing at the start (no tqdm 0% line in a log)
    for (int i = 0; i < 20; ++i) {
      t.advance(1s);
      bar.update();
    }
    CHECK(bar.n() == 20);
    CHECK(bar.total() == 20);
  }  // the destructor closes
  const std::string text = out.text();
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
  REQUIRE(text.ends_with('\n'));
  const auto got = lines(text.substr(0, text.size() - 1));
  // One line at 5, 10, 15, 20 s (default interval_when_not_tty: 5 s), then the final line.
  REQUIRE(got.size() == 5);
  const progress::MeterOptions style{.desc = "plain", .rate = 1.0, .ncols = 70};
  CHECK(got[0] == progress::format_meter(5, 20, 5s, style));
  CHECK(got[1] == progress::format_meter(10, 20, 10s, style));
  CHECK(got[3] == progress::format_meter(20, 20, 20s, style));
  // The final line: the average rate, the bar filling what the 70 columns leave (26).
  std::string full;
  for (int i = 0; i < 26; ++i) full += "█";
  CHECK(got[4] == "plain: 100%|" + full + "| 20/20 [00:20<00:00,  1.00it/s]");
  CHECK(columns(got[4]) == 70);
}

TEST_CASE("progress: not a terminal: unknown total, set_description, write, close twice",
          "[progress]") {
  temp_file out;
  fake_clock t;
  progress::Bar bar({.file = out.get(), .interval_when_not_tty = 10s, .clock = t.source()});
  t.advance(4s);
  bar.update(8);
  bar.set_description("renamed");  // shown by the next line, not a line of its own
  bar.write("a message");
  CHECK(out.text() == "a message\n");
  t.advance(6s);  // 10 s: a periodic line is due
  bar.update(2);
  bar.refresh();  // prints a line at once
  bar.close();
  bar.close();  // idempotent
  bar.update();  // counts, draws nothing
  CHECK(bar.n() == 11);
  CHECK(bar.total() == std::nullopt);
  // As tqdm, the periodic lines show the smoothed rate (here 10 units over 10 s), the final line
  // the average since the start.
  CHECK(out.text() ==
        "a message\n"
        "renamed: 10it [00:10,  1.00it/s]\n"
        "renamed: 10it [00:10,  1.00it/s]\n"
        "renamed: 10it [00:10,  1.00it/s]\n");
}

TEST_CASE("progress: the width falls back to $COLUMNS, then 80", "[progress]") {
  const char* saved = std::getenv("COLUMNS");
  const std::string restore = saved ? saved : "";
  auto width_of_final_line = [] {
    temp_file out;
    { progress::Bar bar({.total = 4, .file = out.get()}); }
    const std::string text = out.text();
    return columns(std::string_view(text).substr(0, text.size() - 1));
  };
  ::setenv("COLUMNS", "50", 1);
  CHECK(width_of_final_line() == 50);
  ::setenv("COLUMNS", "junk", 1);
  CHECK(width_of_final_line() == 80);
  ::unsetenv("COLUMNS");
  CHECK(width_of_final_line() == 80);
  if (saved) ::setenv("COLUMNS", restore.c_str(), 1);
}

TEST_CASE("progress: disable counts but writes nothing", "[progress]") {
  temp_file out;
  progress::Bar bar({.total = 3, .file = out.get(), .tty = true, .disable = true});
  bar.update(3);
  bar.refresh();
  bar.set_description("x");
  bar.close();
  CHECK(bar.n() == 3);
  CHECK(out.text().empty());
}

// --- Bar on a terminal -----------------------------------------------------------------------------

TEST_CASE("progress: terminal: the moving-average rate and ETA, redrawn in place", "[progress]") {
  temp_file out;
  fake_clock t;
  progress::Bar bar({.total = 100, .file = out.get(), .tty = true, .ncols = 60, .clock = t.source()});
  t.advance(1s);
  bar.update(10);  // first sample: 10 units in 1 s
  t.advance(1s);
  bar.update(30);  // second: 30 in 1 s; EMA(0.3), bias-corrected: 11.1/0.51 = 21.76/s
  t.advance(2s);
  bar.close();  // the final line: the average, 40 in 4 s
  const auto got = redraws(out.text());
  REQUIRE(got.size() == 4);
  CHECK(got[0] == progress::format_meter(0, 100, 0s, {.ncols = 60}));
  CHECK(got[1] == progress::format_meter(10, 100, 1s, {.rate = 10.0, .ncols = 60}));
  CHECK_THAT(got[2], Catch::EndsWith("| 40/100 [00:02<00:02, 21.76it/s]"));
  CHECK_THAT(got[3], Catch::EndsWith("| 40/100 [00:04<00:06, 10.00it/s]"));
  CHECK(out.text().ends_with("\n"));
}

TEST_CASE("progress: terminal: a pseudo-terminal sees \\r redraws, throttled, as wide as it is",
          "[progress][thread]") {
  pseudo_terminal term(60);
  fake_clock t;
  {
    progress::Bar bar({.total = 1000, .file = term.file(), .clock = t.source()});
    CHECK(bar.tty());  // found by isatty()
    for (int i = 0; i < 1000; ++i) {
      t.advance(1ms);
      bar.update();
    }
  }
  const std::string text = term.finish();
  const auto got = redraws(text);
  // The first line at once, then one per 0.1 s (mininterval) over 1 s, then the final line.
  CHECK(got.size() == 12);
  CHECK(std::count(text.begin(), text.end(), '\r') == 12);
  for (const auto& line : got) CHECK(columns(line) == 60);  // the terminal's width, via ioctl
  // Lines that fill the width are not followed by clear-to-eol (it would erase the last column).
  CHECK(text.find("\x1b[K") == std::string::npos);
  CHECK(got.back() == progress::format_meter(1000, 1000, 1s, {.ncols = 60}));
  CHECK(text.ends_with('\n'));
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
}

TEST_CASE("progress: terminal: many updates on the real clock cost few redraws",
          "[progress][thread]") {
  pseudo_terminal term(80);
  const auto t0 = clk::now();
  {
    progress::Bar bar({.total = 200'000, .file = term.file()});
    for (int i = 0; i < 200'000; ++i) bar.update();
  }
  const double took = seconds(clk::now() - t0).count();
  const std::string text = term.finish();
  const auto draws = std::count(text.begin(), text.end(), '\r');
  CHECK(draws >= 2);  // the first and the final line
  CHECK(draws <= 2 + static_cast<long>(took / 0.1) + 1);  // at most one per mininterval
  CHECK_THAT(redraws(text).back(), Catch::StartsWith("100%|") && Catch::Contains("| 200000/200000 ["));
}

TEST_CASE("progress: terminal: shorter lines clear to end of line; leave=false erases the bar",
          "[progress][thread]") {
  pseudo_terminal term(60);
  fake_clock t;
  {
    progress::Bar bar({.desc = "unknown", .file = term.file(), .leave = false, .clock = t.source()});
    t.advance(1s);
    bar.update(5);
    bar.write("hello");
    t.advance(1s);
    bar.update(5);
  }
  const std::string text = term.finish();
  CHECK(text ==
        "\runknown: 0it [00:00, ?it/s]\x1b[K"
        "\runknown: 5it [00:01,  5.00it/s]\x1b[K"
        "\r\x1b[Khello\n"
        "\runknown: 5it [00:01,  5.00it/s]\x1b[K"
        "\runknown: 10it [00:02,  5.00it/s]\x1b[K"
        "\r\x1b[K");
}

TEST_CASE("progress: terminal: set_description redraws at once", "[progress]") {
  temp_file out;
  fake_clock t;
  progress::Bar bar({.total = 4, .desc = "first", .file = out.get(), .tty = true, .ncols = 50,
                     .clock = t.source()});
  bar.update();  // throttled: no redraw
  bar.set_description("second");
  bar.set_description("third", /*refresh=*/false);
  const auto got = redraws(out.text());
  REQUIRE(got.size() == 2);
  CHECK_THAT(got[0], Catch::StartsWith("first:   0%|"));
  CHECK_THAT(got[1], Catch::StartsWith("second:  25%|"));
  bar.close();
  CHECK_THAT(redraws(out.text()).back(), Catch::StartsWith("third:  25%|"));
}

TEST_CASE("progress: tty=false forces plain lines on a terminal", "[progress][thread]") {
  pseudo_terminal term(60);
  fake_clock t;
  {
    progress::Bar bar({.total = 10, .file = term.file(), .tty = false, .clock = t.source()});
    CHECK_FALSE(bar.tty());
    for (int i = 0; i < 10; ++i) bar.update();
  }
  const std::string text = term.finish();
  CHECK(text == progress::format_meter(10, 10, 0s, {.ncols = 60}) + "\n");
}

// --- threads and pools ----------------------------------------------------------------------------

TEST_CASE("progress: threads update one bar while another closes it; the count is exact",
          "[progress][thread]") {
  temp_file out;
  constexpr int threads = 4;
  constexpr int per_thread = 10'000;
  progress::Bar bar({.total = threads * per_thread, .desc = "threads", .file = out.get(),
                     .mininterval = 0s, .tty = true});
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      for (int k = 0; k < per_thread; ++k) bar.update();
    });
  }
  std::thread fiddler([&] {
    while (!stop.load()) {
      bar.set_description("threads");
      bar.refresh();
      (void)bar.n();
    }
  });
  // Close in the middle of the updates (or after them, on a slow machine).
  const auto deadline = clk::now() + 30s;
  while (bar.n() < per_thread && clk::now() < deadline) std::this_thread::yield();
  bar.close();
  for (auto& w : workers) w.join();
  stop.store(true);
  fiddler.join();
  CHECK(bar.n() == threads * per_thread);
  const std::string text = out.text();
  // Nothing after the final line: one newline, at the very end.
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.ends_with('\n'));
  for (const auto& line : redraws(text)) CHECK_THAT(line, Catch::StartsWith("threads: "));
}

TEST_CASE("progress: callback() fits apply_async's callback for any result type", "[progress]") {
  temp_file out;
  progress::Bar bar({.file = out.get()});
  auto cb = bar.callback();
  static_assert(std::is_invocable_v<decltype(cb)&>);  // void tasks
  static_assert(std::is_invocable_v<decltype(cb)&, const int&>);
  static_assert(std::is_invocable_v<decltype(cb)&, const std::vector<std::string>&>);  // map_async
  cb();
  cb(1);
  cb(std::vector<std::string>{"a"});
  CHECK(bar.n() == 3);
}

TEST_CASE("progress: a Pool's apply_async callbacks and an imap loop reach the exact total",
          "[progress][pool][fork]") {
  temp_file out;
  {
    progress::Bar bar({.total = 60, .desc = "apply_async", .file = out.get()});
    mp::Pool pool(2);
    std::vector<mp::AsyncResult<int>> squares;
    std::vector<mp::AsyncResult<void>> voids;
    for (int i = 0; i < 50; ++i) squares.push_back(pool.apply_async(square, mp::args(i), bar.callback()));
    for (int i = 0; i < 10; ++i) voids.push_back(pool.apply_async(nothing, mp::args(i), bar.callback()));
    for (int i = 0; i < 50; ++i) CHECK(squares[static_cast<std::size_t>(i)].get(60s) == i * i);
    for (auto& v : voids) v.get(60s);
    // Callbacks run before get() returns.
    CHECK(bar.n() == 60);

    progress::Bar lazy({.total = 30, .desc = "imap", .file = out.get()});
    std::vector<int> inputs(30);
    for (int i = 0; i < 30; ++i) inputs[static_cast<std::size_t>(i)] = i;
    long sum = 0;
    for (int x : pool.imap(square, inputs)) {
      sum += x;
      lazy.update();
    }
    CHECK(lazy.n() == 30);
    CHECK(sum == 8555);
    pool.close();
    REQUIRE(pool.join(60s));
  }
  const std::string text = out.text();
  CHECK_THAT(text, Catch::Contains("apply_async: 100%|") && Catch::Contains("| 60/60 [") &&
                       Catch::Contains("imap: 100%|") && Catch::Contains("| 30/30 ["));
}

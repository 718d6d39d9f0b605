// SPDX-License-Identifier: MIT
// Tests for multiprocessing/connection.hpp: Pipe() and Connection across real processes under
// fork, spawn and forkserver (typed messages, bytes, poll, EOF, direction, 64 MiB both ways at
// once), descriptors passed inside messages, and connection::wait() with timing bounds.
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
using namespace std::chrono_literals;
using test_support::elapsed_since;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext
#define MP_FORK_SPAWN mp::ForkContext, mp::SpawnContext

namespace conn_test {

struct Record {
  std::string name;
  std::vector<std::map<std::string, int>> tables;
  std::optional<std::pair<int, double>> extra;
  bool operator==(const Record&) const = default;
};

Record sample() {
  return Record{"rec", {{{"a", 1}, {"b", 2}}, {}, {{"z", -3}}}, std::make_pair(7, 2.5)};
}

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return v;
}

void echo_record(mp::Connection c) {
  if (!c.poll(30s)) std::exit(3);
  auto r = c.recv<Record>();
  c.send(r);
  c.send(std::string("done"));
  std::exit(0);
}

void send_then_exit(mp::Connection c) {
  c.send_bytes("last words");
  std::exit(0);
}

void send_then_sleep(mp::Connection c) {
  c.send_bytes("hello");
  for (;;) ::pause();
}

void exchange_64mib(mp::Connection c) {
  constexpr std::size_t n = std::size_t{64} << 20;
  c.send_bytes(pattern(n, 1));
  if (!c.poll(60s)) std::exit(3);
  std::exit(c.recv_bytes() == pattern(n, 2) ? 0 : 4);
}

void wait_for_quit(mp::Connection c) {
  if (!c.poll(30s)) std::exit(3);
  std::exit(c.recv<int>() == 42 ? 0 : 4);
}

/// A type whose serializer refuses negative values, to fail in the middle of a message.
struct Unsavable {
  int x;
};

}  // namespace conn_test

template <>
struct multiprocessing::serializer<conn_test::Unsavable> {
  static constexpr std::string_view type_name = "conn_test::Unsavable";
  static void save(multiprocessing::Writer& w, const conn_test::Unsavable& u) {
    if (u.x < 0) throw multiprocessing::SerializationError("negative Unsavable");
    w.save(u.x);
  }
  static conn_test::Unsavable load(multiprocessing::Reader& r) { return {r.load<int>()}; }
};

using namespace conn_test;

TEMPLATE_TEST_CASE("Connection: typed messages round-trip through a child, wrong type is TypeError",
                   "[connection][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  auto [parent_end, child_end] = mp::Pipe();
  auto p = ctx.Process(echo_record, child_end);
  p.start();
  child_end.close();
  CHECK(child_end.closed());
  parent_end.send(sample());
  REQUIRE(parent_end.poll(30s));
  CHECK(parent_end.recv<Record>() == sample());
  REQUIRE(parent_end.poll(30s));
  CHECK_THROWS_AS(parent_end.recv<int>(), mp::TypeError);  // "done" was a std::string
  CHECK(p.join(30s));
  CHECK(p.exitcode() == 0);
  // Everything drained and the child gone: EOF.
  REQUIRE(parent_end.poll(10s));
  CHECK_THROWS_AS(parent_end.recv<std::string>(), mp::EOFError);
}

TEMPLATE_TEST_CASE("Connection: EOFError after the peer exits and its data is drained",
                   "[connection][fork][spawn]", MP_FORK_SPAWN) {
  TestType ctx;
  auto [r, w] = mp::Pipe(false);
  auto p = ctx.Process(send_then_exit, w);
  p.start();
  w.close();
  CHECK(p.join(30s));
  REQUIRE(r.poll(10s));
  CHECK(r.recv_bytes_string() == "last words");
  REQUIRE(r.poll(10s));  // EOF counts as ready
  CHECK_THROWS_AS(r.recv_bytes(), mp::EOFError);
}

TEMPLATE_TEST_CASE("Connection: EOFError after the peer process is SIGKILLed",
                   "[connection][fork][spawn]", MP_FORK_SPAWN) {
  TestType ctx;
  auto [a, b] = mp::Pipe();
  auto p = ctx.Process(send_then_sleep, b);
  p.start();
  b.close();
  REQUIRE(a.poll(30s));
  CHECK(a.recv_bytes_string() == "hello");
  CHECK_FALSE(a.poll());
  p.kill();
  CHECK(p.join(30s));
  CHECK(p.exitcode() == -SIGKILL);
  REQUIRE(a.poll(10s));
  CHECK_THROWS_AS(a.recv_bytes(), mp::EOFError);
  // Sending to a dead peer is an error, not a SIGPIPE.
  CHECK_THROWS_AS(a.send_bytes("anyone?"), mp::OSError);
}

TEMPLATE_TEST_CASE("Connection: 64 MiB messages both ways at once do not deadlock",
                   "[connection][fork][spawn]", MP_FORK_SPAWN) {
  TestType ctx;
  constexpr std::size_t n = std::size_t{64} << 20;
  auto [a, b] = mp::Pipe();
  auto p = ctx.Process(exchange_64mib, b);
  p.start();
  b.close();
  const auto t0 = std::chrono::steady_clock::now();
  a.send_bytes(pattern(n, 2));
  REQUIRE(a.poll(60s));
  CHECK(a.recv_bytes() == pattern(n, 1));
  CHECK(p.join(60s));
  CHECK(p.exitcode() == 0);
  CHECK(elapsed_since(t0) < 60s);
}

TEST_CASE("Connection: send_bytes offset and size, and their range errors", "[connection]") {
  auto [a, b] = mp::Pipe();
  a.send_bytes("hello world", 6);
  a.send_bytes(std::string("hello world"), 0, 5);
  a.send_bytes("hello world", 11);  // an empty tail is a zero-length message
  CHECK(b.recv_bytes_string() == "world");
  CHECK(b.recv_bytes_string() == "hello");
  CHECK(b.recv_bytes().empty());
  CHECK_THROWS_AS(a.send_bytes("abc", 4), mp::ValueError);
  CHECK_THROWS_WITH(a.send_bytes("abc", 4), Catch::Contains("buffer length < offset"));
  CHECK_THROWS_AS(a.send_bytes("abc", 1, 3), mp::ValueError);
  CHECK_THROWS_WITH(a.send_bytes("abc", 1, 3), Catch::Contains("buffer length < offset + size"));
  CHECK_FALSE(b.poll());  // nothing was sent by the failing calls
}

TEST_CASE("Connection: recv_bytes beyond maxlength is OSError and the connection is closed",
          "[connection]") {
  auto [a, b] = mp::Pipe();
  a.send_bytes("0123456789");
  a.send_bytes("x");
  try {
    (void)b.recv_bytes(9);
    FAIL("no OSError");
  } catch (const mp::OSError& e) {
    CHECK_THAT(e.what(), Catch::Contains("bad message length"));
  }
  CHECK(b.closed());
  CHECK_THROWS_WITH(b.recv_bytes(), Catch::Contains("handle is closed"));
  CHECK_THROWS_AS(b.fileno(), mp::OSError);
  auto [c, d] = mp::Pipe();
  c.send_bytes("0123456789");
  CHECK(d.recv_bytes(10).size() == 10);  // exactly maxlength is fine
}

TEST_CASE("Connection: recv_bytes_into, offset, and BufferTooShort carrying the whole message",
          "[connection]") {
  auto [a, b] = mp::Pipe();
  a.send_bytes("abcdef");
  a.send_bytes("0123456789");
  a.send_bytes("next");
  std::vector<std::byte> buf(12, std::byte{'.'});
  CHECK(b.recv_bytes_into(buf, 2) == 6);
  CHECK(std::string(reinterpret_cast<const char*>(buf.data()), buf.size()) == "..abcdef....");
  try {
    (void)b.recv_bytes_into(buf, 4);
    FAIL("no BufferTooShort");
  } catch (const mp::BufferTooShort& e) {
    CHECK(e.message() == "0123456789");
  }
  CHECK_THROWS_AS(b.recv_bytes_into(buf, 13), mp::ValueError);
  CHECK(b.recv_bytes_string() == "next");  // the stream stays in step
}

TEST_CASE("Connection: poll never consumes, zero-length messages are kept", "[connection]") {
  auto [a, b] = mp::Pipe();
  CHECK_FALSE(b.poll());
  a.send_bytes("");
  CHECK(b.poll());
  CHECK(b.poll());
  CHECK(b.poll(1s));
  CHECK(b.recv_bytes().empty());
  CHECK_FALSE(b.poll());
  a.send(std::vector<int>{1, 2, 3});
  CHECK(b.poll(1s));
  CHECK(b.recv<std::vector<int>>() == std::vector<int>{1, 2, 3});
}

TEST_CASE("Connection: poll(timeout) with nothing waits the timeout, then false", "[connection]") {
  auto [a, b] = mp::Pipe();
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(b.poll(200ms));
  const auto took = elapsed_since(t0);
  CHECK(took >= 200ms);
  CHECK(took < 2s);
}

TEST_CASE("Connection: EOFError when the local peer closes, after data is drained",
          "[connection]") {
  auto [a, b] = mp::Pipe();
  auto a_copy = a;  // a handle: close() closes it for every copy
  a.send_bytes("one");
  a.send(2);
  a_copy.close();
  CHECK(a.closed());
  CHECK(b.recv_bytes_string() == "one");
  CHECK(b.recv<int>() == 2);
  CHECK(b.poll());
  CHECK_THROWS_AS(b.recv<int>(), mp::EOFError);
  CHECK_THROWS_AS(a.send(1), mp::OSError);
}

TEST_CASE("Connection: simplex pipes have a direction", "[connection]") {
  auto [r, w] = mp::Pipe(false);
  CHECK(r.readable());
  CHECK_FALSE(r.writable());
  CHECK(w.writable());
  CHECK_FALSE(w.readable());
  CHECK_THROWS_WITH(r.send(1), Catch::Contains("read-only"));
  CHECK_THROWS_AS(r.send_bytes("x"), mp::OSError);
  CHECK_THROWS_WITH(w.recv<int>(), Catch::Contains("write-only"));
  CHECK_THROWS_AS(w.poll(), mp::OSError);
  w.send(std::string("down the pipe"));
  CHECK(r.recv<std::string>() == "down the pipe");
  auto [x, y] = mp::Pipe();
  CHECK_THROWS_AS(w.send(x), mp::ValueError);  // a pipe cannot pass descriptors
  CHECK_FALSE(r.poll());
  CHECK(x.fileno() >= 0);
  CHECK(x.fileno() != y.fileno());
}

TEST_CASE("Connection: a connection travels inside a message over a duplex connection",
          "[connection]") {
  auto [a, b] = mp::Pipe();
  auto [x, y] = mp::Pipe();
  a.send(x);
  x.close();  // the message carries its own descriptor
  auto x2 = b.recv<mp::Connection>();
  CHECK(x2.readable());
  CHECK(x2.writable());
  x2.send_bytes("through a passed descriptor");
  CHECK(y.recv_bytes_string() == "through a passed descriptor");
  x2.close();
  CHECK_THROWS_AS(y.recv_bytes(), mp::EOFError);
}

TEST_CASE("Connection: a value that fails to serialize sends nothing", "[connection]") {
  auto [a, b] = mp::Pipe();
  const std::vector<conn_test::Unsavable> values{{1}, {-1}};  // the second one refuses
  CHECK_THROWS_AS(a.send(values), mp::SerializationError);
  CHECK_FALSE(b.poll());
  a.send(5);
  CHECK(b.recv<int>() == 5);
}

TEST_CASE("Connection: closed handles and default connections", "[connection]") {
  mp::Connection c;
  CHECK(c.closed());
  CHECK_THROWS_WITH(c.fileno(), Catch::Contains("handle is closed"));
  CHECK_THROWS_AS(c.send(1), mp::OSError);
  CHECK_THROWS_AS(c.poll(), mp::OSError);
  c.close();  // idempotent
}

TEMPLATE_TEST_CASE("connection::wait: connections and a process sentinel, timing bounded",
                   "[connection][fork][spawn]", MP_FORK_SPAWN) {
  TestType ctx;
  auto [a, b] = mp::Pipe();
  auto [c, d] = mp::Pipe();
  auto p = ctx.Process(wait_for_quit, d);
  p.start();
  d.close();

  auto t0 = std::chrono::steady_clock::now();
  auto ready = mp::connection::wait({&a, &b, &p}, 200ms);
  auto took = elapsed_since(t0);
  CHECK(ready.empty());
  CHECK(took >= 200ms);
  CHECK(took < 2s);

  a.send_bytes("ping");
  ready = mp::connection::wait({&a, &b, &p}, 10s);
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].connection() == &b);

  c.send(42);  // the child quits; its sentinel becomes ready
  t0 = std::chrono::steady_clock::now();
  ready = mp::connection::wait({p.sentinel()}, 30s);
  CHECK(elapsed_since(t0) < 30s);
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].fd() == p.sentinel());
  ready = mp::connection::wait({&a, &b, &p}, 10s);
  CHECK(ready.size() == 2);  // b (still unread) and the process
  CHECK(p.join(10s));
  CHECK(p.exitcode() == 0);
  CHECK(b.recv_bytes_string() == "ping");
  // A message buffered inside the connection counts as ready though its fd may not be.
  std::vector<mp::connection::wait_object> objects{&a, &b};
  CHECK(mp::connection::wait(objects, 0s).empty());
}

TEST_CASE("Connection: input read while a large send waited is buffered and counts as ready",
          "[connection][thread]") {
  auto [a, b] = mp::Pipe();
  b.send_bytes("early");  // waits in a's socket buffer
  std::vector<std::byte> got;
  std::thread reader([&b = b, &got] { got = b.recv_bytes(); });
  const auto big = pattern(std::size_t{16} << 20, 3);
  a.send_bytes(big);  // fills the socket, so it reads "early" into a's own buffer meanwhile
  reader.join();
  CHECK(got == big);
  std::vector<mp::connection::wait_object> objects{&a};
  const auto ready = mp::connection::wait(objects, 0s);
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].connection() == &a);
  CHECK(a.poll());
  CHECK(a.recv_bytes_string() == "early");
  CHECK_FALSE(a.poll());
}

TEST_CASE("Connection: writing to a pipe whose reader is closed is OSError, not SIGPIPE",
          "[connection]") {
  auto [r, w] = mp::Pipe(false);
  r.close();
  CHECK_THROWS_AS(w.send_bytes("nobody reads"), mp::OSError);
  CHECK_THROWS_AS(w.send(1), mp::OSError);
}

TEST_CASE("Connection: a corrupt message is SerializationError, the stream stays in step",
          "[connection]") {
  auto [a, b] = mp::Pipe();
  const auto bytes = mp::dumps(sample());
  a.send_bytes(std::span<const std::byte>(bytes), 0, bytes.size() - 1);  // truncated
  a.send_bytes(std::span<const std::byte>(bytes));
  CHECK_THROWS_AS(b.recv<Record>(), mp::SerializationError);
  CHECK(b.recv<Record>() == sample());  // send_bytes(dumps(x)) is send(x)
}

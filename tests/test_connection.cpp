// SPDX-License-Identifier: MIT
// Tests for multiprocessing/connection.hpp: Pipe() and Connection across real processes under
// fork, spawn and forkserver (typed messages, bytes, poll, EOF, direction, 64 MiB both ways at
// once), descriptors passed inside messages, and connection::wait() with timing bounds.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
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

// ---------------------------------------------------------------------------------------------
// connection::Listener and connection::Client

namespace conn_test {

using Key = std::optional<std::vector<unsigned char>>;

Key key_a() { return std::vector<unsigned char>{'s', 'e', 'c', 'r', 'e', 't', '-', 'a'}; }
Key key_b() { return std::vector<unsigned char>{'s', 'e', 'c', 'r', 'e', 't', '-', 'b'}; }

mp::connection::Address make_address(bool tcp, const std::string& path_or_host, int port) {
  if (tcp) return {path_or_host, static_cast<std::uint16_t>(port)};
  return {path_or_host};
}

/// Child: connects, echoes one Record, then sends "done". Exit codes say what went wrong.
void client_echo(bool tcp, std::string where, int port, Key key) {
  try {
    auto c = mp::connection::Client(make_address(tcp, where, port), key, 30s);
    if (!c.poll(30s)) std::exit(3);
    c.send(c.recv<Record>());
    c.send(std::string("done"));
    std::exit(0);
  } catch (const mp::AuthenticationError&) {
    std::exit(7);
  } catch (const mp::TimeoutError&) {
    std::exit(8);
  } catch (...) {
    std::exit(9);
  }
}

/// A raw socket connected to `address` (no handshake), for misbehaving peers.
mp::detail::unique_fd raw_connect(const mp::connection::Address& address) {
  const auto where = mp::detail::resolve(address, "test raw_connect");
  mp::detail::unique_fd fd(::socket(where.family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&where.storage), where.length) ==
          0);
  return fd;
}

}  // namespace conn_test

TEMPLATE_TEST_CASE(
    "Listener/Client: a child's Client exchanges typed messages, with and without "
    "an authkey, over AF_UNIX and TCP loopback",
    "[connection][listener][fork][spawn]", MP_FORK_SPAWN) {
  const bool tcp = GENERATE(false, true);
  const bool with_key = GENERATE(false, true);
  CAPTURE(tcp, with_key);
  test_support::temp_dir dir;
  const Key key = with_key ? key_a() : Key{};
  mp::connection::Listener l(
      tcp ? make_address(true, "127.0.0.1", 0) : make_address(false, dir.path() + "/mp.sock", 0),
      key);
  if (tcp) {
    CHECK(l.address().host() == "127.0.0.1");
    CHECK(l.address().port() != 0);
  }
  TestType ctx;
  auto p = ctx.Process(client_echo, tcp, tcp ? l.address().host() : l.address().path(),
                       tcp ? int{l.address().port()} : 0, key);
  p.start();
  auto c = l.accept(30s);
  REQUIRE(l.last_accepted().has_value());
  CHECK(l.last_accepted()->is_tcp() == tcp);
  if (tcp) CHECK(l.last_accepted()->host() == "127.0.0.1");
  c.send(sample());
  REQUIRE(c.poll(30s));
  CHECK(c.recv<Record>() == sample());
  REQUIRE(c.poll(30s));
  CHECK(c.recv<std::string>() == "done");
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  l.close();
  CHECK(l.closed());
  if (!tcp) CHECK_FALSE(std::filesystem::exists(dir.path() + "/mp.sock"));  // unlinked on close
}

TEMPLATE_TEST_CASE("Listener/Client: a wrong authkey is AuthenticationError on both sides",
                   "[connection][listener][fork][spawn]", MP_FORK_SPAWN) {
  const bool tcp = GENERATE(false, true);
  CAPTURE(tcp);
  test_support::temp_dir dir;
  mp::connection::Listener l(
      tcp ? make_address(true, "127.0.0.1", 0) : make_address(false, dir.path() + "/mp.sock", 0),
      key_a(), 1, 10s);
  TestType ctx;
  auto p = ctx.Process(client_echo, tcp, tcp ? l.address().host() : l.address().path(),
                       tcp ? int{l.address().port()} : 0, key_b());
  p.start();
  CHECK_THROWS_AS(l.accept(30s), mp::AuthenticationError);
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 7);  // the child's Client threw AuthenticationError too
}

TEST_CASE("Listener/Client: an authkey on one side only is a clear error, without a hang",
          "[connection][listener]") {
  test_support::temp_dir dir;
  SECTION("the listener has a key, the client has none") {
    mp::connection::Listener l(dir.path() + "/k.sock", key_a(), 1, 5s);
    std::exception_ptr client_error;
    std::thread client([&] {
      try {
        auto c = mp::connection::Client(l.address(), std::nullopt, 10s);
        c.send(42);                            // not a digest: the listener rejects it
        if (c.poll(10s)) (void)c.recv<int>();  // the challenge is a bytes message: TypeError
      } catch (...) {
        client_error = std::current_exception();
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(l.accept(10s), mp::AuthenticationError);
    CHECK(elapsed_since(t0) < 5s);
    client.join();
    CHECK_THROWS_AS(std::rethrow_exception(client_error), mp::TypeError);
  }
  SECTION("the client has a key, the listener has none") {
    mp::connection::Listener l({"127.0.0.1", 0});
    std::exception_ptr client_error;
    std::thread client([&] {
      try {
        (void)mp::connection::Client(l.address(), key_a(), 1s);  // no challenge ever comes
      } catch (...) {
        client_error = std::current_exception();
      }
    });
    auto c = l.accept(10s);  // no authentication on this side
    REQUIRE(c.poll(10s));    // the client gave up and closed
    CHECK_THROWS_AS(c.recv<int>(), mp::EOFError);
    client.join();
    CHECK_THROWS_AS(std::rethrow_exception(client_error), mp::TimeoutError);
  }
}

TEST_CASE(
    "Listener: a peer sending garbage, a huge length or nothing fails accept() within the "
    "handshake timeout, and the next client is served",
    "[connection][listener]") {
  const bool tcp = GENERATE(false, true);
  const int kind = GENERATE(0, 1, 2);  // garbage, huge length, silence
  CAPTURE(tcp, kind);
  test_support::temp_dir dir;
  mp::connection::Listener l(
      tcp ? make_address(true, "127.0.0.1", 0) : make_address(false, dir.path() + "/g.sock", 0),
      key_a(), 1, 1s);
  auto bad = raw_connect(l.address());
  if (kind == 0) {
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    mp::detail::write_all(bad.get(), junk.data(), junk.size(), "junk");
  } else if (kind == 1) {
    unsigned char header[12] = {0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0};  // 2 GiB
    mp::detail::write_all(bad.get(), header, sizeof header, "huge header");
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)l.accept(10s);
    FAIL("accept() authenticated a misbehaving peer");
  } catch (const mp::AuthenticationError& e) {
    const std::string what = e.what();
    CAPTURE(what);
    CHECK(what.find(kind == 2   ? "timeout"
                    : kind == 1 ? "bad message length"
                                : "handshake") != std::string::npos);
  }
  const auto took = elapsed_since(t0);
  if (kind == 2) CHECK(took >= 1s);
  CHECK(took < 3s);
  bad.reset();

  std::exception_ptr client_error;
  std::thread client([&] {
    try {
      auto c = mp::connection::Client(l.address(), key_a(), 10s);
      c.send(std::string("well-behaved"));
    } catch (...) {
      client_error = std::current_exception();
    }
  });
  auto c = l.accept(10s);
  REQUIRE(c.poll(10s));
  CHECK(c.recv<std::string>() == "well-behaved");
  client.join();
  CHECK_FALSE(client_error);
}

TEST_CASE("Listener: accept(timeout) with no peer waits the timeout, then TimeoutError",
          "[connection][listener]") {
  test_support::temp_dir dir;
  const bool tcp = GENERATE(false, true);
  CAPTURE(tcp);
  mp::connection::Listener l(tcp ? make_address(true, "127.0.0.1", 0)
                                 : make_address(false, dir.path() + "/t.sock", 0));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(l.accept(300ms), mp::TimeoutError);
  const auto took = elapsed_since(t0);
  CHECK(took >= 300ms);
  CHECK(took < 300ms + 2s);
}

TEST_CASE("Client: the timeout bounds connect and handshake together", "[connection][listener]") {
  mp::connection::Listener l({"127.0.0.1", 0}, key_a());  // never accepts: no challenge comes
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(mp::connection::Client(l.address(), key_a(), 300ms), mp::TimeoutError);
  const auto took = elapsed_since(t0);
  CHECK(took >= 300ms);
  CHECK(took < 300ms + 2s);
}

TEST_CASE("Listener: AF_UNIX paths, errors and close", "[connection][listener]") {
  test_support::temp_dir dir;
  const std::string path = dir.path() + "/u.sock";
  mp::connection::Listener l(path);
  CHECK(l.address().path() == path);
  CHECK(std::filesystem::exists(path));
  CHECK_THROWS_AS(mp::connection::Listener(path), mp::OSError);  // the path is taken
  CHECK(std::filesystem::exists(path));  // a failed Listener does not unlink what it did not bind
  CHECK_THROWS_AS(mp::connection::Client(dir.path() + "/missing.sock", std::nullopt, 5s),
                  mp::OSError);
  CHECK_THROWS_AS(mp::connection::Listener(std::string(200, 'x')), mp::OSError);
  l.close();
  l.close();  // idempotent
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK_THROWS_AS(l.accept(1s), mp::OSError);
  CHECK_THROWS_AS(mp::connection::Client(path, std::nullopt, 5s), mp::OSError);
}

TEST_CASE("Listener: Linux abstract names, with a peer in another process",
          "[connection][listener]") {
  const std::string name = std::string(1, '\0') + "mp-test-abstract-" + std::to_string(::getpid());
  mp::connection::Listener l(name, std::vector<unsigned char>{'k'});
  CHECK(l.address().path() == name);
  CHECK(l.address().to_string() == "'@" + name.substr(1) + "'");
  CHECK_THROWS_AS(mp::connection::Listener(name), mp::OSError);  // the name is taken
  mp::Process p([name] {
    auto c = mp::connection::Client(name, std::vector<unsigned char>{'k'}, 10s);
    c.send(std::string("from the abstract namespace"));
  });
  p.start();
  auto c = l.accept(30s);
  REQUIRE(c.poll(30s));
  CHECK(c.recv<std::string>() == "from the abstract namespace");
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK_THROWS_AS(mp::connection::Listener(std::string(1, '\0')), mp::OSError);  // empty name
  l.close();
  CHECK_THROWS_AS(mp::connection::Client(name, std::nullopt, 5s), mp::OSError);
}

TEST_CASE("Address::parse: host:port for TCP, anything else a path", "[connection]") {
  using mp::connection::Address;
  CHECK(Address::parse("127.0.0.1:50000") == Address("127.0.0.1", 50000));
  CHECK(Address::parse("localhost:0") == Address("localhost", 0));
  CHECK(Address::parse("/tmp/d:1/mgr.sock") == Address("/tmp/d:1/mgr.sock"));
  CHECK(Address::parse("mgr.sock") == Address("mgr.sock"));
  CHECK_THROWS_AS(Address::parse("host:http"), mp::ValueError);
  CHECK_THROWS_AS(Address::parse("host:70000"), mp::ValueError);
  CHECK_THROWS_WITH(Address::parse("host:"), "Address::parse: '' in 'host:' is not a port number");
}

TEST_CASE("dummy::Pipe: the same connections between threads", "[connection][thread]") {
  auto [a, b] = mp::dummy::Pipe();
  std::thread t([c = b]() mutable { c.send(c.recv<int>() + 1); });
  a.send(41);
  CHECK(a.poll(10s));
  CHECK(a.recv<int>() == 42);
  t.join();
}

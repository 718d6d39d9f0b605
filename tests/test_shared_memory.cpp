// SPDX-License-Identifier: MIT
// Tests for multiprocessing/shared_memory.hpp: SharedMemory create/attach/close/unlink and its
// errors, `track`, mode 0600, handles crossing fork/spawn/forkserver, nothing left in /dev/shm
// (also after a SIGKILLed child), and ShareableList round trips, slot limits, attach by name and
// construction failures that leak nothing.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing.hpp>

#include "test_support.hpp"

namespace mp = multiprocessing;
using test_support::PipeEnd;
namespace shm = multiprocessing::shared_memory;
using namespace std::chrono_literals;

#define MP_ALL_CONTEXTS mp::ForkContext, mp::SpawnContext, mp::ForkServerContext

namespace {

/// A name no other test (or concurrent test process) uses.
std::string unique_name(const char* what) {
  static int counter = 0;
  return std::string("mptest_") + what + "_" + std::to_string(::getpid()) + "_" +
         std::to_string(++counter);
}

bool all_bytes(std::span<const std::byte> bytes, std::byte value) {
  return std::all_of(bytes.begin(), bytes.end(), [value](std::byte b) { return b == value; });
}

bool in_dev_shm(const std::string& name) {
  return std::filesystem::exists(std::filesystem::path("/dev/shm") / name);
}

std::set<std::string> dev_shm_entries() {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator("/dev/shm")) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

/// Entries of /dev/shm that appeared since `before` and that this test process named.
std::set<std::string> ours_added_since(const std::set<std::string>& before,
                                       const std::set<std::string>& ours) {
  std::set<std::string> added;
  for (const auto& name : dev_shm_entries()) {
    if (before.count(name) == 0 && ours.count(name) != 0) added.insert(name);
  }
  return added;
}

/// Entries of /dev/shm named by this test process (unique_name embeds our pid).
std::set<std::string> dev_shm_entries_of_this_process() {
  const std::string tag = "_" + std::to_string(::getpid()) + "_";
  std::set<std::string> names;
  for (const auto& name : dev_shm_entries()) {
    if (name.find(tag) != std::string::npos) names.insert(name);
  }
  return names;
}

std::size_t count_open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++n;
  return n;
}

std::size_t count_mappings_of(const std::string& name) {
  std::ifstream maps("/proc/self/maps");
  std::size_t n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/dev/shm/" + name) != std::string::npos) ++n;
  }
  return n;
}


// -- child targets (plain functions: they cross spawn and forkserver) --

void fill_through_handle(shm::SharedMemory block, std::uint8_t value) {
  auto buf = block.buf();
  for (auto& b : buf) b = static_cast<std::byte>(value);
  if (block.size() != 64) ::_exit(3);
}

void fill_through_name(std::string name, std::uint8_t value) {
  shm::SharedMemory block(name);
  auto buf = block.buf();
  for (auto& b : buf) b = static_cast<std::byte>(value);
  block.close();
}

void attach_then_hang(std::string name, PipeEnd ready) {
  shm::SharedMemory block(name);
  block.buf()[0] = std::byte{7};
  const char ok = 'r';
  if (::write(ready.fd, &ok, 1) != 1) ::_exit(4);
  for (;;) ::pause();
}

void check_and_change_list(std::string name) {
  shm::ShareableList<std::string> list(name);
  if (list.size() != 3) ::_exit(10);
  if (list[0] != std::string("howdy", 5)) ::_exit(11);
  if (list.get(1) != std::string("nul\0\0", 5)) ::_exit(12);
  if (list.get(2).empty() == false) ::_exit(13);
  list[2] = std::string("child\0\0", 7);
  shm::ShareableList<double> numbers(name + "_n");
  numbers[1] = numbers[0] * 2.0;
}

void change_list_handle(shm::ShareableList<std::int64_t> list, shm::ShareableList<shm::bytes> raw) {
  list[0] = list[0] + 100;
  raw.set(0, shm::bytes{std::byte{1}, std::byte{0}, std::byte{0}});
}

bool wait_readable(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1;
}

}  // namespace

// -- SharedMemory --------------------------------------------------------------------------------

TEST_CASE("SharedMemory: create, attach, share bytes, close and unlink", "[shared_memory]") {
  const auto name = unique_name("basic");
  shm::SharedMemory a(name, true, 4096);
  CHECK(a.name() == name);
  CHECK(a.size() == 4096);
  CHECK(a.buf().size() == 4096);
  CHECK(in_dev_shm(name));
  CHECK(all_bytes(a.buf(), std::byte{0}));

  shm::SharedMemory b(name);  // attach; size ignored as in Python
  CHECK(b.size() == 4096);
  a.buf()[10] = std::byte{42};
  CHECK(b.buf()[10] == std::byte{42});
  CHECK(b.buf().data() != a.buf().data());  // two mappings of one block

  shm::SharedMemory c(name, false, 1'000'000);  // Python ignores size on attach
  CHECK(c.size() == 4096);

  b.close();
  CHECK(b.closed());
  CHECK_THROWS_AS(b.buf(), mp::ValueError);
  b.close();  // idempotent
  CHECK(b.size() == 4096);
  CHECK(a.buf()[10] == std::byte{42});

  a.unlink();
  CHECK_FALSE(in_dev_shm(name));
  CHECK(c.buf()[10] == std::byte{42});  // mappings outlive the name
  CHECK_THROWS_AS(shm::SharedMemory(name), mp::FileNotFoundError);
  CHECK_THROWS_AS(a.unlink(), mp::FileNotFoundError);
}

TEST_CASE("SharedMemory: Python's errors", "[shared_memory]") {
  const auto name = unique_name("errors");
  SECTION("creating an existing name: FileExistsError naming it") {
    shm::SharedMemory a(name, true, 16);
    try {
      shm::SharedMemory b(name, true, 16);
      FAIL("no exception");
    } catch (const mp::FileExistsError& e) {
      CHECK(std::string(e.what()).find(name) != std::string::npos);
      CHECK(e.error_number() == EEXIST);
    }
    a.unlink();
  }
  SECTION("attaching to a missing name: FileNotFoundError") {
    CHECK_THROWS_AS(shm::SharedMemory(name), mp::FileNotFoundError);
    CHECK_THROWS_AS(shm::SharedMemory(name), mp::OSError);
    CHECK_FALSE(in_dev_shm(name));
  }
  SECTION("create with size 0: ValueError, nothing created") {
    CHECK_THROWS_WITH(shm::SharedMemory(name, true, 0),
                      "'size' must be a positive number different from zero");
    CHECK_FALSE(in_dev_shm(name));
  }
  SECTION("no name without create: ValueError") {
    CHECK_THROWS_AS(shm::SharedMemory(), mp::ValueError);
  }
  SECTION("an invalid name: OSError with errno") {
    try {
      shm::SharedMemory bad("a/b", true, 16);
      FAIL("no exception");
    } catch (const mp::OSError& e) {
      CHECK(e.error_number() == EINVAL);
    }
  }
}

TEST_CASE("SharedMemory: a random psm_ name, mode 0600", "[shared_memory]") {
  shm::SharedMemory a(std::nullopt, true, 100);
  REQUIRE(a.name().size() == 12);
  CHECK(a.name().rfind("psm_", 0) == 0);
  CHECK(a.name().find_first_not_of("0123456789abcdef", 4) == std::string::npos);
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + a.name()).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  shm::SharedMemory b(std::nullopt, true, 100);
  CHECK(a.name() != b.name());
  a.unlink();
  b.unlink();
}

TEST_CASE("SharedMemory: track unlinks a created block with its last handle here",
          "[shared_memory]") {
  const auto before = dev_shm_entries();
  const auto tracked = unique_name("tracked");
  const auto untracked = unique_name("untracked");
  const auto unlinked = unique_name("unlinked");
  const std::set<std::string> ours{tracked, untracked, unlinked};
  {
    shm::SharedMemory a(tracked, true, 64);
    {
      shm::SharedMemory copy = a;  // copies share the block
      shm::SharedMemory attached(tracked);
    }
    CHECK(in_dev_shm(tracked));  // the creator's handle is alive; an attached handle never unlinks
    shm::SharedMemory u(untracked, true, 64, /*track=*/false);
    shm::SharedMemory l(unlinked, true, 64);
    l.unlink();  // unlink() first, then destruction: no error, nothing left
    a.close();   // close() does not unlink either
    CHECK(in_dev_shm(tracked));
  }
  CHECK_FALSE(in_dev_shm(tracked));
  CHECK(in_dev_shm(untracked));  // track=false: the user unlinks, as in Python
  shm::SharedMemory(untracked).unlink();
  CHECK(ours_added_since(before, ours).empty());
}

TEST_CASE("SharedMemory: the tracked destructor leaves a reused name alone", "[shared_memory]") {
  const auto name = unique_name("reused");
  std::optional<shm::SharedMemory> first(std::in_place, name, true, 64);
  shm::SharedMemory(name).unlink();          // someone else unlinks it...
  shm::SharedMemory second(name, true, 32);  // ...and creates a new block under the same name
  first.reset();
  REQUIRE(in_dev_shm(name));
  CHECK(shm::SharedMemory(name).size() == 32);
  second.unlink();
}

TEMPLATE_TEST_CASE("SharedMemory: a child writes through a handle argument and by name",
                   "[shared_memory][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  const auto name = unique_name("child");
  shm::SharedMemory block(name, true, 64);

  auto p = ctx.Process(fill_through_handle, block, std::uint8_t{0xAB});
  p.start();
  REQUIRE(p.join(30s));
  CHECK(p.exitcode() == 0);
  CHECK(all_bytes(block.buf(), std::byte{0xAB}));

  auto q = ctx.Process(fill_through_name, name, std::uint8_t{0x5C});
  q.start();
  REQUIRE(q.join(30s));
  CHECK(q.exitcode() == 0);
  CHECK(all_bytes(block.buf(), std::byte{0x5C}));

  // A handle still crosses after its name was unlinked: it carries the descriptor.
  block.unlink();
  auto r = ctx.Process(fill_through_handle, block, std::uint8_t{0x11});
  r.start();
  REQUIRE(r.join(30s));
  CHECK(r.exitcode() == 0);
  CHECK(all_bytes(block.buf(), std::byte{0x11}));
}

TEMPLATE_TEST_CASE("SharedMemory: nothing is left in /dev/shm after a SIGKILLed child",
                   "[shared_memory][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  TestType ctx;
  const auto before = dev_shm_entries();
  const auto tracked = unique_name("killed_tracked");
  const auto explicit_unlink = unique_name("killed_unlinked");
  {
    shm::SharedMemory a(tracked, true, 4096);
    shm::SharedMemory b(explicit_unlink, true, 4096, /*track=*/false);
    for (const auto& name : {tracked, explicit_unlink}) {
      int fds[2];
      REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
      auto p = ctx.Process(attach_then_hang, name, PipeEnd{fds[1]});
      p.start();
      ::close(fds[1]);
      const bool ready = wait_readable(fds[0], 30'000ms);
      ::close(fds[0]);
      CHECK(ready);
      p.kill();
      REQUIRE(p.join(30s));
      CHECK(p.exitcode() == -SIGKILL);
      CHECK(in_dev_shm(name));  // the attached child's death removes nothing
    }
    CHECK(a.buf()[0] == std::byte{7});
    CHECK(b.buf()[0] == std::byte{7});
    b.unlink();
  }
  CHECK(ours_added_since(before, {tracked, explicit_unlink}).empty());
}

// -- ShareableList --------------------------------------------------------------------------------

TEST_CASE("ShareableList: numbers round trip, count, index, format", "[shared_memory]") {
  shm::ShareableList<std::int64_t> a({1, -2, 3, -2}, unique_name("ints"));
  CHECK(a.size() == 4);
  CHECK(a[1] == -2);
  a[0] = 1'000'000'000'000;
  CHECK(a.get(0) == 1'000'000'000'000);
  CHECK(a.count(-2) == 2);
  CHECK(a.count(9) == 0);
  CHECK(a.index(-2) == 1);
  CHECK_THROWS_AS(a.index(9), mp::ValueError);
  CHECK(a.format() == "qqqq");
  CHECK_THROWS_AS(a.get(4), std::out_of_range);
  CHECK_THROWS_AS(a[7] = 1, std::out_of_range);
  CHECK(a.to_vector() == std::vector<std::int64_t>{1'000'000'000'000, -2, 3, -2});

  shm::ShareableList<std::int64_t> same(a.shm().name());  // attach by name
  CHECK(same[0] == 1'000'000'000'000);
  same[3] = 4;
  CHECK(a[3] == 4);

  shm::ShareableList<double> d({0.5, -273.154});
  CHECK(d.format() == "dd");
  CHECK(d[1] == -273.154);
  shm::ShareableList<bool> flags({true, false});
  CHECK(flags.format() == "??");
  flags[1] = flags[0];
  CHECK(flags.get(1));
  shm::ShareableList<std::uint8_t> small({255, 0});
  CHECK(small.format() == "BB");
  CHECK(small[0] == 255);
  shm::ShareableList<int> empty(std::vector<int>{});
  CHECK(empty.size() == 0);
  CHECK(empty.format().empty());
}

TEST_CASE("ShareableList: strings and bytes keep trailing NULs and slots are fixed",
          "[shared_memory]") {
  using namespace std::string_literals;
  shm::ShareableList<std::string> s({"howdy", "a\0b\0\0"s, ""s, "12345678"});
  CHECK(s.get(0) == "howdy");
  CHECK(s.get(1) == "a\0b\0\0"s);  // CPython would return "a\0b"
  CHECK(s.get(1).size() == 5);
  CHECK(s.get(2).empty());
  CHECK(s.format() == "8s8s8s16s");  // Python's slot rule: 8 * (len / 8 + 1)
  s[0] = "12345678";                 // fills the 8-byte slot exactly
  CHECK(s.get(0) == "12345678");
  CHECK_THROWS_WITH(s[0] = "123456789", "bytes/str item exceeds available storage");
  CHECK_THROWS_AS(s.set(2, "too long for 8"), mp::ValueError);
  CHECK(s.get(0) == "12345678");  // a rejected assignment changes nothing
  s[3] = "\0\0"s;
  CHECK(s.get(3) == "\0\0"s);
  CHECK(s.count("\0\0"s) == 1);
  CHECK(s.index("12345678") == 0);

  const shm::bytes payload{std::byte{1}, std::byte{0}, std::byte{0}};
  shm::ShareableList<shm::bytes> b({payload, shm::bytes{}});
  CHECK(b.get(0) == payload);
  CHECK(b.get(1).empty());
  b[1] = shm::bytes(8, std::byte{0});
  CHECK(b.get(1).size() == 8);
  CHECK_THROWS_AS(b[1] = shm::bytes(9, std::byte{0}), mp::ValueError);
}

TEST_CASE("ShareableList: attaching checks the block", "[shared_memory]") {
  const auto name = unique_name("typed");
  shm::ShareableList<std::int32_t> ints({1, 2}, name);
  CHECK_THROWS_AS(shm::ShareableList<double>(name), mp::TypeError);
  CHECK_THROWS_AS(shm::ShareableList<std::string>(name), mp::TypeError);
  CHECK_THROWS_AS(shm::ShareableList<std::int64_t>(name), mp::TypeError);
  CHECK(shm::ShareableList<std::int32_t>(name)[1] == 2);

  const auto raw = unique_name("raw");
  shm::SharedMemory block(raw, true, 4096);
  CHECK_THROWS_AS(shm::ShareableList<int>(raw), mp::ValueError);
  CHECK_THROWS_AS(shm::ShareableList<int>(unique_name("missing")), mp::FileNotFoundError);
}

TEST_CASE("ShareableList: a failed construction leaves nothing behind", "[shared_memory]") {
  const auto name = unique_name("taken");
  shm::SharedMemory existing(name, true, 128);
  existing.buf()[0] = std::byte{99};
  const auto fds = count_open_fds();
  const auto maps = count_mappings_of(name);
  const auto before = dev_shm_entries_of_this_process();
  CHECK_THROWS_AS(shm::ShareableList<std::string>({"x", "y"}, name), mp::FileExistsError);
  CHECK_THROWS_AS(shm::ShareableList<int>(name), mp::ValueError);  // attach to a non-list
  CHECK(count_open_fds() == fds);
  CHECK(count_mappings_of(name) == maps);
  CHECK(dev_shm_entries_of_this_process() == before);
  CHECK(existing.buf()[0] == std::byte{99});
  CHECK(existing.size() == 128);
}

TEMPLATE_TEST_CASE("ShareableList: a child attaches by name and as a handle",
                   "[shared_memory][fork][spawn][forkserver]", MP_ALL_CONTEXTS) {
  using namespace std::string_literals;
  TestType ctx;
  const auto before = dev_shm_entries();
  const auto name = unique_name("list");
  {
    shm::ShareableList<std::string> strings({"howdy", "nul\0\0"s, ""s}, name);
    shm::ShareableList<double> numbers({1.25, 0.0}, name + "_n");
    auto p = ctx.Process(check_and_change_list, name);
    p.start();
    REQUIRE(p.join(30s));
    CHECK(p.exitcode() == 0);
    CHECK(strings[2] == "child\0\0"s);
    CHECK(numbers[1] == 2.5);

    shm::ShareableList<std::int64_t> ints({5});
    shm::ShareableList<shm::bytes> raw({shm::bytes(3, std::byte{9})});
    auto q = ctx.Process(change_list_handle, ints, raw);
    q.start();
    REQUIRE(q.join(30s));
    CHECK(q.exitcode() == 0);
    CHECK(ints[0] == 105);
    CHECK(raw.get(0) == shm::bytes{std::byte{1}, std::byte{0}, std::byte{0}});
  }
  CHECK(ours_added_since(before, {name, name + "_n"}).empty());
}

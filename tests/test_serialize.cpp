// SPDX-License-Identifier: MIT
// Tests for multiprocessing/serialize.hpp: round trips of every built-in type, the one-copy
// paths, aggregates, member serialize, specializations, the fd side channel, fingerprints and
// the Reader's bounds checks.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include <multiprocessing/serialize.hpp>

namespace mp = multiprocessing;
using namespace std::chrono_literals;

namespace app {

struct Point {
  int x;
  double y;
  friend bool operator==(const Point&, const Point&) = default;
};

struct Record {
  int id;
  std::string name;
  std::vector<Point> points;
  std::optional<bool> flag;
  friend bool operator==(const Record&, const Record&) = default;
};

struct Labeled {
  int x = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, label);
  }
  friend bool operator==(const Labeled&, const Labeled&) = default;
};

// Has both a member serialize and a specialization: the specialization must win.
struct Both {
  int value = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value);
  }
};

// A handle that travels as an fd index.
struct FdHandle {
  int fd = -1;
};

// Trivially copyable, but with a bool: loaded field by field so that a bool byte is checked.
struct WithBool {
  int a;
  bool b;
  friend bool operator==(const WithBool&, const WithBool&) = default;
};

struct Const {
  const int k;
  std::string s;
};

enum class Color : std::uint8_t { red, green, blue };
enum Plain { plain_a = 1, plain_b = 1000 };

// A recursive type: needs member serialize (aggregates cannot refer to themselves).
struct Tree {
  int value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
};

struct Wide {
  int f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, f20,
      f21, f22, f23;
  std::string last;
};

struct WithCArray {
  char name[8];
  int id;
};

}  // namespace app

template <>
struct mp::serializer<app::Both> {
  static constexpr std::string_view type_name = "app::Both";
  static void save(mp::Writer& writer, const app::Both& both) { writer.save(both.value + 1000); }
  static app::Both load(mp::Reader& reader) { return app::Both{reader.load<int>() - 1000}; }
};

template <>
struct mp::serializer<app::FdHandle> {
  static void save(mp::Writer& writer, const app::FdHandle& handle) {
    writer.save(writer.attach_fd(handle.fd));
  }
  static app::FdHandle load(mp::Reader& reader) {
    return app::FdHandle{reader.fd(reader.load<std::uint32_t>())};
  }
};

namespace {

template <class T>
T round_trip(const T& value) {
  return mp::loads<T>(mp::dumps(value));
}

template <class T>
std::size_t payload_size(const T& value) {
  mp::Writer writer;
  writer.save(value);
  return writer.bytes().size();
}

std::vector<std::byte> with_fingerprint(std::uint64_t fingerprint, std::vector<std::byte> payload) {
  // Sized once: vector(8) + insert() trips a false -Warray-bounds in g++ 12 at -O2.
  std::vector<std::byte> message(8 + payload.size());
  std::memcpy(message.data(), &fingerprint, 8);
  std::copy(payload.begin(), payload.end(), message.begin() + 8);
  return message;
}

template <class... U>
std::vector<std::byte> raw(const U&... values) {
  mp::Writer writer;
  writer(values...);
  return std::move(writer).take();
}

}  // namespace

TEST_CASE("serialize: arithmetic types, enums, std::byte and bool round-trip", "[serialize]") {
  CHECK(round_trip(std::int8_t{-5}) == -5);
  CHECK(round_trip(std::uint16_t{65535}) == 65535);
  CHECK(round_trip(-123456789) == -123456789);
  CHECK(round_trip(std::uint64_t{1} << 63) == std::uint64_t{1} << 63);
  CHECK(round_trip(3.25) == 3.25);
  CHECK(round_trip(-1.5F) == -1.5F);
  CHECK(round_trip(2.5L) == 2.5L);
  CHECK(round_trip('z') == 'z');
  CHECK(round_trip(U'λ') == U'λ');
  CHECK(round_trip(true));
  CHECK_FALSE(round_trip(false));
  CHECK(round_trip(std::byte{0xab}) == std::byte{0xab});
  CHECK(round_trip(app::Color::blue) == app::Color::blue);
  CHECK(round_trip(app::plain_b) == app::plain_b);
  CHECK(payload_size(std::int16_t{1}) == 2);
  CHECK(payload_size(true) == 1);
  CHECK(payload_size(app::Color::green) == 1);
}

TEST_CASE("serialize: numbers are fixed-width little-endian", "[serialize]") {
  const auto bytes = raw(std::uint32_t{0x01020304}, std::int16_t{-2});
  REQUIRE(bytes.size() == 6);
  CHECK(bytes[0] == std::byte{0x04});
  CHECK(bytes[3] == std::byte{0x01});
  CHECK(bytes[4] == std::byte{0xfe});
  CHECK(bytes[5] == std::byte{0xff});
  const auto length = raw(std::string("ab"));
  REQUIRE(length.size() == 10);
  CHECK(length[0] == std::byte{2});
  CHECK(length[7] == std::byte{0});
}

TEST_CASE("serialize: std containers round-trip", "[serialize]") {
  CHECK(round_trip(std::string("hello, world")) == "hello, world");
  CHECK(round_trip(std::string()).empty());
  CHECK(round_trip(std::wstring(L"wide")) == L"wide");
  CHECK(round_trip(std::vector<int>{1, 2, 3}) == std::vector<int>{1, 2, 3});
  CHECK(round_trip(std::vector<bool>{true, false, true}) == std::vector<bool>{true, false, true});
  CHECK(round_trip(std::vector<std::string>{"a", "", "ccc"}) ==
        std::vector<std::string>{"a", "", "ccc"});
  CHECK(round_trip(std::array<double, 3>{1.0, 2.0, 3.0}) == std::array<double, 3>{1.0, 2.0, 3.0});
  CHECK(round_trip(std::array<std::string, 2>{"x", "y"}) == std::array<std::string, 2>{"x", "y"});
  CHECK(round_trip(std::array<int, 0>{}).empty());
  CHECK(round_trip(std::deque<int>{4, 5}) == std::deque<int>{4, 5});
  CHECK(round_trip(std::list<std::string>{"p", "q"}) == std::list<std::string>{"p", "q"});
  CHECK(round_trip(std::map<std::string, int>{{"a", 1}, {"b", 2}}) ==
        std::map<std::string, int>{{"a", 1}, {"b", 2}});
  CHECK(round_trip(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}}) ==
        std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
  CHECK(round_trip(std::set<int>{3, 1, 2}) == std::set<int>{1, 2, 3});
  CHECK(round_trip(std::unordered_set<std::string>{"u", "v"}) ==
        std::unordered_set<std::string>{"u", "v"});
  CHECK(round_trip(std::pair<int, std::string>{7, "seven"}) ==
        std::pair<int, std::string>{7, "seven"});
  CHECK(round_trip(std::tuple<int, std::string, double>{1, "t", 2.5}) ==
        std::tuple<int, std::string, double>{1, "t", 2.5});
  CHECK(round_trip(std::tuple<>{}) == std::tuple<>{});
  CHECK(round_trip(std::optional<std::string>("some")) == std::optional<std::string>("some"));
  CHECK(round_trip(std::optional<int>()) == std::nullopt);
  using V = std::variant<std::monostate, int, std::string>;
  CHECK(round_trip(V(std::string("alt"))) == V(std::string("alt")));
  CHECK(round_trip(V(42)) == V(42));
  CHECK(round_trip(V()) == V());
  CHECK(round_trip(std::monostate{}) == std::monostate{});
  CHECK(round_trip(1500ms) == 1500ms);
  CHECK(round_trip(std::chrono::duration<double>(0.5)) == std::chrono::duration<double>(0.5));
}

TEST_CASE("serialize: deep nesting round-trips", "[serialize]") {
  using Deep = std::map<std::string,
                        std::vector<std::tuple<std::optional<std::variant<int, std::string>>,
                                               std::set<std::pair<int, std::string>>,
                                               std::deque<std::list<std::array<app::Point, 2>>>>>>;
  Deep deep;
  deep["k"].emplace_back(
      std::variant<int, std::string>("v"),
      std::set<std::pair<int, std::string>>{{1, "a"}, {2, "b"}},
      std::deque<std::list<std::array<app::Point, 2>>>{{{app::Point{1, 1.5}, app::Point{2, 2.5}}}});
  deep["empty"];
  CHECK(round_trip(deep) == deep);
  std::vector<std::vector<std::vector<std::vector<int>>>> nested{{{{1}, {2, 3}}, {}}, {}};
  CHECK(round_trip(nested) == nested);
}

TEST_CASE("serialize: trivially copyable data takes one copy", "[serialize]") {
  const std::vector<int> ints(1000, 7);
  CHECK(payload_size(ints) == 8 + 4 * ints.size());
  CHECK(payload_size(app::Point{1, 2.0}) == sizeof(app::Point));
  CHECK(payload_size(std::array<double, 5>{}) == 5 * sizeof(double));
  CHECK(payload_size(std::vector<app::Point>(3)) == 8 + 3 * sizeof(app::Point));
  CHECK(payload_size(std::string(10, 'x')) == 18);
  STATIC_REQUIRE(mp::serialize::detail::is_bitwise<app::Point>);
  STATIC_REQUIRE(mp::serialize::detail::is_bitwise<std::array<app::Point, 4>>);
  STATIC_REQUIRE(mp::serialize::detail::is_bitwise<app::WithCArray>);
  STATIC_REQUIRE_FALSE(mp::serialize::detail::is_bitwise<app::WithBool>);
  STATIC_REQUIRE_FALSE(mp::serialize::detail::is_bitwise<bool>);
  app::WithCArray named{"abc", 9};
  const auto back = round_trip(named);
  CHECK(std::string(back.name) == "abc");
  CHECK(back.id == 9);
}

TEST_CASE("serialize: aggregates serialize field by field without boilerplate", "[serialize]") {
  const app::Record record{42, "rec", {{1, 2.0}, {3, 4.0}}, false};
  CHECK(round_trip(record) == record);
  CHECK(payload_size(record) == 4 + (8 + 3) + (8 + 2 * sizeof(app::Point)) + 2);
  CHECK(round_trip(app::WithBool{5, true}) == app::WithBool{5, true});
  CHECK(payload_size(app::WithBool{5, true}) == 5);
  const auto constant = round_trip(app::Const{3, "c"});
  CHECK(constant.k == 3);
  CHECK(constant.s == "c");
  app::Wide wide{};
  wide.f23 = 23;
  wide.last = "end";
  const auto wide_back = round_trip(wide);
  CHECK(wide_back.f23 == 23);
  CHECK(wide_back.last == "end");
  STATIC_REQUIRE(mp::serialize::field_count<app::Wide> == 25);
}

TEST_CASE("serialize: a member serialize() works for saving and loading", "[serialize]") {
  CHECK(round_trip(app::Labeled{3, "three"}) == app::Labeled{3, "three"});
  CHECK(round_trip(std::vector<app::Labeled>{{1, "a"}, {2, "b"}}) ==
        std::vector<app::Labeled>{{1, "a"}, {2, "b"}});
  app::Tree tree{1, {app::Tree{2, {}}, app::Tree{3, {app::Tree{4, {}}}}}};
  const auto back = round_trip(tree);
  REQUIRE(back.children.size() == 2);
  CHECK(back.children[1].children[0].value == 4);
}

TEST_CASE("serialize: a serializer<T> specialization wins over a member serialize()",
          "[serialize]") {
  mp::Writer writer;
  writer.save(app::Both{1});
  mp::Reader reader(writer.bytes());
  CHECK(reader.load<int>() == 1001);
  CHECK(round_trip(app::Both{5}).value == 5);
}

TEST_CASE("serialize: file descriptors travel by index in a side channel", "[serialize]") {
  mp::Writer writer;
  writer.save(std::vector<app::FdHandle>{{10}, {11}, {12}});
  REQUIRE(writer.fds().size() == 3);
  CHECK(writer.fds()[2] == 12);
  const std::vector<int> received{20, 21, 22};
  mp::Reader reader(writer.bytes(), received);
  const auto handles = reader.load<std::vector<app::FdHandle>>();
  REQUIRE(handles.size() == 3);
  CHECK(handles[0].fd == 20);
  CHECK(handles[2].fd == 22);
  mp::Reader without_fds(writer.bytes());
  CHECK_THROWS_AS(without_fds.load<std::vector<app::FdHandle>>(), mp::SerializationError);
  CHECK_THROWS_WITH(mp::Reader(writer.bytes(), std::span<const int>(received).first(1))
                        .load<std::vector<app::FdHandle>>(),
                    Catch::Contains("file descriptor index 1 is out of range (1 attached)"));
  // The same descriptor twice travels once, and both handles resolve to it.
  mp::Writer twice;
  twice.save(std::vector<app::FdHandle>{{10}, {11}, {10}});
  REQUIRE(twice.fds().size() == 2);
  const std::vector<int> arrived{30, 31};
  mp::Reader shared(twice.bytes(), arrived);
  const auto again = shared.load<std::vector<app::FdHandle>>();
  CHECK(again[0].fd == 30);
  CHECK(again[1].fd == 31);
  CHECK(again[2].fd == 30);
}

TEST_CASE("serialize: the concept tells what crosses a process boundary", "[serialize]") {
  STATIC_REQUIRE(mp::serializable<int>);
  STATIC_REQUIRE(mp::serializable<const std::string&>);
  STATIC_REQUIRE(mp::serializable<app::Record>);
  STATIC_REQUIRE(mp::serializable<app::Tree>);
  STATIC_REQUIRE(mp::serializable<std::map<int, std::vector<app::Labeled>>>);
  STATIC_REQUIRE_FALSE(mp::serializable<int*>);
  STATIC_REQUIRE_FALSE(mp::serializable<const char*>);
  STATIC_REQUIRE_FALSE(mp::serializable<std::unique_ptr<int>>);
  STATIC_REQUIRE_FALSE(mp::serializable<std::vector<std::unique_ptr<int>>>);
  STATIC_REQUIRE_FALSE(mp::serializable<std::string_view>);
  STATIC_REQUIRE_FALSE(mp::serializable<std::span<int>>);
  struct Linked {
    int value;
    Linked* next;
  };
  STATIC_REQUIRE(std::is_trivially_copyable_v<Linked>);
  STATIC_REQUIRE_FALSE(mp::serializable<Linked>);
  struct PointerInArray {
    char tag[4];
    const char* text;
  };
  STATIC_REQUIRE_FALSE(mp::serializable<PointerInArray>);
  struct Nested {
    app::Point p;
    int* q;
  };
  STATIC_REQUIRE_FALSE(mp::serializable<Nested>);
}

TEST_CASE("serialize: fingerprints are structural and the same for every compiler", "[serialize]") {
  using mp::serialize::type_fingerprint;
  STATIC_REQUIRE(type_fingerprint<int>() == type_fingerprint<std::int32_t>());
  STATIC_REQUIRE(type_fingerprint<int>() != type_fingerprint<unsigned>());
  STATIC_REQUIRE(type_fingerprint<int>() != type_fingerprint<float>());
  STATIC_REQUIRE(type_fingerprint<std::vector<int>>() == type_fingerprint<std::deque<int>>());
  STATIC_REQUIRE(type_fingerprint<std::vector<int>>() != type_fingerprint<std::vector<long>>());
  STATIC_REQUIRE(type_fingerprint<std::map<int, int>>() ==
                 type_fingerprint<std::unordered_map<int, int>>());
  STATIC_REQUIRE(type_fingerprint<std::pair<int, char>>() ==
                 type_fingerprint<std::tuple<int, char>>());
  STATIC_REQUIRE(type_fingerprint<std::chrono::milliseconds>() !=
                 type_fingerprint<std::chrono::microseconds>());
  STATIC_REQUIRE(type_fingerprint<const app::Record&>() == type_fingerprint<app::Record>());
  // Pinned values: a g++ build and a clang build must print the same numbers (they are
  // compared between programs over sockets).
  CHECK(type_fingerprint<std::vector<int>>() == 0xcdeae4655e8b7c41ULL);
  const std::uint64_t record = type_fingerprint<app::Record>();
  const std::uint64_t labeled = type_fingerprint<app::Labeled>();
  const std::uint64_t color = type_fingerprint<app::Color>();
  const std::uint64_t point = type_fingerprint<app::Point>();
  const std::uint64_t both = type_fingerprint<app::Both>();
  UNSCOPED_INFO("record " << std::hex << record << " labeled " << labeled << " color " << color
                          << " point " << point << " both " << both);
  CHECK(record == 0x961005d64fee6522ULL);
  CHECK(labeled == 0x36aad45bb59ca0edULL);
  CHECK(color == 0x93f7eb9f27d2c5d2ULL);
  CHECK(point == 0xdb6e12fd803b9ddcULL);
  CHECK(both == 0xab7c34f453ba39caULL);
}

TEST_CASE("serialize: loading the wrong type throws TypeError naming the expected type",
          "[serialize]") {
  const auto bytes = mp::dumps(std::vector<int>{1, 2});
  CHECK_THROWS_AS(mp::loads<std::vector<long>>(bytes), mp::TypeError);
  CHECK_THROWS_WITH(mp::loads<std::string>(bytes), Catch::StartsWith("cannot load std::string"));
  CHECK(mp::loads<std::deque<int>>(bytes) == std::deque<int>{1, 2});
}

TEST_CASE("serialize: trailing bytes throw SerializationError", "[serialize]") {
  auto bytes = mp::dumps(7);
  bytes.push_back(std::byte{0});
  CHECK_THROWS_AS(mp::loads<int>(bytes), mp::SerializationError);
  CHECK_THROWS_WITH(mp::loads<int>(bytes), Catch::Contains("1 bytes are left over"));
}

TEST_CASE("serialize: a message truncated at any length throws SerializationError", "[serialize]") {
  const app::Record record{1, "name", {{1, 1.0}}, true};
  const auto bytes = mp::dumps(std::make_tuple(record, std::map<int, std::string>{{1, "x"}},
                                               std::variant<int, std::string>("y")));
  using T = std::tuple<app::Record, std::map<int, std::string>, std::variant<int, std::string>>;
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    INFO("size " << size);
    CHECK_THROWS_AS(mp::loads<T>(std::span(bytes).first(size)), mp::SerializationError);
  }
  CHECK(std::get<0>(mp::loads<T>(bytes)) == record);
}

TEST_CASE("serialize: a length prefix of 2^63 throws SerializationError", "[serialize]") {
  const auto fingerprint = mp::serialize::type_fingerprint<std::vector<int>>();
  const auto hostile = with_fingerprint(
      fingerprint, raw(std::uint64_t{1} << 63, std::uint32_t{1}, std::uint64_t{2}));
  CHECK_THROWS_WITH(mp::loads<std::vector<int>>(hostile),
                    "cannot load std::vector<int>: length prefix 9223372036854775808 (elements of "
                    "at least 4 bytes) exceeds the 12 bytes left");
  const auto string_bytes = with_fingerprint(mp::serialize::type_fingerprint<std::string>(),
                                             raw(std::uint64_t{1} << 63, std::uint32_t{0}));
  CHECK_THROWS_WITH(mp::loads<std::string>(string_bytes),
                    "cannot load std::string: length prefix 9223372036854775808 exceeds the 4 "
                    "bytes left");
  for (const std::uint64_t prefix : {~std::uint64_t{0}, std::uint64_t{1} << 40, std::uint64_t{5}}) {
    CHECK_THROWS_AS(
        (mp::loads<std::map<std::string, std::vector<double>>>(with_fingerprint(
            mp::serialize::type_fingerprint<std::map<std::string, std::vector<double>>>(),
            raw(prefix, std::uint32_t{0})))),
        mp::SerializationError);
    CHECK_THROWS_AS(mp::loads<std::vector<std::monostate>>(with_fingerprint(
                        mp::serialize::type_fingerprint<std::vector<std::monostate>>(),
                        raw(prefix == 5 ? std::uint64_t{1} << 25 : prefix))),
                    mp::SerializationError);
  }
  // Elements that encode to nothing are capped at max_empty_elements, not rejected.
  CHECK(round_trip(std::vector<std::monostate>(1000)).size() == 1000);
}

TEST_CASE("serialize: a variant index out of range throws SerializationError", "[serialize]") {
  using V = std::variant<int, std::string>;
  const auto bytes = with_fingerprint(mp::serialize::type_fingerprint<V>(),
                                      raw(std::uint32_t{2}, std::int32_t{0}));
  CHECK_THROWS_WITH(mp::loads<V>(bytes), Catch::Contains("variant index 2 is out of range"));
}

TEST_CASE("serialize: flags and bools other than 0 and 1 throw SerializationError", "[serialize]") {
  auto optional = mp::dumps(std::optional<int>(5));
  optional[8] = std::byte{2};
  CHECK_THROWS_WITH(mp::loads<std::optional<int>>(optional),
                    Catch::Contains("flag must be the byte 0 or 1, not 2"));
  auto boolean = mp::dumps(true);
  boolean[8] = std::byte{7};
  CHECK_THROWS_WITH(mp::loads<bool>(boolean),
                    "cannot load bool: a bool must be the byte 0 or 1, not 7");
  auto with_bool = mp::dumps(app::WithBool{1, true});
  with_bool.back() = std::byte{0x80};
  CHECK_THROWS_AS(mp::loads<app::WithBool>(with_bool), mp::SerializationError);
}

TEST_CASE("serialize: duplicate keys in a set or map throw SerializationError", "[serialize]") {
  const auto set = with_fingerprint(mp::serialize::type_fingerprint<std::set<int>>(),
                                    raw(std::uint64_t{2}, 1, 1));
  CHECK_THROWS_WITH(mp::loads<std::set<int>>(set), Catch::Contains("duplicate key"));
  const auto map = with_fingerprint(mp::serialize::type_fingerprint<std::unordered_map<int, int>>(),
                                    raw(std::uint64_t{2}, 1, 10, 1, 20));
  CHECK_THROWS_AS((mp::loads<std::unordered_map<int, int>>(map)), mp::SerializationError);
}

TEST_CASE("serialize: hostile nesting depth throws SerializationError", "[serialize]") {
  // A Tree whose every level claims one child: deeper than max_depth, never a stack overflow.
  mp::Writer writer;
  for (std::size_t level = 0; level < 100000; ++level) writer(0, std::uint64_t{1});
  const auto bytes =
      with_fingerprint(mp::serialize::type_fingerprint<app::Tree>(), std::move(writer).take());
  CHECK_THROWS_WITH(mp::loads<app::Tree>(bytes), Catch::Contains("nested deeper than"));
}

TEST_CASE("serialize: a 64 MiB std::vector<std::byte> round-trips", "[serialize]") {
  std::vector<std::byte> big(std::size_t{64} << 20);
  for (std::size_t i = 0; i < big.size(); i += 4093) big[i] = static_cast<std::byte>(i);
  const auto bytes = mp::dumps(big);
  CHECK(bytes.size() == 8 + 8 + big.size());
  CHECK(mp::loads<std::vector<std::byte>>(bytes) == big);
}
